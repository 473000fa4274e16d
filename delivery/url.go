package delivery

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxURLLength is the longest callback URL Deliver accepts, in bytes.
const MaxURLLength = 2048

// ValidateURL checks a callback URL the way Deliver does: at most
// MaxURLLength bytes, absolute http or https, a host, no userinfo
// (unless allowUserinfo), valid UTF-8 with no whitespace or control
// characters, and no host that ends in a number without being a canonical
// IP address ("2130706433", "0177.0.0.1", "127.1"), since resolvers disagree
// on what such hosts mean, nor one with full-width or similar forms of
// letters, digits or dots ("１２７.０.０.１"), which become such hosts on
// the way to DNS. It returns a *URLError matching ErrInvalidURL, or
// nil. It does not resolve the host; the destination guard checks the
// address at dial time.
func ValidateURL(raw string, allowUserinfo bool) error {
	bad := func(reason string) error { return &URLError{URL: redactURL(raw), Reason: reason} }
	if raw == "" {
		return bad("empty")
	}
	if len(raw) > MaxURLLength {
		return bad("longer than " + strconv.Itoa(MaxURLLength) + " bytes")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f {
			return bad("contains whitespace or a control character")
		}
	}
	if !utf8.ValidString(raw) {
		return bad("is not valid UTF-8")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("scheme must be http or https")
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return bad("no host")
	}
	host := idnaHost(u.Hostname())
	if strings.Trim(host, ".") == "" {
		return bad("no host")
	}
	if numericLookalike(host) {
		return bad("host has a full-width, circled, mathematical or similar form of a letter, digit or dot, which becomes ASCII on the way to DNS; write the host in ASCII (punycode for an international name)")
	}
	if nonStandardIPv4(host) {
		return bad("host is a number in a non-standard IPv4 form (decimal, octal, hexadecimal or fewer than four parts), which resolvers read differently; write the address as four decimal numbers")
	}
	if u.User != nil && !allowUserinfo {
		return bad("userinfo (user:password@) is not allowed")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("port out of range")
		}
	}
	return nil
}

// numericLookalike reports whether host holds a character of the Unicode
// blocks whose compatibility forms the IDNA mapping net/http applies before
// resolving a host turns into ASCII letters, digits or dots: full-width,
// circled, parenthesized, mathematical, superscript and subscript forms,
// modifier letters, letter-like symbols, Roman numerals, small forms,
// ligatures and segmented digits, and the ideographic full stops:
// "１２７.０.０.１" becomes 127.0.0.1, and "0ⓧ7f000001" a non-standard IPv4
// form. International host names in their own scripts pass, digits
// included ("مثال٣"), as does Latin with diacritics ("bücher"); the guard
// checks every address at dial time in any case. The characters IDNA
// deletes (a soft hyphen, variation selectors) are not refused: ValidateURL
// judges the host without them (see idnaHost).
func numericLookalike(host string) bool {
	for _, r := range host {
		if r >= utf8.RuneSelf && inRanges(r, asciiLookalikeBlocks) {
			return true
		}
	}
	return false
}

// idnaIgnored are the ranges of characters IDNA deletes from a host name:
// what is left is what gets resolved.
var idnaIgnored = [][2]rune{
	{0x00AD, 0x00AD},   // soft hyphen
	{0x034F, 0x034F},   // combining grapheme joiner
	{0x180B, 0x180F},   // Mongolian variation selectors
	{0x200B, 0x200B},   // zero width space
	{0x2060, 0x2064},   // word joiner, invisible operators
	{0xFE00, 0xFE0F},   // variation selectors
	{0xFEFF, 0xFEFF},   // zero width no-break space
	{0x1BCA0, 0x1BCA3}, // shorthand format controls
	{0xE0100, 0xE01EF}, // variation selectors supplement
}

// idnaHost is host without the characters IDNA deletes.
func idnaHost(host string) string {
	return strings.Map(func(r rune) rune {
		if r >= utf8.RuneSelf && inRanges(r, idnaIgnored) {
			return -1
		}
		return r
	}, host)
}

// inRanges reports whether r lies in one of ranges.
func inRanges(r rune, ranges [][2]rune) bool {
	for _, b := range ranges {
		if b[0] <= r && r <= b[1] {
			return true
		}
	}
	return false
}

// asciiLookalikeBlocks are the ranges numericLookalike refuses.
var asciiLookalikeBlocks = [][2]rune{
	{0x00AA, 0x00AA}, {0x00B2, 0x00B3}, {0x00B9, 0x00BA}, // ª ² ³ ¹ º
	{0x02B0, 0x02B8},   // modifier letters ʰ to ʸ (not ʹ to ˁ, ˆ to ˑ, ˬ, ˮ: letters of some names, ʻokina included)
	{0x02C2, 0x02C5},   // modifier symbols
	{0x02D2, 0x02EB},   // modifier letters ˠ to ˤ and symbols
	{0x02ED, 0x02ED},   // modifier symbol
	{0x02EF, 0x02FF},   // modifier symbols
	{0x1D2C, 0x1D6A},   // modifier letters (phonetic extensions)
	{0x1D9B, 0x1DBF},   // modifier letters (supplement)
	{0x2070, 0x209F},   // superscripts and subscripts
	{0x2100, 0x218F},   // letter-like symbols, number forms
	{0x2460, 0x24FF},   // enclosed alphanumerics
	{0x3002, 0x3002},   // ideographic full stop
	{0x3200, 0x33FF},   // enclosed CJK letters and months, CJK compatibility
	{0xFB00, 0xFB06},   // Latin ligatures
	{0xFE50, 0xFE6F},   // small form variants
	{0xFF01, 0xFF5E},   // full-width ASCII
	{0xFF61, 0xFF61},   // half-width ideographic full stop
	{0x2C7C, 0x2C7D},   // modifier letters ⱼ ⱽ
	{0xA7F2, 0xA7F4},   // modifier letters ꟲ ꟳ ꟴ
	{0x107A5, 0x107A5}, // modifier letter 𐞥
	{0x1D400, 0x1D7FF}, // mathematical alphanumeric symbols
	{0x1F100, 0x1F1FF}, // enclosed alphanumeric supplement
	{0x1FBF0, 0x1FBF9}, // segmented digits
}

// redactURL drops userinfo so a password in a URL never reaches an error.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.Index(raw, "@"); err != nil && i >= 0 {
			return "[unparsable URL]"
		}
		return raw
	}
	u.User = nil
	return u.String()
}

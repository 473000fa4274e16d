package delivery

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxURLLength is the longest callback URL Deliver accepts, in bytes.
const MaxURLLength = 2048

// ValidateURL checks a callback URL the way Deliver does: at most
// MaxURLLength bytes, absolute http or https, a host, no userinfo
// (unless allowUserinfo), valid UTF-8 with no whitespace or control
// characters, and no host that ends in a number without being a canonical
// IP address ("2130706433", "0177.0.0.1", "127.1"), since resolvers disagree
// on what such hosts mean, nor one with digits or dots outside ASCII
// ("１２７.０.０.１"), which become such hosts on the way to DNS. It returns a *URLError matching ErrInvalidURL, or
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
	if numericLookalike(u.Hostname()) {
		return bad("host has digits or dots outside ASCII (full-width, say), which become ASCII digits and dots on the way to DNS; write the host in ASCII (punycode for an international name)")
	}
	if nonStandardIPv4(u.Hostname()) {
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

// numericLookalike reports whether host holds a character outside ASCII
// that the IDNA mapping net/http applies before resolving a host turns into
// an ASCII digit, letter or dot: a number of any script, a full-width form,
// an ideographic or full-width full stop. "１２７.０.０.１" is then
// 127.0.0.1, and "０ｘ７ｆ.１" a non-standard IPv4 form. International host
// names of letters pass (the guard checks every address at dial time in
// any case).
func numericLookalike(host string) bool {
	for _, r := range host {
		if r < utf8.RuneSelf {
			continue
		}
		if unicode.IsNumber(r) || r >= 0xFF01 && r <= 0xFF5E || r == 0x3002 || r == 0xFF61 {
			return true
		}
	}
	return false
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

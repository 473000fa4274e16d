package payload

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a payload, its own levels included: far
// below the 10000 encoding/json reads, so that every receiver's parser reads
// it (Python's json.loads stops near 1000) and so do the records and
// responses that wrap it.
const maxDepth = 512

// errSyntax is wrapped, with the offset, by appendCompact's errors.
var errSyntax = errors.New("syntax error")

// appendCompact appends src to dst with insignificant whitespace removed,
// after checking that src is exactly one valid JSON value in valid UTF-8. It
// does what json.Valid, utf8.Valid and json.Compact do together in one pass,
// several times faster. On error it returns dst unchanged and an error that
// matches ErrInvalidJSON or ErrInvalidUTF8.
func appendCompact(dst, src []byte, depth int) ([]byte, error) {
	c := compactor{src: src, out: dst}
	c.skipSpace()
	if err := c.value(depth); err != nil {
		return dst, err
	}
	c.skipSpace()
	if c.pos != len(src) {
		return dst, c.fail("data after the JSON value")
	}
	return append(c.out, src[c.mark:]...), nil
}

// compactor validates src while copying it to out. Compacting only drops
// whitespace between tokens, so it copies src in spans: out holds src up to
// mark, less the whitespace skipped so far, and each run of whitespace ends
// one span. Already compact input is copied in one piece at the end.
type compactor struct {
	src  []byte
	pos  int
	mark int // start of the span of src not yet copied to out
	out  []byte
}

func (c *compactor) fail(what string) error {
	return fmt.Errorf("%w: %w at offset %d: %s", ErrInvalidJSON, errSyntax, c.pos, what)
}

// skipSpace steps over whitespace, ending the current span before it. Its
// test for none is small enough to be inlined.
func (c *compactor) skipSpace() {
	if c.pos < len(c.src) && c.src[c.pos] <= ' ' {
		c.skipSpaceSlow()
	}
}

//go:noinline (kept out of skipSpace, which must stay small)
func (c *compactor) skipSpaceSlow() {
	if !isSpace(c.src[c.pos]) {
		return
	}
	c.out = append(c.out, c.src[c.mark:c.pos]...)
	for c.pos < len(c.src) && isSpace(c.src[c.pos]) {
		c.pos++
	}
	c.mark = c.pos
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func (c *compactor) value(depth int) error {
	if c.pos >= len(c.src) {
		return c.fail("unexpected end")
	}
	switch b := c.src[c.pos]; {
	case b == '{':
		return c.object(depth + 1)
	case b == '[':
		return c.array(depth + 1)
	case b == '"':
		return c.string()
	case b == '-' || '0' <= b && b <= '9':
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	default:
		return c.fail("invalid character")
	}
}

func (c *compactor) literal(lit string) error {
	if len(c.src)-c.pos < len(lit) || string(c.src[c.pos:c.pos+len(lit)]) != lit {
		return c.fail("invalid literal")
	}
	c.pos += len(lit)
	return nil
}

func (c *compactor) object(depth int) error {
	if depth > maxDepth {
		return c.fail("nested too deeply")
	}
	c.pos++
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		return nil
	}
	for {
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return c.fail("expected a string key")
		}
		if err := c.string(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return c.fail("expected ':'")
		}
		c.pos++
		c.skipSpace()
		if err := c.value(depth); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.src) {
			return c.fail("unexpected end of object")
		}
		switch c.src[c.pos] {
		case ',':
			c.pos++
			c.skipSpace()
		case '}':
			c.pos++
			return nil
		default:
			return c.fail("expected ',' or '}'")
		}
	}
}

func (c *compactor) array(depth int) error {
	if depth > maxDepth {
		return c.fail("nested too deeply")
	}
	c.pos++
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.pos++
		return nil
	}
	for {
		if err := c.value(depth); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.src) {
			return c.fail("unexpected end of array")
		}
		switch c.src[c.pos] {
		case ',':
			c.pos++
			c.skipSpace()
		case ']':
			c.pos++
			return nil
		default:
			return c.fail("expected ',' or ']'")
		}
	}
}

// plain marks the bytes a string may hold as they are: printable ASCII other
// than '"' and '\\'.
var plain = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// string checks a string's escapes, that it holds no raw control character,
// and that it is valid UTF-8; the string is copied verbatim.
func (c *compactor) string() error {
	s := c.src
	i := c.pos + 1 // after the opening quote
	for {
		for i < len(s) && plain[s[i]] {
			i++
		}
		if i >= len(s) {
			c.pos = i
			return c.fail("unexpected end of string")
		}
		switch b := s[i]; {
		case b == '"':
			c.pos = i + 1
			return nil
		case b == '\\':
			if i+1 >= len(s) {
				c.pos = i
				return c.fail("unexpected end of string")
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(s)-i < 6 || !isHex4(s[i+2:i+6]) {
					c.pos = i
					return c.fail("invalid \\u escape")
				}
				i += 6
			default:
				c.pos = i
				return c.fail("invalid escape")
			}
		case b < 0x20:
			c.pos = i
			return c.fail("control character in string")
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return fmt.Errorf("%w at offset %d", ErrInvalidUTF8, i)
			}
			i += size
		}
	}
}

func isHex4(b []byte) bool {
	for _, x := range b {
		if !('0' <= x && x <= '9' || 'a' <= x && x <= 'f' || 'A' <= x && x <= 'F') {
			return false
		}
	}
	return true
}

// number copies a number after checking it against JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *compactor) number() error {
	s := c.src
	i := c.pos
	if s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		c.pos = i
		return c.fail("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			c.pos = i
			return c.fail("invalid number fraction")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			c.pos = i
			return c.fail("invalid number exponent")
		}
	}
	c.pos = i
	return nil
}

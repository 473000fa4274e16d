package payload

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of raw JSON, as encoding/json does.
const maxDepth = 10000

// errSyntax is wrapped, with the offset, by appendCompact's errors.
var errSyntax = errors.New("syntax error")

// appendCompact appends src to dst with insignificant whitespace removed,
// after checking that src is exactly one valid JSON value in valid UTF-8. It
// does what json.Valid, utf8.Valid and json.Compact do together in one pass,
// several times faster. On error it returns dst unchanged and an error that
// matches ErrInvalidJSON or ErrInvalidUTF8.
func appendCompact(dst, src []byte) ([]byte, error) {
	c := compactor{src: src, out: dst}
	c.skipSpace()
	if err := c.value(0); err != nil {
		return dst, err
	}
	c.skipSpace()
	if c.pos != len(src) {
		return dst, c.fail("data after the JSON value")
	}
	return c.out, nil
}

type compactor struct {
	src []byte
	pos int
	out []byte
}

func (c *compactor) fail(what string) error {
	return fmt.Errorf("%w: %w at offset %d: %s", ErrInvalidJSON, errSyntax, c.pos, what)
}

func (c *compactor) skipSpace() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

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
	c.out = append(c.out, lit...)
	c.pos += len(lit)
	return nil
}

func (c *compactor) object(depth int) error {
	if depth > maxDepth {
		return c.fail("nested too deeply")
	}
	c.out = append(c.out, '{')
	c.pos++
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.out = append(c.out, '}')
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
		c.out = append(c.out, ':')
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
			c.out = append(c.out, ',')
			c.pos++
			c.skipSpace()
		case '}':
			c.out = append(c.out, '}')
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
	c.out = append(c.out, '[')
	c.pos++
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.out = append(c.out, ']')
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
			c.out = append(c.out, ',')
			c.pos++
			c.skipSpace()
		case ']':
			c.out = append(c.out, ']')
			c.pos++
			return nil
		default:
			return c.fail("expected ',' or ']'")
		}
	}
}

// string copies a string verbatim after checking its escapes, that it holds
// no raw control character, and that it is valid UTF-8.
func (c *compactor) string() error {
	start := c.pos
	c.pos++ // opening quote
	for c.pos < len(c.src) {
		b := c.src[c.pos]
		switch {
		case b == '"':
			c.pos++
			c.out = append(c.out, c.src[start:c.pos]...)
			return nil
		case b == '\\':
			if c.pos+1 >= len(c.src) {
				return c.fail("unexpected end of string")
			}
			switch c.src[c.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.pos += 2
			case 'u':
				if len(c.src)-c.pos < 6 || !isHex4(c.src[c.pos+2:c.pos+6]) {
					return c.fail("invalid \\u escape")
				}
				c.pos += 6
			default:
				return c.fail("invalid escape")
			}
		case b < 0x20:
			return c.fail("control character in string")
		case b < utf8.RuneSelf:
			c.pos++
		default:
			r, size := utf8.DecodeRune(c.src[c.pos:])
			if r == utf8.RuneError && size == 1 {
				return fmt.Errorf("%w at offset %d", ErrInvalidUTF8, c.pos)
			}
			c.pos += size
		}
	}
	return c.fail("unexpected end of string")
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
	start := c.pos
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
	c.out = append(c.out, s[start:i]...)
	return nil
}

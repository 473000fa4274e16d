package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// compactCases are seeds for FuzzCompact and cases for TestCompact.
var compactCases = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e-10`, `-12.34E+5`, `"x"`,
	` { "a" : [ 1 , 2 , { "b" : null } ] , "c" : "d e" } `,
	"{\"k\":\"\\u00e9\\n\\\"\\\\\\/\"}", `"<a&b> é \u2028"`, "[\n\t1\r]",
	`01`, `1.`, `.5`, `-`, `1e`, `1e+`, `tru`, `nul`, `{"a"}`, `{"a":}`, `{,}`, `[1,]`, `[,1]`, `{"a":1,}`,
	`"\x"`, `"\u12"`, `"\u12G4"`, "\"a\x01\"", `"unterminated`, `1 2`, `[1] x`, ``, ` `, `{"a":1}}`,
	"\"\xff\"", "\"\xc3\"", `[[[[[[[[[[]]]]]]]]]]`, `{"a":[{"b":[{"c":{}}]}]}`,
}

func TestCompact(t *testing.T) {
	for _, in := range compactCases {
		checkCompact(t, []byte(in))
	}
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	_, err := appendCompact(nil, []byte(deep), 0)
	if !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("nesting beyond %d: got %v, want ErrInvalidJSON", maxDepth, err)
	}
}

// checkCompact compares appendCompact with encoding/json: the same verdict
// on validity (plus a UTF-8 check, which encoding/json does not make) and
// the same compacted bytes.
func checkCompact(t *testing.T, in []byte) {
	t.Helper()
	got, err := appendCompact([]byte("pre"), in, 0)
	wantValid := json.Valid(in) && utf8.Valid(in)
	if (err == nil) != wantValid {
		t.Fatalf("appendCompact(%q): err = %v, encoding/json says valid = %v", in, err, wantValid)
	}
	if err != nil {
		if string(got) != "pre" {
			t.Fatalf("appendCompact(%q) changed dst on error: %q", in, got)
		}
		if !errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("appendCompact(%q): untyped error %v", in, err)
		}
		return
	}
	var want bytes.Buffer
	want.WriteString("pre")
	if err := json.Compact(&want, in); err != nil {
		t.Fatalf("json.Compact(%q): %v", in, err)
	}
	if string(got) != want.String() {
		t.Fatalf("appendCompact(%q) = %q, json.Compact gives %q", in, got, want.String())
	}
}

// FuzzCompact checks appendCompact against encoding/json on any input.
func FuzzCompact(f *testing.F) {
	for _, c := range compactCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkCompact(t, in) })
}

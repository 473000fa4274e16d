package interop

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

// hexCase is one message for hex_verify.mjs and hex_verify.py: a body and
// the headers hookline's Signer wrote with SchemeHex, checked once with
// each secret.
type hexCase struct {
	Name    string            `json:"name"`
	Prefix  string            `json:"prefix"` // the header prefix the receiver is configured with
	Body    []byte            `json:"body"`
	Headers map[string]string `json:"headers"`
	Secrets []string          `json:"secrets"`

	want []bool // one per secret; not sent
	why  string
}

type hexOutput struct {
	Results []struct {
		Name string `json:"name"`
		OK   []bool `json:"ok"`
	} `json:"results"`
}

// TestHexSchemeClassicVerifiers signs bodies with SchemeHex under custom
// header prefixes and has two receivers written from the classic algorithm
// check them: Node (crypto.createHmac, crypto.timingSafeEqual) and Python
// (hmac.new, hmac.compare_digest). Each runs all cases in one process. The
// secret that signed must verify, any other secret must not, and a changed
// body or signature must not. Bodies travel as base64, so bytes that are
// not UTF-8 arrive exactly.
func TestHexSchemeClassicVerifiers(t *testing.T) {
	t.Parallel()
	rng := newRand(t, 3)
	cases := hexCases(t, rng)

	receivers := []struct {
		name string
		run  func(t *testing.T, script string, in, out any)
	}{
		{"hex_verify.mjs", runNode},
		{"hex_verify.py", runPython},
	}
	for _, r := range receivers {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			var out hexOutput
			r.run(t, r.name, map[string]any{"cases": cases}, &out)
			require.Len(t, out.Results, len(cases))
			accepted, rejected := 0, 0
			for i, c := range cases {
				got := out.Results[i]
				require.Equal(t, c.Name, got.Name)
				require.Len(t, got.OK, len(c.want), c.Name)
				for j, want := range c.want {
					if assert.Equal(t, want, got.OK[j], "case %s, secret %d (%q), header %q: %s", c.Name, j, c.Secrets[j], c.Headers, c.why) {
						if want {
							accepted++
						} else {
							rejected++
						}
					}
				}
			}
			t.Logf("%s: %d signatures accepted, %d rejected as expected", r.name, accepted, rejected)
		})
	}
}

// hexPrefixes are the header prefixes the cases use; "" is the default,
// Hookline, and "runflow" is canonicalized to Runflow-Signature.
var hexPrefixes = []string{"Runflow", "runflow", "Acme-Hooks", "X9", ""}

func hexCases(t *testing.T, rng *rand.Rand) []hexCase {
	t.Helper()
	const n = 50
	var cases []hexCase
	for i := range n {
		var body []byte
		kind := "random"
		switch i {
		case 0:
			kind, body = "empty", []byte{}
		case 1:
			kind, body = "64KiB", bigBody(rng, 64<<10)
		case 2:
			kind, body = "frozen", frozenSample(t)
		default:
			if i%4 == 3 {
				// The hex scheme signs raw bytes, UTF-8 or not.
				kind = "binary"
				body = make([]byte, rng.IntN(2048))
				for k := range body {
					body[k] = byte(rng.Uint32())
				}
			} else {
				body = randomBody(rng)
			}
		}
		secret, secretKind := hexSecret(rng, i)
		secrets := []string{secret}
		if i%10 == 7 {
			// A rotation: the hex scheme carries one signature, by the
			// primary; the second secret of the ring must not verify it.
			secretKind += "/rotation"
			secrets = append(secrets, signing.GenerateSecret())
		}
		prefix := hexPrefixes[i%len(hexPrefixes)]
		signer := mustSigner(t, signing.SignerConfig{Schemes: signing.SchemeHex, Prefix: prefix}, secrets...)
		h := http.Header{}
		requestID := uuid.New()
		require.NoError(t, signer.Sign(h, "", requestID, time.Time{}, body)) // SchemeHex uses no id or time

		receiverPrefix := prefix
		if receiverPrefix == "" {
			receiverPrefix = signing.DefaultPrefix
		}
		sigHeader := http.CanonicalHeaderKey(receiverPrefix + "-Signature")
		sig := h.Get(sigHeader)
		require.Regexp(t, `^[0-9a-f]{64}$`, sig, "%s must be 64 lowercase hex digits", sigHeader)
		want, err := mustSecret(t, secret).SignHex(body)
		require.NoError(t, err)
		require.Equal(t, want, sig, "Signer must sign with the primary's Secret.SignHex")
		require.Equal(t, requestID.String(), h.Get(http.CanonicalHeaderKey(receiverPrefix+"-Request-Id")))
		require.Len(t, h, 2, "SchemeHex alone writes exactly the signature and request-id headers")

		name := fmt.Sprintf("%02d-%s/%s/prefix-%s", i, kind, secretKind, receiverPrefix)
		good := hexCase{Name: name, Prefix: receiverPrefix, Body: body, Headers: flatHeader(h),
			Secrets: slices.Concat(secrets, []string{signing.GenerateSecret()}),
			why:     "only the primary secret that signed may verify"}
		good.want = append(good.want, true)
		for range good.Secrets[1:] {
			good.want = append(good.want, false)
		}
		cases = append(cases, good)

		bad := hexCase{Name: name, Prefix: receiverPrefix, Body: body, Headers: flatHeader(h), Secrets: secrets[:1], want: []bool{false}}
		if i%2 == 0 {
			bad.Name += "/tampered-body"
			bad.why = "a changed body must not verify"
			bad.Body = flipAnyBit(rng, body)
		} else {
			bad.Name += "/tampered-signature"
			bad.why = "a changed signature must not verify"
			bad.Headers[sigHeader] = flipHexDigit(rng, sig)
		}
		cases = append(cases, bad)
	}
	return cases
}

// hexSecret returns a hex-scheme secret string, whose UTF-8 bytes are the
// HMAC key: a whsec_ secret (used whole, prefix and base64 included, not
// decoded), printable ASCII of 1 to 200 bytes (beyond SHA-256's 64-byte
// block HMAC hashes the key first), or text with multi-byte UTF-8.
func hexSecret(rng *rand.Rand, i int) (secret, kind string) {
	switch i % 3 {
	case 0:
		return signing.GenerateSecret(), "whsec"
	case 1:
		b := make([]byte, 1+rng.IntN(200))
		for k := range b {
			b[k] = byte('!' + rng.IntN(94))
		}
		return string(b), fmt.Sprintf("ascii-%d", len(b))
	default:
		var b strings.Builder
		b.WriteString("k")
		for b.Len() < 8+rng.IntN(80) {
			if rng.IntN(3) == 0 {
				b.WriteString([]string{"é", "ß", "日本", "😀", "🔑", " ", "\u00a0"}[rng.IntN(7)])
			} else {
				b.WriteRune(randomRune(rng))
			}
		}
		b.WriteString("k") // no white space at either end: NewSecret refuses it
		return b.String(), "utf8"
	}
}

// flipAnyBit returns a copy of b with one bit flipped anywhere, or a byte
// appended when b is empty.
func flipAnyBit(rng *rand.Rand, b []byte) []byte {
	if len(b) == 0 {
		return []byte{0}
	}
	out := append([]byte(nil), b...)
	out[rng.IntN(len(out))] ^= 1 << rng.IntN(8)
	return out
}

// flipHexDigit changes one digit of a lowercase hex signature to another
// lowercase hex digit, with draws that do not depend on the signature.
func flipHexDigit(rng *rand.Rand, sig string) string {
	const digits = "0123456789abcdef"
	b := []byte(sig)
	i := rng.IntN(len(b))
	b[i] = digits[(strings.IndexByte(digits, b[i])+1+rng.IntN(len(digits)-1))%len(digits)]
	return string(b)
}

package interop

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
)

// scriptTimeout bounds one node or python3 process; each handles all the
// cases of one test.
const scriptTimeout = time.Minute

// runNode runs a script of this directory with node, in this directory so
// that it finds node_modules: in is written to its stdin as JSON, and its
// stdout is decoded as JSON into out.
func runNode(t *testing.T, script string, in, out any) {
	t.Helper()
	node := testenv.LookTool(t, "node")
	runJSON(t, node, []string{script}, in, out)
}

// runPython is runNode for python3, in isolated mode (no user site
// packages, no PYTHON* variables).
func runPython(t *testing.T, script string, in, out any) {
	t.Helper()
	py := testenv.LookTool(t, "python3")
	runJSON(t, py, []string{"-I", script}, in, out)
}

func runJSON(t *testing.T, tool string, args []string, in, out any) {
	t.Helper()
	stdin, err := json.Marshal(in)
	require.NoError(t, err)
	// Read the script here too: go test caches a passing result until a
	// file the test binary itself opened changes, and cannot see what the
	// child process reads.
	dir := packageDir(t)
	_, err = os.ReadFile(filepath.Join(dir, args[len(args)-1]))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	require.NoError(t, err, "%s %s failed; stderr:\n%s", tool, strings.Join(args, " "), stderr.String())
	t.Logf("%s %s: %d bytes in, %d out, %s", tool, strings.Join(args, " "), len(stdin), stdout.Len(), time.Since(start).Round(time.Millisecond))
	require.NoError(t, json.Unmarshal(stdout.Bytes(), out), "%s printed something other than the JSON result:\n%s", args[len(args)-1], stdout.String())
}

// newRand returns the random source for one test, seeded by testenv.Seed
// and the test's own stream number so tests do not share draws.
func newRand(t testing.TB, stream uint64) *rand.Rand {
	t.Helper()
	return rand.New(rand.NewPCG(testenv.Seed(t), stream))
}

// textPieces are the fragments random text is built from: ASCII including
// JSON's special characters and controls, multi-byte UTF-8 of every width,
// and characters that trip encoders (BOM, U+FFFD, combining marks).
var textPieces = []string{
	"a", "Z", "0", "9", " ", "_", "-", ".", ",", ":", "=", "+", "/",
	`"`, `\`, "<", ">", "&", "'", "{", "}", "[", "]",
	"\x00", "\t", "\n", "\r", "\x1b", "\x7f",
	"é", "ß", "Ω", "中文", "日本語", "한국어", "😀", "🔑", "𝄞",
	"\ufeff", "\ufffd", "e\u0301", "\u00a0",
}

// randomText returns valid UTF-8 of about n bytes: pieces above and random
// code points of every UTF-8 length. With lineSeps false it leaves out
// U+2028 and U+2029, which Go's JSON encoder escapes and Python's does not.
func randomText(rng *rand.Rand, n int, lineSeps bool) string {
	var b strings.Builder
	for b.Len() < n {
		switch rng.IntN(4) {
		case 0:
			b.WriteString(textPieces[rng.IntN(len(textPieces))])
		case 1:
			b.WriteRune(randomRune(rng))
		case 2:
			if lineSeps && rng.IntN(8) == 0 {
				b.WriteRune(rune(0x2028 + rng.IntN(2)))
			} else {
				b.WriteByte(byte(' ' + rng.IntN(95)))
			}
		default:
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
	}
	return b.String()
}

// randomRune returns a random Unicode scalar value other than U+2028 and
// U+2029, from the 1-, 2-, 3- or 4-byte UTF-8 ranges.
func randomRune(rng *rand.Rand) rune {
	for {
		var r rune
		switch rng.IntN(4) {
		case 0:
			r = rune(0x20 + rng.IntN(0x5f))
		case 1:
			r = rune(0x80 + rng.IntN(0x800-0x80))
		case 2:
			r = rune(0x800 + rng.IntN(0x10000-0x800))
		default:
			r = rune(0x10000 + rng.IntN(0x110000-0x10000))
		}
		if utf8.ValidRune(r) && r != 0x2028 && r != 0x2029 {
			return r
		}
	}
}

// randomBody returns a random valid UTF-8 body of up to a few KiB.
func randomBody(rng *rand.Rand) []byte {
	return []byte(randomText(rng, rng.IntN(4096), true))
}

// bigBody returns exactly n bytes of valid UTF-8.
func bigBody(rng *rand.Rand, n int) []byte {
	b := []byte(randomText(rng, n-8, true))
	for len(b) < n {
		b = append(b, byte('a'+rng.IntN(26)))
	}
	if len(b) > n { // the last piece overshot: cut back to a rune boundary
		b = b[:n]
		for !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
		for len(b) < n {
			b = append(b, 'x')
		}
	}
	return b
}

// randomMessageID returns a message id of one of the shapes senders use:
// a UUID (what hookline's Deliverer uses), "msg_" and base62 (what the
// Standard Webhooks examples use), or any printable ASCII without space and
// dot (which Sign refuses), commas included, up to signing.MaxMessageIDLen.
func randomMessageID(rng *rand.Rand) string {
	switch rng.IntN(3) {
	case 0:
		var u uuid.UUID
		for i := range u {
			u[i] = byte(rng.Uint32())
		}
		return u.String()
	case 1:
		const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		b := []byte("msg_")
		for range 27 {
			b = append(b, base62[rng.IntN(len(base62))])
		}
		return string(b)
	default:
		b := make([]byte, 1+rng.IntN(signing.MaxMessageIDLen))
		for i := range b {
			if b[i] = byte('!' + rng.IntN(94)); b[i] == '.' {
				b[i] = ','
			}
		}
		return string(b)
	}
}

// whsecOfLen returns a whsec_ secret with an n-byte key drawn from rng,
// padded standard base64 as GenerateSecret writes it.
func whsecOfLen(rng *rand.Rand, n int) string {
	key := make([]byte, n)
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	return signing.StandardSecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// mustSecret is signing.NewSecret with a random id.
func mustSecret(t testing.TB, s string) signing.Secret {
	t.Helper()
	sec, err := signing.NewSecret(uuid.New(), s)
	require.NoError(t, err)
	return sec
}

// mustSigner returns a Signer for the secrets, the first one primary.
func mustSigner(t testing.TB, cfg signing.SignerConfig, secrets ...string) *signing.Signer {
	t.Helper()
	var ring []signing.Secret
	for _, s := range secrets {
		ring = append(ring, mustSecret(t, s))
	}
	keys, err := signing.NewKeyRing(ring[0], ring[1:]...)
	require.NoError(t, err)
	cfg.Keys = keys
	signer, err := signing.NewSigner(cfg)
	require.NoError(t, err)
	return signer
}

// flatHeader turns h into the one-string-per-name map a Node or Python
// receiver sees, keeping Go's canonical casing (Webhook-Id,
// Runflow-Signature) so the receivers' case-insensitive lookup is tested.
func flatHeader(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, v := range h {
		m[k] = strings.Join(v, ", ")
	}
	return m
}

// flipASCIIBit returns a copy of b with the low bit of one ASCII byte
// flipped (so the result stays valid UTF-8), or, when b has no ASCII byte,
// with a byte appended.
func flipASCIIBit(rng *rand.Rand, b []byte) []byte {
	out := bytes.Clone(b)
	var ascii []int
	for i, c := range out {
		if c < utf8.RuneSelf {
			ascii = append(ascii, i)
		}
	}
	if len(ascii) == 0 {
		return append(out, 'x')
	}
	out[ascii[rng.IntN(len(ascii))]] ^= 1
	return out
}

// frozenSample freezes a realistic callback, with non-ASCII text, HTML
// characters and unsorted raw metadata.
func frozenSample(t testing.TB) []byte {
	t.Helper()
	completed := time.Date(2026, 5, 6, 10, 1, 42, 250_000_999, time.FixedZone("CEST", 2*3600))
	b, err := payload.Freeze(payload.Callback{
		Event:   payload.EventBatchSucceeded,
		BatchID: uuid.MustParse("0190a5b4-7c1e-7d1a-9b7e-3c1f0c2d4e5f"),
		Status:  payload.StatusSucceeded,
		Output: payload.Output{
			Items:     []map[string]any{{"id": 1, "name": "Zoë <b>&</b>"}, {"id": 2, "name": "日本語 😀"}},
			Succeeded: 2, Total: 2,
		},
		DurationMS:  102345,
		CreatedAt:   completed.Add(-102345 * time.Millisecond),
		CompletedAt: completed,
		Metadata:    json.RawMessage(`{ "zeta": "last", "alpha": ["é", 1, true, null], "customer": {"b": 2, "a": 1} }`),
	})
	require.NoError(t, err)
	return b
}

package signing_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

func TestNewSecret(t *testing.T) {
	t.Parallel()
	unpadded := "whsec_" + base64.RawStdEncoding.EncodeToString([]byte("thirty-two-bytes-of-key-material"))
	tests := []struct {
		name     string
		secret   string
		wantErr  error
		standard bool // usable for Standard Webhooks
		why      string
	}{
		{"plain string", "runflow-secret-0123456789", nil, false, "a secret without whsec_ is a hex-scheme secret"},
		{"non-ASCII plain string", "sécret-ключ-🔑", nil, false, "the hex key is the string's bytes, whatever they are"},
		{"whsec padded", secretB, nil, true, "whsec_ + standard base64 is a Standard Webhooks secret"},
		{"whsec unpadded", unpadded, nil, true, "padding is optional, as some generators drop it"},
		{"published example", swSecret, nil, true, "the Standard Webhooks example secret"},
		{"empty", "", signing.ErrEmptySecret, false, "no key material at all"},
		{"whsec with nothing after it", "whsec_", signing.ErrInvalidSecret, false, "the decoded key would be empty"},
		{"whsec with bad base64", "whsec_not*base64!", signing.ErrInvalidSecret, false, "a whsec_ secret must decode"},
		{"whsec with url-safe base64", "whsec_-_-_", signing.ErrInvalidSecret, false, "Standard Webhooks uses standard base64"},
		{"trailing newline", "runflow-secret\n", signing.ErrInvalidSecret, false, "white space read from a file is a bug, not key material"},
		{"leading space", " runflow-secret", signing.ErrInvalidSecret, false, "white space around a secret is a bug"},
		{"control character inside", "runflow\x00secret", signing.ErrInvalidSecret, false, "control characters are never intended"},
		{"newline inside whsec base64", "whsec_MfKQ9r8GKYqr\nTwjUPD8ILPZIo2LaLaSw", signing.ErrInvalidSecret, false, "base64 decoders skip newlines; the secret must not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sec, err := signing.NewSecret(idA, tt.secret)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr, tt.why)
				if tt.secret != "" && tt.secret != signing.StandardSecretPrefix {
					assert.NotContains(t, err.Error(), strings.TrimSpace(tt.secret), "errors never contain the secret")
				}
				assert.Equal(t, signing.Secret{}, sec, "a failed NewSecret returns the zero Secret")
				return
			}
			require.NoError(t, err, tt.why)
			assert.Equal(t, idA, sec.ID())

			sig, err := sec.SignHex([]byte("body"))
			require.NoError(t, err, "every valid secret signs the hex scheme")
			assert.Len(t, sig, 64)

			_, err = sec.SignStandard("msg", 1, []byte("body"))
			if tt.standard {
				require.NoError(t, err, tt.why)
			} else {
				require.ErrorIs(t, err, signing.ErrNotStandardSecret, tt.why)
			}
		})
	}
}

func TestSecretHexKeyIsWholeString(t *testing.T) {
	t.Parallel()
	// The hex-scheme key of a whsec_ secret is the full string, prefix
	// included, never the decoded key.
	sec := mustSecret(t, idA, swSecret)
	got, err := sec.SignHex([]byte(swBody))
	require.NoError(t, err)
	assert.Equal(t, hexHMAC([]byte(swSecret), []byte(swBody)), got)

	decoded, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSecret, "whsec_"))
	require.NoError(t, err)
	assert.NotEqual(t, hexHMAC(decoded, []byte(swBody)), got)
}

func TestZeroSecret(t *testing.T) {
	t.Parallel()
	var zero signing.Secret
	assert.Equal(t, uuid.Nil, zero.ID())
	_, err := zero.SignHex([]byte("x"))
	require.ErrorIs(t, err, signing.ErrEmptySecret)
	_, err = zero.SignStandard("msg", 1, []byte("x"))
	require.ErrorIs(t, err, signing.ErrEmptySecret)
	assert.Contains(t, zero.String(), "[redacted]")
}

func TestGenerateSecret(t *testing.T) {
	t.Parallel()
	a, b := signing.GenerateSecret(), signing.GenerateSecret()
	assert.NotEqual(t, a, b, "two generated secrets must differ")
	for _, s := range []string{a, b} {
		require.True(t, strings.HasPrefix(s, signing.StandardSecretPrefix), "generated secrets are whsec_ secrets: %q", s)
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, signing.StandardSecretPrefix))
		require.NoError(t, err)
		assert.Len(t, key, signing.GeneratedSecretBytes)
		assert.GreaterOrEqual(t, len(key), 24, "Standard Webhooks recommends 24 to 64 bytes")
		assert.LessOrEqual(t, len(key), 32)

		sec, err := signing.NewSecret(idA, s)
		require.NoError(t, err)
		_, err = sec.SignStandard("msg", 1, nil)
		require.NoError(t, err, "a generated secret signs Standard Webhooks")
		_, err = sec.SignHex(nil)
		require.NoError(t, err, "and the hex scheme")
	}
}

func TestNewKeyRing(t *testing.T) {
	t.Parallel()
	a := mustSecret(t, idA, swSecret)
	b := mustSecret(t, idB, secretB)
	aAgain := mustSecret(t, idA, secretC)

	tests := []struct {
		name    string
		primary signing.Secret
		others  []signing.Secret
		wantErr error
	}{
		{"one secret", a, nil, nil},
		{"rotation pair", a, []signing.Secret{b}, nil},
		{"zero primary", signing.Secret{}, nil, signing.ErrEmptySecret},
		{"zero other", a, []signing.Secret{{}}, signing.ErrEmptySecret},
		{"same secret twice", a, []signing.Secret{a}, signing.ErrDuplicateSecretID},
		{"different keys, same id", a, []signing.Secret{b, aAgain}, signing.ErrDuplicateSecretID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := signing.NewKeyRing(tt.primary, tt.others...)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Equal(t, 0, r.Len())
				assertNoKey(t, err.Error(), swSecret, secretB, secretC)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 1+len(tt.others), r.Len())
			assert.Equal(t, tt.primary.ID(), r.Primary().ID())
			assert.Equal(t, append([]signing.Secret{tt.primary}, tt.others...), r.Secrets())
		})
	}

	t.Run("Secrets returns a copy", func(t *testing.T) {
		t.Parallel()
		r := mustRing(t, a, b)
		got := r.Secrets()
		got[0] = b
		assert.Equal(t, idA, r.Primary().ID(), "changing the returned slice must not change the ring")
	})
	t.Run("zero ring", func(t *testing.T) {
		t.Parallel()
		var r signing.KeyRing
		assert.Equal(t, 0, r.Len())
		assert.Equal(t, signing.Secret{}, r.Primary())
		assert.Empty(t, r.Secrets())
	})
}

// keyRenderings returns the ways a secret string's key material could show
// up in output: the string itself, its base64 part, each key as text, hex
// (both cases) and as a decimal byte list.
func keyRenderings(secret string) []string {
	keys := [][]byte{[]byte(secret)}
	out := []string{secret}
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		out = append(out, rest)
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		out = append(out,
			string(k),
			hex.EncodeToString(k),
			strings.ToUpper(hex.EncodeToString(k)),
			strings.Trim(fmt.Sprint(k), "[]"),
			strings.Trim(fmt.Sprintf("%#v", k), "[]byte{}"),
		)
	}
	return out
}

// assertNoKey fails when text contains any rendering of any of secrets.
func assertNoKey(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, r := range keyRenderings(s) {
			if strings.Contains(text, r) {
				t.Errorf("key material %q of a secret leaked into output:\n%s", r, text)
			}
		}
	}
}

type exportedHolder struct {
	Name   string
	Secret signing.Secret
	Ring   signing.KeyRing
}

type unexportedHolder struct {
	name   string
	secret signing.Secret
	ring   signing.KeyRing
	cfg    signing.VerifierConfig
}

func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	sa := mustSecret(t, idA, swSecret)
	sb := mustSecret(t, idB, secretB)
	ring := mustRing(t, sa, sb)
	signer := mustSigner(t, signing.SignerConfig{Keys: ring, Schemes: signing.SchemeHex | signing.SchemeStandard})
	vcfg := signing.VerifierConfig{Secrets: []signing.Secret{sa, sb}}
	verifier := mustVerifier(t, vcfg)

	values := map[string]any{
		"Secret":                       sa,
		"*Secret":                      &sa,
		"KeyRing":                      ring,
		"*KeyRing":                     &ring,
		"exported struct fields":       exportedHolder{"x", sa, ring},
		"*exported struct fields":      &exportedHolder{"x", sa, ring},
		"unexported struct fields":     unexportedHolder{"x", sa, ring, vcfg},
		"*unexported struct fields":    &unexportedHolder{"x", sa, ring, vcfg},
		"[]Secret":                     []signing.Secret{sa, sb},
		"map of Secret":                map[string]signing.Secret{"a": sa},
		"[]any":                        []any{sa, ring},
		"SignerConfig":                 signing.SignerConfig{Keys: ring},
		"VerifierConfig":               vcfg,
		"*Signer":                      signer,
		"*Verifier":                    verifier,
		"anonymous struct with Secret": struct{ S, s signing.Secret }{sa, sb},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%p", "%t", "%e", "%20v", "%-40s", "%.5s", "%08x"}
	for name, v := range values {
		for _, verb := range verbs {
			out := fmt.Sprintf(verb, v)
			assertNoKey(t, out, swSecret, secretB)
			if t.Failed() {
				t.Logf("value %s, verb %s", name, verb)
				return
			}
		}
		assertNoKey(t, fmt.Sprint(v), swSecret, secretB)
		assertNoKey(t, fmt.Sprintln(v), swSecret, secretB)
	}

	// The methods themselves, and proof they ran (not just empty output).
	for _, out := range []string{sa.String(), sa.GoString(), fmt.Sprintf("%v", sa), fmt.Sprintf("%+v", sa), fmt.Sprintf("%#v", sa), fmt.Sprintf("%s", sa), fmt.Sprintf("%x", sa)} {
		assertNoKey(t, out, swSecret)
		assert.Contains(t, out, idA.String())
		assert.Contains(t, out, "[redacted]")
	}
	for _, out := range []string{ring.String(), ring.GoString(), fmt.Sprintf("%v", ring), fmt.Sprintf("%#v", ring)} {
		assertNoKey(t, out, swSecret, secretB)
		assert.Contains(t, out, idA.String())
		assert.Contains(t, out, idB.String())
	}
	assert.Equal(t, "Secret{ID:"+idA.String()+" Key:[redacted]}", fmt.Sprintf("%+v", sa))
	assert.Equal(t, `"Secret{ID:`+idA.String()+` Key:[redacted]}"`, fmt.Sprintf("%q", sa))
	assert.Equal(t, `signing.Secret{ID:"`+idA.String()+`", Key:"[redacted]"}`, fmt.Sprintf("%#v", sa))
	nested := fmt.Sprintf("%+v", exportedHolder{"x", sa, ring})
	assert.Contains(t, nested, "Secret:Secret{ID:"+idA.String()+" Key:[redacted]}")
	nestedGo := fmt.Sprintf("%#v", exportedHolder{"x", sa, ring})
	assert.Contains(t, nestedGo, `Secret:signing.Secret{ID:"`+idA.String()+`", Key:"[redacted]"}`)
}

func TestSecretJSON(t *testing.T) {
	t.Parallel()
	sa := mustSecret(t, idA, swSecret)
	sb := mustSecret(t, idB, secretB)
	ring := mustRing(t, sa, sb)

	got, err := json.Marshal(sa)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"`+idA.String()+`","key":"[redacted]"}`, string(got))

	got, err = json.Marshal(ring)
	require.NoError(t, err)
	assert.JSONEq(t, `{"primary_id":"`+idA.String()+`","secret_ids":["`+idA.String()+`","`+idB.String()+`"]}`, string(got))

	for _, v := range []any{
		sa, &sa, ring, exportedHolder{"x", sa, ring}, []signing.Secret{sa, sb},
		map[string]signing.Secret{"a": sa}, signing.SignerConfig{Keys: ring},
		struct{ Secrets []signing.Secret }{[]signing.Secret{sa, sb}},
	} {
		out, err := json.Marshal(v)
		require.NoError(t, err)
		assertNoKey(t, string(out), swSecret, secretB)
		out, err = json.MarshalIndent(v, "", "  ")
		require.NoError(t, err)
		assertNoKey(t, string(out), swSecret, secretB)
	}
}

func TestSecretSlog(t *testing.T) {
	t.Parallel()
	sa := mustSecret(t, idA, swSecret)
	sb := mustSecret(t, idB, secretB)
	ring := mustRing(t, sa, sb)

	for _, tc := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := slog.New(tc.new(&buf))
			log.Info("secrets",
				"secret", sa,
				"ptr", &sa,
				"ring", ring,
				slog.Any("any", sa),
				"holder", exportedHolder{"x", sa, ring},
				"unexported", unexportedHolder{name: "x", secret: sa, ring: ring},
				"cfg", signing.SignerConfig{Keys: ring},
				"list", []signing.Secret{sa, sb},
			)
			log.With("secret", sa).WithGroup("g").Info("again", "ring", ring)
			out := buf.String()
			assertNoKey(t, out, swSecret, secretB)
			assert.Contains(t, out, idA.String())
			assert.Contains(t, out, "[redacted]")
		})
	}
}

func TestErrorsNeverContainKeys(t *testing.T) {
	t.Parallel()
	sa := mustSecret(t, idA, swSecret)
	plain := mustSecret(t, idB, "plain-hex-scheme-secret")
	var errs []error

	_, err := signing.NewKeyRing(sa, sa)
	errs = append(errs, err)
	_, err = signing.NewSigner(signing.SignerConfig{Keys: mustRing(t, plain)})
	errs = append(errs, err)
	_, err = signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{sa, plain}})
	errs = append(errs, err)
	_, err = plain.SignStandard("msg", 1, nil)
	errs = append(errs, err)
	for _, bad := range []string{"whsec_not*base64!", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "plain-hex-scheme-secret\x01"} {
		_, err := signing.NewSecret(idA, bad)
		errs = append(errs, err)
		assert.NotContains(t, err.Error(), strings.TrimSpace(bad))
		assert.NotContains(t, err.Error(), "not*base64")
	}

	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sa}, Now: clockAt(swTimestamp + 3600)})
	h := signedStandard(t, swMsgID, swTimestamp, []byte(swBody), sa)
	_, err = v.Verify(h, []byte(swBody))
	errs = append(errs, err)
	h.Set(signing.HeaderWebhookTimestamp, fmt.Sprint(swTimestamp+3600))
	_, err = v.Verify(h, []byte(swBody))
	errs = append(errs, err)

	for _, err := range errs {
		require.Error(t, err)
		assertNoKey(t, err.Error(), swSecret, "plain-hex-scheme-secret")
		assertNoKey(t, fmt.Sprintf("%+v", err), swSecret, "plain-hex-scheme-secret")
	}
}

// Compile-time checks that the redaction hooks are the ones fmt, json and
// slog look for.
var (
	_ fmt.Formatter  = signing.Secret{}
	_ fmt.Stringer   = signing.Secret{}
	_ fmt.GoStringer = signing.Secret{}
	_ json.Marshaler = signing.Secret{}
	_ slog.LogValuer = signing.Secret{}
	_ fmt.Formatter  = signing.KeyRing{}
	_ json.Marshaler = signing.KeyRing{}
	_ slog.LogValuer = signing.KeyRing{}
)

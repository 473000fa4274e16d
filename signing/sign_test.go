package signing_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

// hexHMAC is the hex scheme computed with bare crypto/hmac.
func hexHMAC(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestStandardWebhooksKnownAnswer(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)

	t.Run("Secret.SignStandard", func(t *testing.T) {
		t.Parallel()
		got, err := sec.SignStandard(swMsgID, swTimestamp, []byte(swBody))
		require.NoError(t, err)
		assert.Equal(t, swSignature, got)
	})

	t.Run("Signer.Sign", func(t *testing.T) {
		t.Parallel()
		s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, sec)})
		h := http.Header{}
		require.NoError(t, s.Sign(h, swMsgID, requestID, time.Unix(swTimestamp, 0), []byte(swBody)))
		assert.Equal(t, http.Header{
			"Webhook-Id":        {swMsgID},
			"Webhook-Timestamp": {"1614265330"},
			"Webhook-Signature": {swSignature},
		}, h, "the default scheme is Standard Webhooks only, and sets exactly these headers")
	})

	t.Run("Signer.Sign ignores the time zone and sub-second part", func(t *testing.T) {
		t.Parallel()
		s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, sec)})
		h := http.Header{}
		ts := time.Unix(swTimestamp, 999_999_999).In(time.FixedZone("UTC+5", 5*3600))
		require.NoError(t, s.Sign(h, swMsgID, requestID, ts, []byte(swBody)))
		assert.Equal(t, swSignature, h.Get(signing.HeaderWebhookSignature))
	})

	t.Run("Verifier", func(t *testing.T) {
		t.Parallel()
		v := mustVerifier(t, signing.VerifierConfig{
			Secrets: []signing.Secret{sec},
			Now:     clockAt(swTimestamp),
		})
		// Lower-case names as a non-Go sender writes them on the wire;
		// net/http canonicalizes them on the way in, as Header.Set does here.
		h := http.Header{}
		h.Set("webhook-id", swMsgID)
		h.Set("webhook-timestamp", "1614265330")
		h.Set("webhook-signature", swSignature)
		got, err := v.VerifyStandard(h, []byte(swBody))
		require.NoError(t, err)
		assert.Equal(t, signing.Verified{
			Scheme:    signing.SchemeStandard,
			SecretID:  idA,
			MessageID: swMsgID,
			Timestamp: time.Unix(swTimestamp, 0),
		}, got)

		got2, err := v.Verify(h, []byte(swBody))
		require.NoError(t, err)
		assert.Equal(t, got, got2)
	})
}

// pythonCase is one input to the Python cross-check.
type pythonCase struct {
	Secret  string `json:"secret"`
	BodyB64 string `json:"body_b64"`
	MsgID   string `json:"msg_id"`
	TS      int64  `json:"ts"`
}

// pythonScript computes both schemes with Python's hmac and hashlib.
const pythonScript = `
import base64, hashlib, hmac, json, sys
out = []
for c in json.load(sys.stdin):
    body = base64.b64decode(c["body_b64"])
    r = {"hex": hmac.new(c["secret"].encode("utf-8"), body, hashlib.sha256).hexdigest()}
    if c["secret"].startswith("whsec_"):
        key = base64.b64decode(c["secret"][len("whsec_"):], validate=True)
        content = c["msg_id"].encode("utf-8") + b"." + str(c["ts"]).encode() + b"." + body
        r["std"] = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    out.append(r)
json.dump(out, sys.stdout)
`

// requirePython3 returns the path of python3, skipping the test when it is
// missing, unless CI=true, where a missing python3 is a broken runner.
func requirePython3(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 not found on PATH (%v); CI=true requires the Python cross-check to run", err)
		}
		t.Skipf("python3 not found on PATH (%v); skipping the cross-check against Python's hmac (it is required when CI=true)", err)
	}
	return path
}

func TestSignaturesMatchPython(t *testing.T) {
	t.Parallel()
	python := requirePython3(t)

	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	bodies := [][]byte{nil, []byte(swBody), allBytes, []byte("ünïcödé ✓ \u2028"), big}
	secrets := []string{"runflow-secret-0123456789", swSecret, secretB, secretC, "sécret-ключ-🔑"}

	var cases []pythonCase
	for _, s := range secrets {
		for i, b := range bodies {
			cases = append(cases, pythonCase{
				Secret:  s,
				BodyB64: base64.StdEncoding.EncodeToString(b),
				MsgID:   "msg_" + strings.Repeat("x", i) + "_0190a5b4",
				TS:      swTimestamp + int64(i)*1000,
			})
		}
	}
	in, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command(python, "-c", pythonScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "python3 failed: %s", stderr.String())
	var want []struct {
		Hex string `json:"hex"`
		Std string `json:"std"`
	}
	require.NoError(t, json.Unmarshal(out, &want))
	require.Len(t, want, len(cases))

	for i, c := range cases {
		body, err := base64.StdEncoding.DecodeString(c.BodyB64)
		require.NoError(t, err)
		sec := mustSecret(t, idA, c.Secret)

		got, err := sec.SignHex(body)
		require.NoError(t, err)
		assert.Equal(t, want[i].Hex, got, "hex scheme, case %d (secret #%d)", i, i/len(bodies))
		require.Len(t, got, 64)
		assert.Equal(t, strings.ToLower(got), got, "hex signatures are lower case")

		if want[i].Std == "" {
			continue
		}
		got, err = sec.SignStandard(c.MsgID, c.TS, body)
		require.NoError(t, err)
		assert.Equal(t, want[i].Std, got, "standard webhooks, case %d", i)
	}
}

func TestSignerBothSchemes(t *testing.T) {
	t.Parallel()
	a := mustSecret(t, idA, swSecret)
	b := mustSecret(t, idB, secretB)
	body := []byte(`{"event":"batch.succeeded"}`)
	ts := time.Unix(1_700_000_000, 0)

	s := mustSigner(t, signing.SignerConfig{
		Keys:    mustRing(t, a, b),
		Schemes: signing.SchemeHex | signing.SchemeStandard,
		Prefix:  "Runflow",
	})
	h := http.Header{}
	require.NoError(t, s.Sign(h, "0190a5b4-delivery", requestID, ts, body))

	sigA, err := a.SignStandard("0190a5b4-delivery", ts.Unix(), body)
	require.NoError(t, err)
	sigB, err := b.SignStandard("0190a5b4-delivery", ts.Unix(), body)
	require.NoError(t, err)
	assert.Equal(t, idA, s.Keys().Primary().ID(), "Keys gives the id to record as the signing secret")
	assert.Equal(t, 2, s.Keys().Len())
	assert.Equal(t, http.Header{
		"Runflow-Signature":  {hexHMAC([]byte(swSecret), body)},
		"Runflow-Request-Id": {requestID.String()},
		"Webhook-Id":         {"0190a5b4-delivery"},
		"Webhook-Timestamp":  {"1700000000"},
		"Webhook-Signature":  {sigA + " " + sigB},
	}, h, "hex is signed by the primary only; Standard Webhooks by every secret, primary first")
}

func TestSignerHexOnly(t *testing.T) {
	t.Parallel()
	plain := mustSecret(t, idA, "runflow-secret-0123456789")
	s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, plain), Schemes: signing.SchemeHex})
	h := http.Header{}
	// Standard Webhooks inputs are not used, so not checked.
	require.NoError(t, s.Sign(h, "", requestID, time.Time{}, []byte("body")))
	assert.Equal(t, http.Header{
		"Hookline-Signature":  {hexHMAC([]byte("runflow-secret-0123456789"), []byte("body"))},
		"Hookline-Request-Id": {requestID.String()},
	}, h, "the default prefix is Hookline")
}

func TestSignerReplacesHeaders(t *testing.T) {
	t.Parallel()
	a := mustSecret(t, idA, swSecret)
	s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, a), Schemes: signing.SchemeHex | signing.SchemeStandard})
	h := http.Header{
		"Webhook-Signature":  {"v1,stale", "v1,stale2"},
		"Hookline-Signature": {"stale"},
		"Content-Type":       {"application/json"},
	}
	require.NoError(t, s.Sign(h, swMsgID, requestID, time.Unix(swTimestamp, 0), []byte(swBody)))
	assert.Equal(t, []string{swSignature}, h.Values(signing.HeaderWebhookSignature), "a retry must not keep the previous attempt's signatures")
	assert.Len(t, h.Values("Hookline-Signature"), 1)
	assert.Equal(t, "application/json", h.Get("Content-Type"), "other headers are left alone")

	// Header values share one backing array; appending to one header must
	// not overwrite the next.
	before := h.Get("Hookline-Request-Id")
	h.Add("Hookline-Signature", "appended")
	h.Add(signing.HeaderWebhookID, "appended")
	assert.Equal(t, before, h.Get("Hookline-Request-Id"))
	assert.Equal(t, "1614265330", h.Get(signing.HeaderWebhookTimestamp))
}

func TestSignerPrefix(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	tests := []struct {
		prefix     string
		wantHeader string // canonical signature header; "" when invalid
	}{
		{"", "Hookline-Signature"},
		{"Runflow", "Runflow-Signature"},
		{"runflow", "Runflow-Signature"},
		{"X-ACME", "X-Acme-Signature"},
		{"a", "A-Signature"},
		{"v2", "V2-Signature"},
		{strings.Repeat("a", signing.MaxPrefixLen), "A" + strings.Repeat("a", signing.MaxPrefixLen-1) + "-Signature"},
		{strings.Repeat("a", signing.MaxPrefixLen+1), ""},
		{"Run flow", ""},
		{"Runflow\r\nX-Evil: 1", ""},
		{"Runflow\n", ""},
		{"Runflow:", ""},
		{"Run_flow", ""},
		{"-Runflow", ""},
		{"Runflow-", ""},
		{"Rünflow", ""},
		{"Run\x00flow", ""},
		{"webhook", ""}, // Webhook-Signature is the Standard Webhooks header
		{"WEBHOOK", ""},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			t.Parallel()
			s, err := signing.NewSigner(signing.SignerConfig{Keys: mustRing(t, sec), Schemes: signing.SchemeHex, Prefix: tt.prefix})
			_, verr := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{sec}, Schemes: signing.SchemeHex, Prefix: tt.prefix})
			if tt.wantHeader == "" {
				require.ErrorIs(t, err, signing.ErrInvalidPrefix)
				require.ErrorIs(t, verr, signing.ErrInvalidPrefix)
				assert.Contains(t, err.Error(), "SignerConfig.Prefix", "the error names the field")
				assert.NotContains(t, err.Error(), "\n", "the error must not carry the raw prefix")
				return
			}
			require.NoError(t, err)
			require.NoError(t, verr)
			h := http.Header{}
			require.NoError(t, s.Sign(h, "", requestID, time.Time{}, nil))
			assert.NotEmpty(t, h[tt.wantHeader], "header %q in %v", tt.wantHeader, h)
			assert.NotEmpty(t, h[strings.TrimSuffix(tt.wantHeader, "Signature")+"Request-Id"])
		})
	}
}

func TestNewSignerErrors(t *testing.T) {
	t.Parallel()
	whsec := mustSecret(t, idA, swSecret)
	plain := mustSecret(t, idB, "runflow-secret-0123456789")
	tests := []struct {
		name    string
		cfg     signing.SignerConfig
		wantErr error
		field   string
	}{
		{"zero config", signing.SignerConfig{}, signing.ErrInvalidConfig, "SignerConfig.Keys"},
		{"unknown scheme bits", signing.SignerConfig{Keys: mustRing(t, whsec), Schemes: 1 << 5}, signing.ErrInvalidConfig, "SignerConfig.Schemes"},
		{"plain primary with Standard Webhooks", signing.SignerConfig{Keys: mustRing(t, plain)}, signing.ErrNotStandardSecret, "SignerConfig.Keys"},
		{"plain other with Standard Webhooks", signing.SignerConfig{Keys: mustRing(t, whsec, plain), Schemes: signing.SchemeHex | signing.SchemeStandard}, signing.ErrNotStandardSecret, "SignerConfig.Keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := signing.NewSigner(tt.cfg)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tt.field, "the error names the field to fix")
		})
	}

	t.Run("plain secret is fine for the hex scheme", func(t *testing.T) {
		t.Parallel()
		_, err := signing.NewSigner(signing.SignerConfig{Keys: mustRing(t, plain, whsec), Schemes: signing.SchemeHex})
		require.NoError(t, err)
	})
}

func TestSignInvalid(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, sec), Schemes: signing.SchemeHex | signing.SchemeStandard})
	ts := time.Unix(swTimestamp, 0)
	tests := []struct {
		name  string
		h     http.Header
		msgID string
		ts    time.Time
	}{
		{"nil header", nil, "msg", ts},
		{"empty message id", http.Header{}, "", ts},
		{"space in message id", http.Header{}, "msg 1", ts},
		{"newline in message id", http.Header{}, "msg\r\nX-Evil: 1", ts},
		{"non-ASCII message id", http.Header{}, "msg_ü", ts},
		{"DEL in message id", http.Header{}, "msg\x7f", ts},
		{"message id too long", http.Header{}, strings.Repeat("m", signing.MaxMessageIDLen+1), ts},
		{"zero timestamp", http.Header{}, "msg", time.Time{}},
		{"timestamp before 1970", http.Header{}, "msg", time.Unix(-1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := s.Sign(tt.h, tt.msgID, requestID, tt.ts, []byte(swBody))
			require.ErrorIs(t, err, signing.ErrInvalidMessage)
			if tt.h != nil {
				assert.Empty(t, tt.h, "a failed Sign leaves the headers unchanged")
			}
		})
	}

	t.Run("longest message id", func(t *testing.T) {
		t.Parallel()
		h := http.Header{}
		require.NoError(t, s.Sign(h, strings.Repeat("m", signing.MaxMessageIDLen), requestID, ts, nil))
	})

	t.Run("nil and zero Signer", func(t *testing.T) {
		t.Parallel()
		var nilSigner *signing.Signer
		require.ErrorIs(t, nilSigner.Sign(http.Header{}, "msg", requestID, ts, nil), signing.ErrInvalidConfig)
		require.ErrorIs(t, (&signing.Signer{}).Sign(http.Header{}, "msg", requestID, ts, nil), signing.ErrInvalidConfig)
	})
}

func TestSignConcurrent(t *testing.T) {
	t.Parallel()
	// The pooled HMAC states must never mix two goroutines' messages.
	a := mustSecret(t, idA, swSecret)
	b := mustSecret(t, idB, secretB)
	s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, a, b), Schemes: signing.SchemeHex | signing.SchemeStandard})
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{b}, Now: clockAt(swTimestamp)})

	const workers, rounds = 8, 200
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range rounds {
				body := bytes.Repeat([]byte{byte(w), byte(i)}, 100+w*i)
				h := http.Header{}
				id := uuid.NewString()
				if err := s.Sign(h, id, requestID, time.Unix(swTimestamp, 0), body); err != nil {
					errs <- err
					return
				}
				if h.Get("Hookline-Signature") != hexHMAC([]byte(swSecret), body) {
					errs <- assert.AnError
					return
				}
				if _, err := v.Verify(h, body); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
}

func TestSchemeString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "hex", signing.SchemeHex.String())
	assert.Equal(t, "standard-webhooks", signing.SchemeStandard.String())
	assert.Equal(t, "hex|standard-webhooks", (signing.SchemeHex | signing.SchemeStandard).String())
	assert.Equal(t, "none", signing.Scheme(0).String())
	assert.Equal(t, "Scheme(32)", signing.Scheme(32).String())
}

// The Standard Webhooks spec: "It's important that both the message id and
// the timestamp not be user controlled, or at the very least not be allowed
// to include any `.` to prevent certain attacks." Sign accepted a '.', so the
// signed content "<id>.<ts>.<body>" could be re-split into another id,
// another (arbitrary, later) timestamp and another body, and the receiver
// accepted the re-split message long after the replay window of the
// original closed. Sign refuses such an id now.
func TestSignRefusesADotInTheMessageID(t *testing.T) {
	sec := mustSecret(t, idA, swSecret)
	signer := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, sec)})
	h := http.Header{}
	err := signer.Sign(h, "msg.1", requestID, time.Unix(swTimestamp, 0), []byte(swBody))
	require.ErrorIs(t, err, signing.ErrInvalidMessage, "the spec asks for no dot in a message id")
	require.Empty(t, h, "a refused Sign leaves h unchanged")
}

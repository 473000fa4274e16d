package signing_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

func TestVerifyStandardTampering(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	other := mustSecret(t, idB, secretB)
	body := []byte(swBody)
	tol := signing.DefaultTolerance
	tolSec := int64(tol / time.Second)
	validSig := base64.StdEncoding.EncodeToString(make([]byte, 32)) // well formed, wrong

	tests := []struct {
		name    string
		secrets []signing.Secret    // verifier secrets; default {sec}
		now     int64               // verifier clock; default swTimestamp
		edit    func(http.Header)   // applied to correctly signed headers
		body    func([]byte) []byte // applied to the body
		wantErr error               // nil: must verify
		why     string
	}{
		{name: "untouched", why: "the published example verifies"},
		{name: "one flipped body bit", body: flipByte(0), wantErr: signing.ErrNoMatchingSignature, why: "the body is signed"},
		{name: "last body byte flipped", body: flipByte(len(body) - 1), wantErr: signing.ErrNoMatchingSignature, why: "all of the body is signed"},
		{name: "body extended", body: func(b []byte) []byte { return append(b, ' ') }, wantErr: signing.ErrNoMatchingSignature, why: "the body length is signed"},
		{name: "body truncated", body: func(b []byte) []byte { return b[:len(b)-1] }, wantErr: signing.ErrNoMatchingSignature, why: "the body length is signed"},
		{name: "empty body", body: func([]byte) []byte { return nil }, wantErr: signing.ErrNoMatchingSignature, why: "the body is signed"},
		{name: "wrong secret", secrets: []signing.Secret{other}, wantErr: signing.ErrNoMatchingSignature, why: "only the signing secret verifies"},
		{name: "swapped message id", edit: set(signing.HeaderWebhookID, "msg_p5jXN8AQM9LWM0D4loKWxJel"), wantErr: signing.ErrNoMatchingSignature, why: "the message id is signed"},
		{name: "timestamp moved by one second", edit: set(signing.HeaderWebhookTimestamp, strconv.FormatInt(swTimestamp+1, 10)), wantErr: signing.ErrNoMatchingSignature, why: "the timestamp is signed"},
		{name: "timestamp with leading zero", edit: set(signing.HeaderWebhookTimestamp, "01614265330"), why: "the timestamp is signed as the integer, like the reference libraries"},
		{name: "stale by one second past tolerance", now: swTimestamp + tolSec + 1, wantErr: signing.ErrTimestampTooOld, why: "replays are refused after the tolerance"},
		{name: "stale by a day", now: swTimestamp + 86400, wantErr: signing.ErrTimestampTooOld, why: "replays are refused after the tolerance"},
		{name: "exactly tolerance old", now: swTimestamp + tolSec, why: "the window is inclusive"},
		{name: "future by one second past tolerance", now: swTimestamp - tolSec - 1, wantErr: signing.ErrTimestampTooNew, why: "the tolerance applies in both directions"},
		{name: "exactly tolerance ahead", now: swTimestamp - tolSec, why: "the window is inclusive"},
		{name: "timestamp far in the future", edit: set(signing.HeaderWebhookTimestamp, "9223372036854775807"), wantErr: signing.ErrTimestampTooNew, why: "no overflow on the largest int64"},
		{name: "timestamp zero", edit: set(signing.HeaderWebhookTimestamp, "0"), wantErr: signing.ErrTimestampTooOld, why: "1970 is too old"},
		{name: "missing webhook-id", edit: del(signing.HeaderWebhookID), wantErr: signing.ErrMissingHeader},
		{name: "empty webhook-id", edit: set(signing.HeaderWebhookID, ""), wantErr: signing.ErrMissingHeader},
		{name: "missing webhook-timestamp", edit: del(signing.HeaderWebhookTimestamp), wantErr: signing.ErrMissingHeader},
		{name: "missing webhook-signature", edit: del(signing.HeaderWebhookSignature), wantErr: signing.ErrMissingHeader},
		{name: "blank webhook-signature", edit: set(signing.HeaderWebhookSignature, "  "), wantErr: signing.ErrMissingHeader},
		{name: "timestamp not a number", edit: set(signing.HeaderWebhookTimestamp, "yesterday"), wantErr: signing.ErrMalformedHeader},
		{name: "negative timestamp", edit: set(signing.HeaderWebhookTimestamp, "-1614265330"), wantErr: signing.ErrMalformedHeader},
		{name: "timestamp with plus sign", edit: set(signing.HeaderWebhookTimestamp, "+1614265330"), wantErr: signing.ErrMalformedHeader},
		{name: "fractional timestamp", edit: set(signing.HeaderWebhookTimestamp, "1614265330.5"), wantErr: signing.ErrMalformedHeader},
		{name: "timestamp overflowing int64", edit: set(signing.HeaderWebhookTimestamp, "99999999999999999999"), wantErr: signing.ErrMalformedHeader},
		{name: "signature without comma", edit: set(signing.HeaderWebhookSignature, "v1"), wantErr: signing.ErrMalformedHeader},
		{name: "signature with empty value", edit: set(signing.HeaderWebhookSignature, "v1,"), wantErr: signing.ErrMalformedHeader},
		{name: "signature with empty version", edit: set(signing.HeaderWebhookSignature, ","+validSig), wantErr: signing.ErrMalformedHeader},
		{name: "v1 not base64", edit: set(signing.HeaderWebhookSignature, "v1,"+strings.Repeat("!", 44)), wantErr: signing.ErrMalformedHeader},
		{name: "v1 url-safe base64", edit: set(signing.HeaderWebhookSignature, "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE="), wantErr: signing.ErrMalformedHeader},
		{name: "v1 unpadded", edit: set(signing.HeaderWebhookSignature, strings.TrimSuffix(swSignature, "=")), wantErr: signing.ErrMalformedHeader},
		{name: "v1 of 31 bytes", edit: set(signing.HeaderWebhookSignature, "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 31))), wantErr: signing.ErrMalformedHeader},
		{name: "v1 hex instead of base64", edit: set(signing.HeaderWebhookSignature, "v1,"+strings.Repeat("ab", 32)), wantErr: signing.ErrMalformedHeader},
		{name: "valid entry then garbage", edit: set(signing.HeaderWebhookSignature, swSignature+" garbage"), why: "a malformed entry is skipped, as the reference libraries skip it"},
		{name: "garbage then valid entry", edit: set(signing.HeaderWebhookSignature, "v1,abc "+swSignature), why: "a malformed entry is skipped"},
		{name: "malformed entries only", edit: set(signing.HeaderWebhookSignature, "v1,abc garbage v1,"), wantErr: signing.ErrMalformedHeader, why: "no well-formed entry"},
		{name: "malformed entries and a wrong one", edit: set(signing.HeaderWebhookSignature, "v1,abc v1,"+validSig), wantErr: signing.ErrNoMatchingSignature, why: "the well-formed entry is compared"},
		{name: "lines joined with comma and space", edit: set(signing.HeaderWebhookSignature, swSignature+", v1,"+validSig), why: "a proxy may join header lines with \", \"; text after a second comma is ignored"},
		{name: "comma separated entries", edit: set(signing.HeaderWebhookSignature, swSignature+","+swSignature), why: "as the reference libraries read it: text after a second comma is ignored"},
		{name: "second comma ends a wrong value", edit: set(signing.HeaderWebhookSignature, "v1,"+validSig+","+swSignature[3:]), wantErr: signing.ErrNoMatchingSignature, why: "only the text between the first two commas is the value"},
		{name: "only unknown versions", edit: set(signing.HeaderWebhookSignature, "v1a,"+validSig+" v2,whatever"), wantErr: signing.ErrNoMatchingSignature, why: "unknown versions are ignored, leaving nothing to match"},
		{name: "unknown version beside v1", edit: set(signing.HeaderWebhookSignature, "v1a,c29tZXRoaW5n "+swSignature), why: "unknown versions are ignored"},
		{name: "wrong v1 beside right v1", edit: set(signing.HeaderWebhookSignature, "v1,"+validSig+" "+swSignature), why: "any one matching entry verifies"},
		{name: "extra spaces and tabs", edit: set(signing.HeaderWebhookSignature, " \t"+swSignature+"  \t "), why: "separators are spaces and tabs, repeated or not"},
		{name: "signature on a second header line", edit: func(h http.Header) {
			h[signing.HeaderWebhookSignature] = []string{"v1," + validSig, swSignature}
		}, why: "several header lines are one list"},
		{name: "signature uppercased version", edit: set(signing.HeaderWebhookSignature, "V1"+swSignature[2:]), wantErr: signing.ErrNoMatchingSignature, why: "V1 is not v1: it is an unknown version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secrets := tt.secrets
			if secrets == nil {
				secrets = []signing.Secret{sec}
			}
			now := tt.now
			if now == 0 {
				now = swTimestamp
			}
			v := mustVerifier(t, signing.VerifierConfig{Secrets: secrets, Now: clockAt(now)})
			h := signedStandard(t, swMsgID, swTimestamp, body, sec)
			require.Equal(t, swSignature, h.Get(signing.HeaderWebhookSignature))
			if tt.edit != nil {
				tt.edit(h)
			}
			b := append([]byte(nil), body...)
			if tt.body != nil {
				b = tt.body(b)
			}

			got, err := v.VerifyStandard(h, b)
			if tt.wantErr == nil {
				require.NoError(t, err, tt.why)
				assert.Equal(t, idA, got.SecretID)
				return
			}
			require.ErrorIs(t, err, tt.wantErr, tt.why)
			assert.Equal(t, signing.Verified{}, got, "a failure returns the zero Verified")
			for _, other := range []error{signing.ErrMissingHeader, signing.ErrMalformedHeader, signing.ErrNoMatchingSignature, signing.ErrTimestampTooOld, signing.ErrTimestampTooNew} {
				if other != tt.wantErr {
					assert.NotErrorIs(t, err, other, "exactly one verification error applies")
				}
			}
			_, err2 := v.Verify(h, b)
			require.ErrorIs(t, err2, tt.wantErr, "Verify picks Standard Webhooks from the headers")
		})
	}
}

func flipByte(i int) func([]byte) []byte {
	return func(b []byte) []byte { b[i] ^= 0x01; return b }
}

func set(name, value string) func(http.Header) {
	return func(h http.Header) { h.Set(name, value) }
}

func del(name string) func(http.Header) {
	return func(h http.Header) { h.Del(name) }
}

func TestVerifyHexTampering(t *testing.T) {
	t.Parallel()
	const key = "runflow-secret-0123456789"
	sec := mustSecret(t, idA, key)
	other := mustSecret(t, idB, "another-runflow-secret")
	body := []byte(`{"event":"batch.failed"}`)
	sig := hexHMAC([]byte(key), body)
	header := "Runflow-Signature"

	tests := []struct {
		name    string
		secrets []signing.Secret
		value   *string // nil: header absent
		body    []byte
		wantErr error
	}{
		{name: "valid", value: &sig},
		{name: "upper-case hex", value: ptr(strings.ToUpper(sig))},
		{name: "surrounding spaces", value: ptr(" " + sig + " ")},
		{name: "flipped body byte", value: &sig, body: []byte(`{"event":"batch.fail3d"}`), wantErr: signing.ErrNoMatchingSignature},
		{name: "wrong secret", secrets: []signing.Secret{other}, value: &sig, wantErr: signing.ErrNoMatchingSignature},
		{name: "missing", wantErr: signing.ErrMissingHeader},
		{name: "empty", value: ptr(""), wantErr: signing.ErrMissingHeader},
		{name: "63 digits", value: ptr(sig[:63]), wantErr: signing.ErrMalformedHeader},
		{name: "65 digits", value: ptr(sig + "0"), wantErr: signing.ErrMalformedHeader},
		{name: "not hex", value: ptr("zz" + sig[2:]), wantErr: signing.ErrMalformedHeader},
		{name: "github style sha256= prefix", value: ptr("sha256=" + sig), wantErr: signing.ErrMalformedHeader},
		{name: "one digit changed", value: ptr(flipHexDigit(sig)), wantErr: signing.ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secrets := tt.secrets
			if secrets == nil {
				secrets = []signing.Secret{other, sec}
			}
			v := mustVerifier(t, signing.VerifierConfig{Secrets: secrets, Schemes: signing.SchemeHex, Prefix: "Runflow"})
			h := http.Header{}
			if tt.value != nil {
				h.Set(header, *tt.value)
			}
			b := body
			if tt.body != nil {
				b = tt.body
			}
			got, err := v.VerifyHex(h, b)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, signing.Verified{Scheme: signing.SchemeHex, SecretID: idA}, got, "the id of the secret that matched")
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			if tt.value != nil {
				_, err = v.Verify(h, b)
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

// With several header lines, each is tried and a malformed one is skipped
// (as VerifyStandard skips a malformed signature); ErrMalformedHeader only
// when none is 64 hex digits.
func TestVerifyHexSeveralLines(t *testing.T) {
	t.Parallel()
	const key = "runflow-secret-0123456789"
	body := []byte(`{"event":"batch.failed"}`)
	sig := hexHMAC([]byte(key), body)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{mustSecret(t, idA, key)}, Schemes: signing.SchemeHex, Prefix: "Runflow"})
	for _, tt := range []struct {
		lines   []string
		wantErr error
	}{
		{[]string{"garbage", sig}, nil},
		{[]string{sig, "sha256=" + sig}, nil},
		{[]string{"garbage", flipHexDigit(sig)}, signing.ErrNoMatchingSignature},
		{[]string{"garbage", ""}, signing.ErrMalformedHeader},
	} {
		_, err := v.VerifyHex(http.Header{"Runflow-Signature": tt.lines}, body)
		if tt.wantErr == nil {
			assert.NoError(t, err, "%q", tt.lines)
		} else {
			assert.ErrorIs(t, err, tt.wantErr, "%q", tt.lines)
		}
	}
}

func ptr(s string) *string { return &s }

func flipHexDigit(s string) string {
	c := byte('0')
	if s[10] == '0' {
		c = '1'
	}
	return s[:10] + string(c) + s[11:]
}

func TestRotation(t *testing.T) {
	t.Parallel()
	old := mustSecret(t, idA, swSecret)
	next := mustSecret(t, idB, secretB)
	stranger := mustSecret(t, idC, secretC)
	body := []byte(`{"event":"batch.succeeded"}`)
	h := signedStandard(t, "msg_rotation", swTimestamp, body, old, next)
	require.Len(t, strings.Fields(h.Get(signing.HeaderWebhookSignature)), 2, "both secrets sign during a rotation")

	for _, tt := range []struct {
		name    string
		secrets []signing.Secret
		wantID  uuid.UUID
		wantErr error
	}{
		{"receiver holds only the old secret", []signing.Secret{old}, idA, nil},
		{"receiver holds only the new secret", []signing.Secret{next}, idB, nil},
		{"receiver holds both", []signing.Secret{next, old}, idB, nil},
		{"receiver holds neither", []signing.Secret{stranger}, uuid.Nil, signing.ErrNoMatchingSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustVerifier(t, signing.VerifierConfig{Secrets: tt.secrets, Now: clockAt(swTimestamp)})
			got, err := v.Verify(h, body)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantID, got.SecretID, "Verified names the first configured secret that matched")
		})
	}

	t.Run("signed by one secret, held third by the receiver", func(t *testing.T) {
		t.Parallel()
		one := signedStandard(t, "msg_one_secret", swTimestamp, body, next)
		v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{stranger, old, next}, Now: clockAt(swTimestamp)})
		got, err := v.Verify(one, body)
		require.NoError(t, err, "every configured secret is tried, not only the first")
		assert.Equal(t, idB, got.SecretID)
	})

	t.Run("hex: receiver holding old and new accepts either primary", func(t *testing.T) {
		t.Parallel()
		v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{old, next}, Schemes: signing.SchemeHex})
		for _, primary := range []signing.Secret{old, next} {
			s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, primary), Schemes: signing.SchemeHex})
			hh := http.Header{}
			require.NoError(t, s.Sign(hh, "", requestID, time.Time{}, body))
			got, err := v.Verify(hh, body)
			require.NoError(t, err)
			assert.Equal(t, primary.ID(), got.SecretID)
		}
	})
}

func TestVerifySchemeSelection(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	body := []byte(swBody)
	both := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, sec), Schemes: signing.SchemeHex | signing.SchemeStandard})
	signed := func(t *testing.T) http.Header {
		h := http.Header{}
		require.NoError(t, both.Sign(h, swMsgID, requestID, time.Unix(swTimestamp, 0), body))
		return h
	}
	hexOnly := func(t *testing.T) http.Header {
		h := signed(t)
		for _, k := range []string{signing.HeaderWebhookID, signing.HeaderWebhookTimestamp, signing.HeaderWebhookSignature} {
			h.Del(k)
		}
		return h
	}
	stdOnly := func(t *testing.T) http.Header {
		h := signed(t)
		h.Del("Hookline-Signature")
		return h
	}

	tests := []struct {
		name       string
		schemes    signing.Scheme
		now        int64
		headers    func(*testing.T) http.Header
		wantScheme signing.Scheme
		wantErr    error
		why        string
	}{
		{"default verifier, both sent", 0, swTimestamp, signed, signing.SchemeStandard, nil, "Standard Webhooks is preferred"},
		{"default verifier, hex only sent", 0, swTimestamp, hexOnly, 0, signing.ErrMissingHeader, "the default verifier does not accept the replayable hex scheme"},
		{"hex and standard verifier, hex only sent", signing.SchemeHex | signing.SchemeStandard, swTimestamp, hexOnly, signing.SchemeHex, nil, "hex accepted when configured"},
		{"hex and standard verifier, standard only sent", signing.SchemeHex | signing.SchemeStandard, swTimestamp, stdOnly, signing.SchemeStandard, nil, ""},
		{"hex and standard verifier, stale replay with both", signing.SchemeHex | signing.SchemeStandard, swTimestamp + 3600, signed, 0, signing.ErrTimestampTooOld, "a present webhook-* header commits to Standard Webhooks: no fallback to hex"},
		{"hex verifier, both sent", signing.SchemeHex, swTimestamp + 3600, signed, signing.SchemeHex, nil, "a hex-only verifier ignores webhook-* headers"},
		{"nothing sent", signing.SchemeHex | signing.SchemeStandard, swTimestamp, func(*testing.T) http.Header { return http.Header{} }, 0, signing.ErrMissingHeader, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Schemes: tt.schemes, Now: clockAt(tt.now)})
			got, err := v.Verify(tt.headers(t), body)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr, tt.why)
				return
			}
			require.NoError(t, err, tt.why)
			assert.Equal(t, tt.wantScheme, got.Scheme, tt.why)
		})
	}
}

func TestVerifierTolerance(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	h := signedStandard(t, swMsgID, swTimestamp, []byte(swBody), sec)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Tolerance: 10 * time.Second, Now: clockAt(swTimestamp + 11)})
	_, err := v.Verify(h, []byte(swBody))
	require.ErrorIs(t, err, signing.ErrTimestampTooOld)

	v = mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Tolerance: 10 * time.Second, Now: clockAt(swTimestamp + 10)})
	_, err = v.Verify(h, []byte(swBody))
	require.NoError(t, err)

	v = mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Tolerance: time.Hour, Now: clockAt(swTimestamp - 3599)})
	_, err = v.Verify(h, []byte(swBody))
	require.NoError(t, err)
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	whsec := mustSecret(t, idA, swSecret)
	plain := mustSecret(t, idB, "runflow-secret-0123456789")
	tests := []struct {
		name    string
		cfg     signing.VerifierConfig
		wantErr error
		field   string
	}{
		{"no secrets", signing.VerifierConfig{}, signing.ErrInvalidConfig, "VerifierConfig.Secrets"},
		{"zero secret", signing.VerifierConfig{Secrets: []signing.Secret{whsec, {}}}, signing.ErrEmptySecret, "VerifierConfig.Secrets[1]"},
		{"plain secret for Standard Webhooks", signing.VerifierConfig{Secrets: []signing.Secret{whsec, plain}}, signing.ErrNotStandardSecret, "VerifierConfig.Secrets[1]"},
		{"unknown scheme bits", signing.VerifierConfig{Secrets: []signing.Secret{whsec}, Schemes: 4}, signing.ErrInvalidConfig, "VerifierConfig.Schemes"},
		{"negative tolerance", signing.VerifierConfig{Secrets: []signing.Secret{whsec}, Tolerance: -time.Second}, signing.ErrInvalidConfig, "VerifierConfig.Tolerance"},
		{"negative body cap", signing.VerifierConfig{Secrets: []signing.Secret{whsec}, MaxBodyBytes: -1}, signing.ErrInvalidConfig, "VerifierConfig.MaxBodyBytes"},
		{"bad prefix", signing.VerifierConfig{Secrets: []signing.Secret{whsec}, Prefix: "a b"}, signing.ErrInvalidPrefix, "VerifierConfig.Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := signing.NewVerifier(tt.cfg)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Nil(t, v)
			assert.Contains(t, err.Error(), tt.field, "the error names the field to fix")
		})
	}

	t.Run("plain secret for the hex scheme", func(t *testing.T) {
		t.Parallel()
		_, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{plain}, Schemes: signing.SchemeHex})
		require.NoError(t, err)
	})

	t.Run("config slice is copied", func(t *testing.T) {
		t.Parallel()
		secrets := []signing.Secret{whsec}
		v := mustVerifier(t, signing.VerifierConfig{Secrets: secrets, Now: clockAt(swTimestamp)})
		secrets[0] = mustSecret(t, idC, secretC)
		_, err := v.Verify(signedStandard(t, swMsgID, swTimestamp, []byte(swBody), whsec), []byte(swBody))
		require.NoError(t, err)
	})
}

func TestVerifyStandardWithoutStandardSecrets(t *testing.T) {
	t.Parallel()
	plain := mustSecret(t, idB, "runflow-secret-0123456789")
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{plain}, Schemes: signing.SchemeHex, Now: clockAt(swTimestamp)})
	h := signedStandard(t, swMsgID, swTimestamp, []byte(swBody), mustSecret(t, idA, swSecret))
	_, err := v.VerifyStandard(h, []byte(swBody))
	require.ErrorIs(t, err, signing.ErrNotStandardSecret, "an explicit VerifyStandard with no whsec_ secret is a configuration error")

	h.Set(signing.HeaderWebhookSignature, "v2,xyz")
	_, err = v.VerifyStandard(h, []byte(swBody))
	require.ErrorIs(t, err, signing.ErrNotStandardSecret, "also when the header holds no v1 entry to compare")
}

func TestNilAndZeroVerifier(t *testing.T) {
	t.Parallel()
	h := signedStandard(t, swMsgID, swTimestamp, []byte(swBody), mustSecret(t, idA, swSecret))
	for name, v := range map[string]*signing.Verifier{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(h, []byte(swBody))
			require.ErrorIs(t, err, signing.ErrInvalidConfig)
			_, err = v.VerifyStandard(h, []byte(swBody))
			require.ErrorIs(t, err, signing.ErrInvalidConfig)
			_, err = v.VerifyHex(h, []byte(swBody))
			require.ErrorIs(t, err, signing.ErrInvalidConfig)
		})
	}
}

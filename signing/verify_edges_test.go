package signing_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

// Every byte of the MAC is compared: the real signature with one bit
// changed at either end or in the middle does not verify, in either scheme.
func TestVerifyComparesEveryByteOfTheMAC(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Now: clockAt(swTimestamp)})
	mac, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSignature, "v1,"))
	require.NoError(t, err)
	for _, i := range []int{0, 15, 16, 31} {
		m := append([]byte(nil), mac...)
		m[i] ^= 1
		h := signedStandard(t, swMsgID, swTimestamp, []byte(swBody), sec)
		h.Set(signing.HeaderWebhookSignature, "v1,"+base64.StdEncoding.EncodeToString(m))
		_, err := v.VerifyStandard(h, []byte(swBody))
		assert.ErrorIs(t, err, signing.ErrNoMatchingSignature, "byte %d changed", i)
	}

	const key = "runflow-secret-0123456789"
	body := []byte(`{"event":"batch.failed"}`)
	hv := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{mustSecret(t, idA, key)}, Schemes: signing.SchemeHex, Prefix: "Runflow"})
	sig := hexHMAC([]byte(key), body)
	for _, pos := range []int{0, 31, 32, 62, 63} {
		s := []byte(sig)
		s[pos] = "1032547698badcfe"[strings.IndexByte("0123456789abcdef", s[pos])] // another hex digit
		_, err := hv.VerifyHex(http.Header{"Runflow-Signature": {string(s)}}, body)
		assert.ErrorIs(t, err, signing.ErrNoMatchingSignature, "hex digit %d changed", pos)
	}
}

// Hex digits are exactly 0-9, a-f and A-F: the characters just outside
// those ranges, anywhere in the value, make it malformed (else a value that
// is not hex could verify, and a MAC would have several spellings).
func TestHexDigitsAreExact(t *testing.T) {
	t.Parallel()
	const key = "runflow-secret-0123456789"
	body := []byte(`{"event":"batch.failed"}`)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{mustSecret(t, idA, key)}, Schemes: signing.SchemeHex, Prefix: "Runflow"})
	sig := hexHMAC([]byte(key), body)
	for _, bad := range []byte("gGzZ/:@`") {
		for _, pos := range []int{0, 1, 62, 63} {
			s := []byte(sig)
			s[pos] = bad
			_, err := v.VerifyHex(http.Header{"Runflow-Signature": {string(s)}}, body)
			assert.ErrorIs(t, err, signing.ErrMalformedHeader, "%q at %d", bad, pos)
		}
	}
}

// A webhook-signature entry with an empty value is malformed whatever its
// version, and a v1 value whose base64 has a non-zero padding bit is too
// (strict decoding: one MAC, one spelling).
func TestSignatureEntriesAreStrict(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Now: clockAt(swTimestamp)})
	value := strings.TrimPrefix(swSignature, "v1,")
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", value[42])
	padded := value[:42] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last|1]) + "="
	require.NotEqual(t, value, padded, "the last character must carry a padding bit to flip")
	for _, header := range []string{"v2,", "v1a, v2,", "v1," + padded} {
		h := signedStandard(t, swMsgID, swTimestamp, []byte(swBody), sec)
		h.Set(signing.HeaderWebhookSignature, header)
		_, err := v.VerifyStandard(h, []byte(swBody))
		assert.ErrorIs(t, err, signing.ErrMalformedHeader, "%q", header)
	}
}

// Any one webhook-* header commits Verify to Standard Webhooks: with the
// other two missing it fails with ErrMissingHeader rather than falling back
// to the hex scheme, whose header is present and valid.
func TestAnyWebhookHeaderCommitsToStandardWebhooks(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	body := []byte(swBody)
	both := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, sec), Schemes: signing.SchemeHex | signing.SchemeStandard})
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Schemes: signing.SchemeHex | signing.SchemeStandard, Now: clockAt(swTimestamp)})
	all := []string{signing.HeaderWebhookID, signing.HeaderWebhookTimestamp, signing.HeaderWebhookSignature}
	for _, keep := range all {
		h := http.Header{}
		require.NoError(t, both.Sign(h, swMsgID, requestID, time.Unix(swTimestamp, 0), body))
		for _, k := range all {
			if k != keep {
				h.Del(k)
			}
		}
		_, err := v.Verify(h, body)
		assert.ErrorIs(t, err, signing.ErrMissingHeader, "only %s kept", keep)
	}
}

// The Unix epoch itself is a valid timestamp; only times before it are
// refused.
func TestSignAtTheEpoch(t *testing.T) {
	t.Parallel()
	s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, mustSecret(t, idA, swSecret))})
	h := http.Header{}
	require.NoError(t, s.Sign(h, swMsgID, requestID, time.Unix(0, 0), nil))
	assert.Equal(t, "0", h.Get(signing.HeaderWebhookTimestamp))
}

// Verified.Timestamp is the time the sender signed, not the verifier's now.
func TestVerifiedTimestampIsTheSendersTime(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Now: clockAt(swTimestamp + 30)})
	got, err := v.VerifyStandard(signedStandard(t, swMsgID, swTimestamp, []byte(swBody), sec), []byte(swBody))
	require.NoError(t, err)
	assert.True(t, got.Timestamp.Equal(time.Unix(swTimestamp, 0)), "Timestamp %v", got.Timestamp)
}

package signing_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

// The Standard Webhooks published example (standardwebhooks.com spec and
// reference libraries), byte for byte.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = int64(1614265330)
	swBody      = `{"test": 2432232314}`
	swSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// Second and third whsec_ secrets: the base64 of fixed ASCII text, 32 and
// 36 bytes.
const (
	secretB = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM="
	secretC = "whsec_dGhpcmQtc2VjcmV0LXRoYXQtbm9ib2R5LXNpZ25lZC13aXRo"
)

var (
	idA = uuid.MustParse("0190a5b4-0000-7000-8000-00000000000a")
	idB = uuid.MustParse("0190a5b4-0000-7000-8000-00000000000b")
	idC = uuid.MustParse("0190a5b4-0000-7000-8000-00000000000c")

	requestID = uuid.MustParse("0190a5b4-7c1e-7d1a-9b7e-3c1f0c2d4e5f")
)

func mustSecret(t testing.TB, id uuid.UUID, s string) signing.Secret {
	t.Helper()
	sec, err := signing.NewSecret(id, s)
	require.NoError(t, err)
	return sec
}

func mustRing(t testing.TB, primary signing.Secret, others ...signing.Secret) signing.KeyRing {
	t.Helper()
	r, err := signing.NewKeyRing(primary, others...)
	require.NoError(t, err)
	return r
}

func mustSigner(t testing.TB, cfg signing.SignerConfig) *signing.Signer {
	t.Helper()
	s, err := signing.NewSigner(cfg)
	require.NoError(t, err)
	return s
}

func mustVerifier(t testing.TB, cfg signing.VerifierConfig) *signing.Verifier {
	t.Helper()
	v, err := signing.NewVerifier(cfg)
	require.NoError(t, err)
	return v
}

// clockAt returns a Now func fixed at unix seconds.
func clockAt(unix int64) func() time.Time {
	t := time.Unix(unix, 0)
	return func() time.Time { return t }
}

// signedStandard returns headers for body signed with Standard Webhooks by
// the given secrets (first is primary).
func signedStandard(t testing.TB, msgID string, ts int64, body []byte, secrets ...signing.Secret) http.Header {
	t.Helper()
	s := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, secrets[0], secrets[1:]...)})
	h := http.Header{}
	require.NoError(t, s.Sign(h, msgID, requestID, time.Unix(ts, 0), body))
	return h
}

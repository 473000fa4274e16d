package delivery

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

// TestDocumentedDefaults pins the defaults that SECURITY.md and the README
// state, as literal values: changing one must change the documents too.
func TestDocumentedDefaults(t *testing.T) {
	ring, err := signing.NewKeyRing(mustTestSecret(t))
	require.NoError(t, err)
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	require.NoError(t, err)
	c, err := Config{Signer: signer}.withDefaults()
	require.NoError(t, err)

	assert.Equal(t, 32, c.Workers)
	assert.Equal(t, 16, c.MaxPerHost, "attempts in flight to one host: half the workers")
	assert.Equal(t, 8, c.MaxAttempts)
	assert.Equal(t, 15*time.Second, c.AttemptTimeout)
	assert.Equal(t, 256<<10, c.MaxPayloadBytes)
	assert.Equal(t, 20_000, c.ResponseBodyLimit)
	assert.Equal(t, 20_000, c.ResponseReadLimit, "reading stops where storing does")
	assert.Equal(t, time.Hour, c.MaxRetryAfter)
	assert.False(t, c.AllowPrivateNetworks)
	assert.False(t, c.AllowURLUserinfo)

	tr, ok := c.HTTPClient.Transport.(*http.Transport)
	require.True(t, ok)
	assert.Nil(t, tr.Proxy, "proxies from the environment are ignored: a proxy would be the guard's only destination")
	assert.Equal(t, 10*time.Second, tr.TLSHandshakeTimeout, "TLS handshakes take at most 10 s")
	assert.Equal(t, 10*time.Second, maxConnectTimeout, "connecting takes at most 10 s")
	req, err := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	require.NoError(t, err)
	assert.ErrorIs(t, c.HTTPClient.CheckRedirect(req, nil), http.ErrUseLastResponse, "redirects are not followed")

	assert.Equal(t, 5*time.Minute, signing.DefaultTolerance, "receivers accept Standard Webhooks timestamps within ±5 minutes")
	assert.Equal(t, int64(1<<20), int64(signing.DefaultMaxBodyBytes), "receivers read at most 1 MiB")
}

func mustTestSecret(t *testing.T) signing.Secret {
	t.Helper()
	s, err := signing.NewSecret([16]byte{1}, signing.GenerateSecret())
	require.NoError(t, err)
	return s
}

// The default Lease is twice a long AttemptTimeout, within MaxLease: the
// doubling of a huge AttemptTimeout overflowed, and New refused a Lease the
// caller never set; such an AttemptTimeout is refused as itself.
func TestDefaultLeaseFollowsALongAttemptTimeout(t *testing.T) {
	ring, err := signing.NewKeyRing(mustTestSecret(t))
	require.NoError(t, err)
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	require.NoError(t, err)
	for _, tc := range []struct{ timeout, lease time.Duration }{
		{10 * time.Second, DefaultLease},
		{time.Hour, 2 * time.Hour},
		{MaxLease * 3 / 4, MaxLease},
	} {
		c, err := Config{Signer: signer, AttemptTimeout: tc.timeout}.withDefaults()
		if assert.NoError(t, err, "AttemptTimeout %s", tc.timeout) {
			assert.Equal(t, tc.lease, c.Lease, "the default Lease for AttemptTimeout %s", tc.timeout)
		}
	}
	_, err = Config{Signer: signer, AttemptTimeout: time.Duration(1<<62) + time.Hour}.withDefaults()
	assert.ErrorContains(t, err, "Config.AttemptTimeout", "a huge AttemptTimeout is refused as such, not as a Lease")
}

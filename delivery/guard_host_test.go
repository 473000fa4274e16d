package delivery_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/store"
)

// The default client is built afresh: what a host program set on
// http.DefaultTransport (a TLS dialer, a TLS config) must not reach it,
// since a DialTLSContext there would dial https callbacks past the guard.
// Not parallel: it changes a global.
func TestDefaultClientIgnoresTheHostsDefaultTransport(t *testing.T) {
	dt, ok := http.DefaultTransport.(*http.Transport)
	require.True(t, ok)
	oldDial, oldTLS := dt.DialTLSContext, dt.TLSClientConfig
	var dialed atomic.Int32
	dt.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed.Add(1)
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
		return d.DialContext(ctx, network, addr)
	}
	dt.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	t.Cleanup(func() { dt.DialTLSContext, dt.TLSClientConfig = oldDial, oldTLS })

	var reqs atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reqs.Add(1) }))
	t.Cleanup(srv.Close)

	h := newHarness(t, nil, guardOn)
	got := h.waitTerminal(h.deliver(srv.URL + "/hooks").ID)
	assert.Equal(t, store.ReasonBlockedDestination, got.FailureReason, "%s", got.FailureDetail)
	assert.Zero(t, reqs.Load(), "the loopback receiver must see nothing")
	assert.Zero(t, dialed.Load(), "the host's TLS dialer is not used")

	// With the guard off, the receiver's self-signed certificate is still
	// checked: the host's InsecureSkipVerify does not apply either.
	h = newHarness(t, nil, nil)
	got = h.waitAttempts(h.deliver(srv.URL+"/hooks").ID, 1)
	assert.Equal(t, store.ReasonTLSError, got.FailureReason, "%s", got.FailureDetail)
	assert.Zero(t, reqs.Load())
}

// Not parallel: it replaces a global.
func TestNewWithAReplacedDefaultTransport(t *testing.T) {
	old := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(func(r *http.Request) (*http.Response, error) { return old.RoundTrip(r) })
	t.Cleanup(func() { http.DefaultTransport = old })
	_, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t))})
	require.NoError(t, err, "a wrapper in http.DefaultTransport (a recorder, a tracer) must not make New fail or panic")
}

// A host with an address the guard allows, which does not answer, is
// unreachable, not blocked, whatever the order of its addresses: the
// attempt is a connection error and is retried. Only a host all of whose
// addresses are refused fails for good. Not parallel: it replaces the
// default resolver with one that asks a fake DNS server.
func TestGuardHostWithAnAllowedAddressDownIsRetried(t *testing.T) {
	// Nothing listens on 127.0.0.3 at port: the allowed address is down.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()

	for _, tc := range []struct {
		name  string
		addrs []string // the A records, in the order the server answers
		want  store.FailureReason
		final bool
	}{
		{"refused first", []string{"127.0.0.1", "127.0.0.3"}, store.ReasonConnectionError, false},
		{"allowed first", []string{"127.0.0.3", "127.0.0.1"}, store.ReasonConnectionError, false},
		{"all refused", []string{"127.0.0.1", "127.0.0.2"}, store.ReasonBlockedDestination, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useFakeDNS(t, tc.addrs)
			h := newHarness(t, nil, func(c *delivery.Config) {
				c.AllowPrivateNetworks = false
				c.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}
			})
			got := h.waitAttempts(h.deliver("http://multi.test:"+port+"/hooks").ID, 1)
			assert.Equal(t, tc.want, got.FailureReason, "%s", got.FailureDetail)
			assert.Equal(t, tc.final, got.Status.Terminal(), "status %s", got.Status)
		})
	}
}

// useFakeDNS makes net.DefaultResolver ask a DNS server on loopback that
// answers every A query with addrs, in that order, and every other query
// with no records, until the test ends.
func useFakeDNS(t *testing.T, addrs []string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], addrs); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp4", pc.LocalAddr().String())
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
}

// dnsAnswer answers the DNS query q (one question): its A records are addrs.
func dnsAnswer(q []byte, addrs []string) []byte {
	if len(q) < 12 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 { // the question's name, label by label
		end += int(q[end]) + 1
	}
	end += 5 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	resp := append([]byte(nil), q[:end]...)
	binary.BigEndian.PutUint16(resp[2:], 0x8180) // a response, recursion available, no error
	binary.BigEndian.PutUint16(resp[6:], 0)      // answers, counted below
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	if qtype != 1 { // A
		return resp
	}
	for _, a := range addrs {
		ip := netip.MustParseAddr(a).As4()
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // name (a pointer to the question's), A, IN, TTL 60, 4 bytes
		resp = append(resp, ip[:]...)
	}
	binary.BigEndian.PutUint16(resp[6:], uint16(len(addrs)))
	return resp
}

// Full-width and similar forms of digits, letters and dots become ASCII on
// the way to DNS (IDNA), so ValidateURL refuses them as it refuses the hosts
// they spell; host names in any script, their own digits included, pass.
func TestValidateURLRefusesASCIILookalikes(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"１２７.０.０.１", "127.0.0.１", "０ｘ７ｆ.１", "２１３０７０６４３３", "example。com", "example．com",
		"example｡com", "ｅｘａｍｐｌｅ.com", "𝟏𝟐𝟕.0.0.1", "0ⓧ7f000001", "127.0.0.0ⓧ1", "127.0.0.¹", "①②⑦.0.0.1", "ℯxample.com", "exampl﹒com", "🯱🯲🯷.🯰.🯰.🯱", "0x7f.\u00ad1", "0x7ꟳ000001", "0x7f00\u20640001", "\u00ad", "\ufe0f", "\u00ad.\u00ad", "\u200b:80"} {
		err := delivery.ValidateURL("http://"+host+"/hooks", false)
		require.ErrorIs(t, err, delivery.ErrInvalidURL, "%q", host)
	}
	for _, host := range []string{"bücher.example", "例え.テスト", "xn--bcher-kva.example", "مثال٣.example", "ทดสอบ๑.example", "пример.рф", "hawaiʻi.example", "i❤\ufe0f.ws", "exam\u00adple.com"} {
		assert.NoError(t, delivery.ValidateURL("https://"+host+"/hooks", false), "%q", host)
	}
}

package delivery_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/storetest"
)

// These tests check the guard's decision on addresses as values; only the
// end-to-end tests below make connections, and only to loopback.

func TestCheckDestinationRefusesSpecialRanges(t *testing.T) {
	// Each case: an address and the range it must be refused as. The
	// ranges are written out by hand (not taken from BlockedRanges) so that
	// a table edit that drops a range the design requires fails here.
	tests := []struct {
		ip, rng string
	}{
		// Loopback.
		{"127.0.0.1", "127.0.0.0/8"},
		{"127.255.255.254", "127.0.0.0/8"},
		{"::1", "::1/128"},
		{"::ffff:127.0.0.1", "127.0.0.0/8"},
		{"64:ff9b::7f00:1", "127.0.0.0/8"},
		// RFC 1918.
		{"10.0.0.1", "10.0.0.0/8"},
		{"10.255.255.255", "10.0.0.0/8"},
		{"172.16.0.1", "172.16.0.0/12"},
		{"172.31.255.255", "172.16.0.0/12"},
		{"192.168.1.1", "192.168.0.0/16"},
		{"::ffff:10.1.2.3", "10.0.0.0/8"},
		{"::ffff:172.20.0.1", "172.16.0.0/12"},
		{"64:ff9b::c0a8:101", "192.168.0.0/16"},
		// Link-local, cloud metadata.
		{"169.254.169.254", "169.254.0.0/16"},
		{"::ffff:169.254.169.254", "169.254.0.0/16"},
		{"64:ff9b::a9fe:a9fe", "169.254.0.0/16"},
		{"fe80::1", "fe80::/10"},
		{"fe80::1%eth0", "fe80::/10"},
		{"febf:ffff::1", "fe80::/10"},
		// CGNAT.
		{"100.64.0.1", "100.64.0.0/10"},
		{"100.127.255.255", "100.64.0.0/10"},
		{"64:ff9b::6440:1", "100.64.0.0/10"},
		// Unspecified and "this network".
		{"0.0.0.0", "0.0.0.0/8"},
		{"0.1.2.3", "0.0.0.0/8"},
		{"::ffff:0.0.0.0", "0.0.0.0/8"},
		{"64:ff9b::", "0.0.0.0/8"},
		{"::", "::/128"},
		// Multicast, broadcast, reserved.
		{"224.0.0.1", "224.0.0.0/4"},
		{"239.255.255.250", "224.0.0.0/4"},
		{"::ffff:239.1.2.3", "224.0.0.0/4"},
		{"ff02::1", "ff00::/8"},
		{"ff05::fb", "ff00::/8"},
		{"255.255.255.255", "255.255.255.255/32"},
		{"::ffff:255.255.255.255", "255.255.255.255/32"},
		{"240.0.0.1", "240.0.0.0/4"},
		{"254.1.2.3", "240.0.0.0/4"},
		// IPv6 unique-local and deprecated site-local.
		{"fc00::1", "fc00::/7"},
		{"fd12:3456:789a::1", "fc00::/7"},
		{"fec0::1", "fec0::/10"},
		// IETF special-purpose IPv4.
		{"192.0.0.9", "192.0.0.0/24"},
		{"192.0.0.170", "192.0.0.0/24"},
		{"192.0.2.1", "192.0.2.0/24"},
		{"192.88.99.1", "192.88.99.0/24"},
		{"198.18.0.1", "198.18.0.0/15"},
		{"198.19.255.255", "198.18.0.0/15"},
		{"198.51.100.7", "198.51.100.0/24"},
		{"203.0.113.9", "203.0.113.0/24"},
		{"64:ff9b::cb00:7109", "203.0.113.0/24"},
		// IETF special-purpose IPv6.
		{"2001:db8::1", "2001:db8::/32"},
		{"100::1", "100::/64"},
		{"2001:1::1", "2001::/23"},
		{"2001:4:112::1", "2001::/23"},
		{"2001:1ff:ffff::1", "2001::/23"},
		{"2001:2::1", "2001:2::/48"},
		{"3fff::1", "3fff::/20"},
		{"5f00::1", "5f00::/16"},
		// Teredo and 6to4: refused outright, whatever IPv4 they embed.
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"},
		{"2002:7f00:1::1", "2002::/16"},
		{"2002:808:808::1", "2002::/16"},
		// NAT64 local-use prefix: the IPv4 position is operator-defined.
		{"64:ff9b:1::7f00:1", "64:ff9b:1::/48"},
		{"64:ff9b:1:ffff::808:808", "64:ff9b:1::/48"},
		// Deprecated IPv4-compatible, and the rest of IPv6 outside 2000::/3.
		{"::7f00:1", "::/96"},
		{"::808:808", "::/96"},
		{"::ffff:0:7f00:1", "::/3"},
		{"1::1", "::/3"},
		{"4000::1", "4000::/2"},
		{"e000::1", "8000::/1"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			err := delivery.CheckDestination(ip, nil)
			var be *delivery.BlockedError
			require.ErrorAs(t, err, &be, "%s must be refused as part of %s", tt.ip, tt.rng)
			assert.ErrorIs(t, err, delivery.ErrBlockedDestination)
			assert.Equal(t, tt.rng, be.Range)
			assert.Equal(t, ip.WithZone(""), be.IP, "the error names the address as dialed, without a zone")
			assert.Contains(t, err.Error(), ip.WithZone("").String())
			assert.Contains(t, err.Error(), tt.rng)
		})
	}
}

// TestCheckDestinationRefusesEveryTableRange checks the first and last
// address of every range in the table, and for IPv4 ranges their
// IPv4-mapped and NAT64 forms, which must get the IPv4 address's decision.
func TestCheckDestinationRefusesEveryTableRange(t *testing.T) {
	for _, r := range delivery.BlockedRanges() {
		t.Run(r.Prefix.String(), func(t *testing.T) {
			require.NotEmpty(t, r.Name)
			require.NotEmpty(t, r.Reason)
			require.Equal(t, r.Prefix.Masked(), r.Prefix, "table prefixes are written masked")
			for _, ip := range []netip.Addr{r.Prefix.Addr(), lastAddr(r.Prefix)} {
				err := delivery.CheckDestination(ip, nil)
				var be *delivery.BlockedError
				require.ErrorAs(t, err, &be, "%s is in %s", ip, r.Prefix)
				got := netip.MustParsePrefix(be.Range)
				assert.True(t, got.Contains(ip.Unmap()) && got.Bits() >= r.Prefix.Bits(),
					"%s reported in %s, want the most specific range holding it (at least %s)", ip, got, r.Prefix)
				if !ip.Is4() {
					continue
				}
				for _, form := range []netip.Addr{mapped(ip), nat64(ip)} {
					err := delivery.CheckDestination(form, nil)
					var fe *delivery.BlockedError
					require.ErrorAs(t, err, &fe, "%s embeds %s, which is refused", form, ip)
					assert.Equal(t, be.Range, fe.Range)
					assert.Equal(t, form, fe.IP)
					assert.Contains(t, err.Error(), "embedded IPv4 address "+ip.String())
				}
			}
		})
	}
}

func TestCheckDestinationAllowsPublicAddresses(t *testing.T) {
	for _, s := range []string{
		"8.8.8.8", "1.1.1.1", "93.184.215.14",
		"2606:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001:80b::200e",
		// Public IPv4 in IPv6 forms: NAT64 is how IPv6-only hosts reach
		// IPv4 receivers.
		"::ffff:8.8.8.8", "64:ff9b::808:808", "64:ff9b::1.1.1.1",
		// Just outside refused ranges.
		"1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0",
		"172.15.255.255", "172.32.0.0", "192.0.1.0", "192.0.3.0", "192.88.98.255",
		"192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
		"198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255",
		"2000::1", "2001:200::1", "2001:db7:ffff::1", "2001:db9::1", "2003::1", "3ffe::1", "3fef:ffff::1",
	} {
		t.Run(s, func(t *testing.T) {
			assert.NoError(t, delivery.CheckDestination(netip.MustParseAddr(s), nil))
		})
	}
}

func TestCheckDestinationAllowedNetworks(t *testing.T) {
	allowed := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.20.0.0/16"),
		netip.MustParsePrefix("fd00:1::/32"),
		netip.MustParsePrefix("192.168.7.99/24"), // host bits are ignored
	}
	tests := []struct {
		ip      string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"64:ff9b::7f00:1", true},
		{"127.0.0.2", false},
		{"::1", false},
		{"10.20.255.1", true},
		{"10.21.0.1", false},
		{"fd00:1::5", true},
		{"fd00:2::5", false},
		{"192.168.7.1", true},
		{"192.168.8.1", false},
		{"169.254.169.254", false},
		{"8.8.8.8", true},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			err := delivery.CheckDestination(netip.MustParseAddr(tt.ip), allowed)
			if tt.allowed {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, delivery.ErrBlockedDestination)
			}
		})
	}
}

func TestCheckDestinationRefusesInvalidAddress(t *testing.T) {
	err := delivery.CheckDestination(netip.Addr{}, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")})
	assert.ErrorIs(t, err, delivery.ErrBlockedDestination)
}

func TestBlockedErrorMessage(t *testing.T) {
	err := delivery.CheckDestination(netip.MustParseAddr("169.254.169.254"), nil)
	assert.EqualError(t, err, "blocked destination 169.254.169.254: in 169.254.0.0/16, link-local (RFC 3927), holds cloud metadata 169.254.169.254")
	err = delivery.CheckDestination(netip.MustParseAddr("64:ff9b::7f00:1"), nil)
	assert.EqualError(t, err, "blocked destination 64:ff9b::7f00:1: embedded IPv4 address 127.0.0.1 is in 127.0.0.0/8, loopback (RFC 1122)")
	wrapped := &net.OpError{Op: "dial", Net: "tcp4", Err: err}
	var be *delivery.BlockedError
	require.ErrorAs(t, wrapped, &be)
	assert.Equal(t, netip.MustParseAddr("64:ff9b::7f00:1"), be.IP)
	assert.True(t, errors.Is(wrapped, delivery.ErrBlockedDestination))
}

func TestBlockedRangesIsACopy(t *testing.T) {
	r := delivery.BlockedRanges()
	r[0].Prefix = netip.MustParsePrefix("8.8.8.0/24")
	assert.NoError(t, delivery.CheckDestination(netip.MustParseAddr("8.8.8.8"), nil))
	assert.NotEqual(t, r[0].Prefix, delivery.BlockedRanges()[0].Prefix)
}

func TestConfigAllowedNetworksValidation(t *testing.T) {
	signer := newSigner(t, newSecret(t))
	tests := []struct {
		name string
		cfg  delivery.Config
		msg  string
	}{
		{"invalid prefix", delivery.Config{Signer: signer, AllowedNetworks: []netip.Prefix{{}}}, "[0] is not a valid prefix"},
		{"IPv4-mapped prefix", delivery.Config{Signer: signer, AllowedNetworks: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::ffff:10.0.0.0/104"),
		}}, "[1] ::ffff:10.0.0.0/104 is an IPv4-mapped prefix"},
		{"with HTTPClient", delivery.Config{Signer: signer, HTTPClient: &http.Client{},
			AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "has no effect when HTTPClient is set"},
		{"with AllowPrivateNetworks", delivery.Config{Signer: signer, AllowPrivateNetworks: true,
			AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "has no effect when AllowPrivateNetworks is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := delivery.New(tt.cfg)
			require.ErrorIs(t, err, delivery.ErrInvalidConfig)
			assert.Contains(t, err.Error(), "Config.AllowedNetworks")
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
	_, err := delivery.New(delivery.Config{Signer: signer, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	assert.NoError(t, err)
	_, err = delivery.New(delivery.Config{Signer: signer, HTTPClient: &http.Client{}, AllowPrivateNetworks: true})
	assert.NoError(t, err, "AllowPrivateNetworks with an own client is harmless: that client has no guard")
}

// receiver is a loopback HTTP server that counts the connections it accepts
// and the requests it serves.
type receiver struct {
	URL   string
	Port  string
	conns atomic.Int32
	reqs  atomic.Int32
}

func newReceiver(t *testing.T, network, addr string) *receiver {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	r := &receiver{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { r.reqs.Add(1) }))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	_, r.Port, err = net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	return r
}

func guardOn(c *delivery.Config) { c.AllowPrivateNetworks = false }

func TestGuardRefusesLoopbackReceiver(t *testing.T) {
	h := newHarness(t, nil, guardOn)
	rcv := newReceiver(t, "tcp4", "127.0.0.1:0")
	rec := h.deliver(rcv.URL + "/hooks")

	got := h.waitTerminal(rec.ID)
	assert.Equal(t, store.StatusFailed, got.Status, "a blocked destination fails for good")
	assert.Equal(t, store.ReasonBlockedDestination, got.FailureReason)
	assert.Equal(t, 1, got.AttemptCount, "a blocked destination is not retried")
	require.Len(t, got.Attempts, 1)
	assert.Equal(t, "blocked destination 127.0.0.1: in 127.0.0.0/8, loopback (RFC 1122)", got.FailureDetail)
	assert.Equal(t, store.ReasonBlockedDestination, got.Attempts[0].FailureReason)
	assert.Equal(t, got.FailureDetail, got.Attempts[0].ErrorMessage)
	assert.Zero(t, got.Attempts[0].StatusCode)
	assert.True(t, got.NextAttemptAt.IsZero())
	assert.True(t, got.CompletedAt.Equal(t0))
	assert.Zero(t, rcv.conns.Load(), "the receiver saw a connection")
	assert.Zero(t, rcv.reqs.Load(), "the receiver got a request")
}

// TestGuardURLForms delivers to a loopback receiver through URLs that spell
// its address in other ways. Each must fail for good after one attempt with
// the receiver seeing nothing.
func TestGuardURLForms(t *testing.T) {
	rcv := newReceiver(t, "tcp4", "127.0.0.1:0")
	tests := []struct {
		name   string
		url    string
		reason store.FailureReason
		detail string // exact FailureDetail
	}{
		{"IPv4 literal", "http://127.0.0.1:" + rcv.Port + "/", store.ReasonBlockedDestination,
			"blocked destination 127.0.0.1: in 127.0.0.0/8, loopback (RFC 1122)"},
		{"IPv4 literal elsewhere in 127/8", "http://127.0.0.2:" + rcv.Port + "/", store.ReasonBlockedDestination,
			"blocked destination 127.0.0.2: in 127.0.0.0/8, loopback (RFC 1122)"},
		// localhost resolves (through /etc/hosts) after the URL is checked;
		// the guard sees the resolved address.
		{"localhost", "http://localhost:" + rcv.Port + "/", store.ReasonBlockedDestination,
			"blocked destination 127.0.0.1: in 127.0.0.0/8, loopback (RFC 1122)"},
		// Go dials an IPv4-mapped literal as the IPv4 address.
		{"IPv4-mapped literal", "http://[::ffff:127.0.0.1]:" + rcv.Port + "/", store.ReasonBlockedDestination,
			"blocked destination 127.0.0.1: in 127.0.0.0/8, loopback (RFC 1122)"},
		// Numbers in non-standard IPv4 forms: Go's resolver calls them
		// unknown hosts (a retried dns_error), the C library's resolver
		// reads them as 127.0.0.1. The guard's dialer refuses them before
		// either, as an invalid URL, so the outcome does not depend on the
		// resolver.
		{"decimal", "http://2130706433:" + rcv.Port + "/", store.ReasonInvalidURL,
			`invalid callback URL "2130706433:` + rcv.Port + `": host "2130706433" is a number in a non-standard IPv4 form (decimal, octal, hexadecimal or fewer than four parts), which resolvers read differently; write the address as four decimal numbers`},
		{"octal", "http://0177.0.0.1:" + rcv.Port + "/", store.ReasonInvalidURL,
			`invalid callback URL "0177.0.0.1:` + rcv.Port + `": host "0177.0.0.1" is a number in a non-standard IPv4 form (decimal, octal, hexadecimal or fewer than four parts), which resolvers read differently; write the address as four decimal numbers`},
		{"hexadecimal", "http://0x7f000001:" + rcv.Port + "/", store.ReasonInvalidURL,
			`invalid callback URL "0x7f000001:` + rcv.Port + `": host "0x7f000001" is a number in a non-standard IPv4 form (decimal, octal, hexadecimal or fewer than four parts), which resolvers read differently; write the address as four decimal numbers`},
		{"two parts", "http://127.1:" + rcv.Port + "/", store.ReasonInvalidURL,
			`invalid callback URL "127.1:` + rcv.Port + `": host "127.1" is a number in a non-standard IPv4 form (decimal, octal, hexadecimal or fewer than four parts), which resolvers read differently; write the address as four decimal numbers`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, guardOn)
			var rec *store.Delivery
			if tt.reason == store.ReasonInvalidURL {
				// Deliver refuses such a URL outright...
				_, err := h.d.Deliver(context.Background(), tt.url, callback(uuid.New()))
				require.ErrorIs(t, err, delivery.ErrInvalidURL)
				// ...and the dialer refuses it too, should one reach the
				// Store another way (an older record, another writer).
				rec = storetest.NewDelivery(uuid.New(), h.clock.Now())
				rec.CallbackURL = tt.url
				require.NoError(t, h.st.Insert(context.Background(), rec))
				h.clock.Advance(delivery.DefaultPollInterval) // nothing woke the Deliverer: its poll finds it
			} else {
				rec = h.deliver(tt.url)
			}
			got := h.waitTerminal(rec.ID)
			assert.Equal(t, store.StatusFailed, got.Status)
			assert.Equal(t, tt.reason, got.FailureReason)
			assert.Equal(t, 1, got.AttemptCount, "must fail for good on the first attempt")
			assert.Equal(t, tt.detail, got.FailureDetail)
		})
	}
	assert.Zero(t, rcv.conns.Load(), "the receiver saw a connection")
	assert.Zero(t, rcv.reqs.Load(), "the receiver got a request")
}

func TestGuardRefusesIPv6Loopback(t *testing.T) {
	rcv := newReceiver(t, "tcp6", "[::1]:0")
	h := newHarness(t, nil, guardOn)
	rec := h.deliver(rcv.URL + "/hooks")
	got := h.waitTerminal(rec.ID)
	assert.Equal(t, store.StatusFailed, got.Status)
	assert.Equal(t, store.ReasonBlockedDestination, got.FailureReason)
	assert.Equal(t, 1, got.AttemptCount)
	assert.Equal(t, "blocked destination ::1: in ::1/128, loopback (RFC 4291)", got.FailureDetail)
	assert.Zero(t, rcv.conns.Load())
}

func TestGuardAllowedNetworksLetsDeliveryThrough(t *testing.T) {
	tests := []struct {
		name, host string
		allowed    string
	}{
		{"exact address", "127.0.0.1", "127.0.0.1/32"},
		{"host name resolving into the network", "localhost", "127.0.0.0/8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, "tcp4", "127.0.0.1:0")
			h := newHarness(t, nil, func(c *delivery.Config) {
				c.AllowPrivateNetworks = false
				c.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix(tt.allowed)}
			})
			rec := h.deliver("http://" + net.JoinHostPort(tt.host, rcv.Port) + "/hooks")
			got := h.waitTerminal(rec.ID)
			assert.Equal(t, store.StatusSucceeded, got.Status, "failure: %s %s", got.FailureReason, got.FailureDetail)
			assert.Equal(t, int32(1), rcv.reqs.Load())
		})
	}
}

func TestGuardOffReachesLoopback(t *testing.T) {
	rcv := newReceiver(t, "tcp4", "127.0.0.1:0")
	h := newHarness(t, nil, nil) // the harness sets AllowPrivateNetworks
	rec := h.deliver(rcv.URL)
	assert.Equal(t, store.StatusSucceeded, h.waitTerminal(rec.ID).Status)
	assert.Equal(t, int32(1), rcv.reqs.Load())
}

// TestSecurityMDListsEveryRange keeps SECURITY.md's table and the code's in
// step: every range the guard refuses or unwraps is listed, and every range
// listed is one the guard knows.
func TestSecurityMDListsEveryRange(t *testing.T) {
	f, err := os.Open("../SECURITY.md")
	require.NoError(t, err)
	defer f.Close()
	cell := regexp.MustCompile("^\\| `([^`]+)` \\|")
	listed := map[string]bool{}
	inSection := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			inSection = line == "## Destination guard"
		}
		if m := cell.FindStringSubmatch(line); inSection && m != nil {
			listed[m[1]] = true
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, listed, "SECURITY.md has no \"## Destination guard\" table rows (| `cidr` | ... |)")

	want := map[string]bool{"::ffff:0:0/96": true, "64:ff9b::/96": true} // judged by the embedded IPv4
	for _, r := range delivery.BlockedRanges() {
		want[r.Prefix.String()] = true
	}
	for cidr := range want {
		assert.True(t, listed[cidr], "SECURITY.md's destination guard table does not list %s", cidr)
	}
	for cidr := range listed {
		assert.True(t, want[cidr], "SECURITY.md lists %s, which the guard does not know", cidr)
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func mapped(v4 netip.Addr) netip.Addr { return netip.AddrFrom16(v4.As16()) }

func nat64(v4 netip.Addr) netip.Addr {
	b := netip.MustParseAddr("64:ff9b::").As16()
	a4 := v4.As4()
	copy(b[12:], a4[:])
	return netip.AddrFrom16(b)
}

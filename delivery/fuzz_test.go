package delivery_test

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/hookline/hookline/delivery"
)

// FuzzGuard checks the destination guard's decision on arbitrary addresses:
// it never panics, a refusal names the address and a range of the table that
// holds it, and the IPv4-mapped and NAT64 forms of an IPv4 address get the
// decision of the IPv4 address itself, with and without an allow-list. Its
// seed corpus runs in every go test; run it longer with
//
//	go test -run='^$' -fuzz=FuzzGuard -fuzztime=2m ./delivery/
func FuzzGuard(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "::1", "::",
		"169.254.169.254", "::ffff:169.254.169.254", "10.20.30.40", "100.64.0.1",
		"8.8.8.8", "64:ff9b::808:808", "2606:4700::1111", "fe80::1", "fd00::1",
		"2001::1", "2002:7f00:1::1", "64:ff9b:1::7f00:1", "255.255.255.255", "::7f00:1",
	} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	ranges := map[string]netip.Prefix{}
	for _, r := range delivery.BlockedRanges() {
		ranges[r.Prefix.String()] = r.Prefix
	}
	allowLists := [][]netip.Prefix{
		nil,
		{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("fd00::/8")},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a16 [16]byte
		copy(a16[:], b)
		ip6 := netip.AddrFrom16(a16)
		ip4 := netip.AddrFrom4([4]byte(a16[12:]))
		for _, allowed := range allowLists {
			for _, ip := range []netip.Addr{ip6, ip4} {
				checkDecision(t, ip, delivery.CheckDestination(ip, allowed), ranges)
			}
			want := delivery.CheckDestination(ip4, allowed)
			for _, form := range []netip.Addr{mapped(ip4), nat64(ip4)} {
				got := delivery.CheckDestination(form, allowed)
				if (got == nil) != (want == nil) || got != nil && blockedRange(got) != blockedRange(want) {
					t.Fatalf("allow-list %v: %s gives %v, but the IPv4 address %s it embeds gives %v", allowed, form, got, ip4, want)
				}
			}
		}
	})
}

// checkDecision checks that a refusal of ip is a *BlockedError naming ip and
// a range of the table that holds ip (or the IPv4 address embedded in it).
func checkDecision(t *testing.T, ip netip.Addr, err error, ranges map[string]netip.Prefix) {
	t.Helper()
	if err == nil {
		return
	}
	var be *delivery.BlockedError
	if !errors.As(err, &be) || !errors.Is(err, delivery.ErrBlockedDestination) {
		t.Fatalf("%s: refusal %v is not a *BlockedError matching ErrBlockedDestination", ip, err)
	}
	if be.IP != ip {
		t.Fatalf("%s: refusal names %s", ip, be.IP)
	}
	p, ok := ranges[be.Range]
	if !ok {
		t.Fatalf("%s: refused as %q, which is not in BlockedRanges", ip, be.Range)
	}
	judged := ip.Unmap()
	if judged.Is6() && netip.MustParsePrefix("64:ff9b::/96").Contains(judged) {
		judged = netip.AddrFrom4([4]byte(judged.AsSlice()[12:]))
	}
	if !p.Contains(judged) {
		t.Fatalf("%s: refused as %s, which does not hold %s", ip, p, judged)
	}
	if !strings.Contains(err.Error(), ip.String()) {
		t.Fatalf("%s: message %q does not name the address", ip, err)
	}
}

func blockedRange(err error) string {
	var be *delivery.BlockedError
	if errors.As(err, &be) {
		return be.Range
	}
	return ""
}

// FuzzValidateURL checks ValidateURL on arbitrary input: it never panics, a
// refusal is a *URLError matching ErrInvalidURL, and an accepted URL is at
// most MaxURLLength bytes, parses as absolute http or https with a host, has
// no userinfo unless allowed, and can be turned into a request.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hooks", "http://127.0.0.1:8080/x?y=1#z", "http://[::1]:80/", "http://[fe80::1%25eth0]/",
		"http://2130706433/", "http://0177.0.0.1/", "HTTP://EXAMPLE.COM", "https://user:pw@example.com/",
		"", "ftp://example.com/", "example.com/hook", "//example.com/", "http:///nohost", "http://:80/",
		"http://example.com:99999/", "http://example.com:0/", "http://exa mple.com/", "http://%zz/", "javascript:alert(1)",
		"http:opaque", "http://[::1/", "http://example.com/" + strings.Repeat("a", delivery.MaxURLLength),
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowUserinfo bool) {
		err := delivery.ValidateURL(raw, allowUserinfo)
		if err != nil {
			var ue *delivery.URLError
			if !errors.As(err, &ue) || !errors.Is(err, delivery.ErrInvalidURL) {
				t.Fatalf("ValidateURL(%q) = %v, not a *URLError matching ErrInvalidURL", raw, err)
			}
			return
		}
		if len(raw) > delivery.MaxURLLength {
			t.Fatalf("accepted a %d-byte URL", len(raw))
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, perr)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		}
		if u.Hostname() == "" {
			t.Fatalf("accepted %q without a host", raw)
		}
		if u.User != nil && !allowUserinfo {
			t.Fatalf("accepted %q with userinfo", raw)
		}
		if _, rerr := http.NewRequest(http.MethodPost, raw, nil); rerr != nil {
			t.Fatalf("accepted %q, but no request can be built from it: %v", raw, rerr)
		}
	})
}

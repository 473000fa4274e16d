package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
)

// ErrBlockedDestination is matched by every *BlockedError: the destination
// guard refused to connect to the address a callback URL resolved to. The
// attempt is recorded as a permanent failure with reason
// store.ReasonBlockedDestination, and no request is sent.
var ErrBlockedDestination = errors.New("blocked destination")

// BlockedError reports an address the destination guard refused. It matches
// ErrBlockedDestination.
type BlockedError struct {
	// IP is the refused address as it was dialed, without an IPv6 zone.
	// For an IPv4-mapped or NAT64 address it is the IPv6 form; Range then
	// names the range of the IPv4 address embedded in it.
	IP netip.Addr
	// Range is the refused range IP lies in, in CIDR notation (for example
	// "127.0.0.0/8"), as listed by BlockedRanges. Empty when IP is not a
	// valid address.
	Range string
}

// Error returns "blocked destination <ip>: in <range>, <what it is>",
// naming the embedded IPv4 address when IP is an IPv4-mapped or NAT64
// address.
func (e *BlockedError) Error() string {
	if !e.IP.IsValid() {
		return "blocked destination: not a valid IP address"
	}
	msg := "blocked destination " + e.IP.String() + ": "
	if v4, ok := embeddedIPv4(e.IP); ok {
		msg += "embedded IPv4 address " + v4.String() + " is in "
	} else {
		msg += "in "
	}
	msg += e.Range
	for _, r := range blockedRanges {
		if r.Prefix.String() == e.Range {
			msg += ", " + r.Name
			break
		}
	}
	return msg
}

// Unwrap returns ErrBlockedDestination.
func (e *BlockedError) Unwrap() error { return ErrBlockedDestination }

// BlockedRange is one range of addresses the destination guard refuses.
type BlockedRange struct {
	// Prefix is the range.
	Prefix netip.Prefix
	// Name says what the range is, with the RFC that defines it.
	Name string
	// Reason says why a callback must not be sent there.
	Reason string
}

// BlockedRanges returns the ranges the destination guard refuses, IPv4 first.
// Ranges may overlap; a refused address is reported with the longest
// (most specific) prefix it lies in. An IPv4-mapped address (::ffff:0:0/96)
// or a NAT64 address in the well-known prefix 64:ff9b::/96 is judged by the
// IPv4 address embedded in it, so every IPv4 range below is refused in those
// forms too. The returned slice is a copy.
func BlockedRanges() []BlockedRange {
	return append([]BlockedRange(nil), blockedRanges...)
}

// nat64Prefix is the NAT64 well-known prefix (RFC 6052), whose addresses
// embed an IPv4 address in their last 32 bits, which the guard checks
// instead. (IPv4-mapped addresses, ::ffff:0:0/96, are unmapped.)
var nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")

// Reasons shared by several ranges.
const (
	whyInternal  = "reaches the host's own internal network, not the internet"
	whyDocs      = "reserved for documentation and examples; never a real receiver"
	whyNotRouted = "not routed on the internet; nothing legitimate answers a webhook there"
	whyProtocol  = "addresses of network protocol machinery, not web servers"
	whyNoUnicast = "outside 2000::/3, the only IPv6 space IANA allocates for global unicast; nothing on the internet answers there"
)

// blockedRanges is the one table of refused ranges; SECURITY.md lists it
// (TestSecurityMDListsEveryRange keeps the two in step).
var blockedRanges = []BlockedRange{
	// IPv4 (IANA IPv4 Special-Purpose Address Registry, plus multicast).
	{p("0.0.0.0/8"), `"this network" (RFC 791, RFC 6890)`, "not a destination; connecting to 0.0.0.0 reaches the local host on common systems"},
	{p("10.0.0.0/8"), "private network (RFC 1918)", whyInternal},
	{p("100.64.0.0/10"), "shared address space, carrier-grade NAT (RFC 6598)", "a provider's or a cloud's internal network (carrier-grade NAT, VPN overlays), not the internet"},
	{p("127.0.0.0/8"), "loopback (RFC 1122)", "the sending host itself: its admin ports, databases and sidecars"},
	{p("169.254.0.0/16"), "link-local (RFC 3927), holds cloud metadata 169.254.169.254", "cloud instance metadata services answer here, with credentials; otherwise the local network segment"},
	{p("172.16.0.0/12"), "private network (RFC 1918)", whyInternal},
	{p("192.0.0.0/24"), "IETF protocol assignments (RFC 6890): DS-Lite, PCP and TURN anycast, NAT64 discovery", whyProtocol},
	{p("192.0.2.0/24"), "documentation, TEST-NET-1 (RFC 5737)", whyDocs},
	{p("192.88.99.0/24"), "6to4 relay anycast, deprecated (RFC 7526)", "relays 6to4 traffic, which is refused too; protocol machinery, not a web server"},
	{p("192.168.0.0/16"), "private network (RFC 1918)", whyInternal},
	{p("198.18.0.0/15"), "benchmarking (RFC 2544)", "reserved for lab networks; not routed on the internet"},
	{p("198.51.100.0/24"), "documentation, TEST-NET-2 (RFC 5737)", whyDocs},
	{p("203.0.113.0/24"), "documentation, TEST-NET-3 (RFC 5737)", whyDocs},
	{p("224.0.0.0/4"), "multicast (RFC 5771)", "a group, not one receiver; TCP cannot connect to it"},
	{p("240.0.0.0/4"), "reserved for future use (RFC 1112)", whyNotRouted},
	{p("255.255.255.255/32"), "limited broadcast (RFC 919)", "the local network segment, not one receiver"},

	// IPv6 (IANA IPv6 Special-Purpose Address Registry and Address Space).
	{p("::/128"), "unspecified address (RFC 4291)", "not a destination; connecting to :: reaches the local host on common systems"},
	{p("::1/128"), "loopback (RFC 4291)", "the sending host itself: its admin ports, databases and sidecars"},
	{p("::/96"), "IPv4-compatible addresses, deprecated (RFC 4291)", "may be tunnelled to the embedded IPv4 address, private ones included, on hosts with automatic tunnelling"},
	{p("64:ff9b:1::/48"), "local-use IPv4/IPv6 translation (RFC 8215)", "an operator's internal NAT64; where the IPv4 address sits in it is not fixed, so it cannot be checked"},
	{p("100::/64"), "discard-only (RFC 6666)", "traffic to it is dropped by design; not routed on the internet"},
	{p("2001::/23"), "IETF protocol assignments (RFC 2928): PCP and TURN anycast, AMT, AS112, ORCHID, benchmarking", whyProtocol},
	{p("2001::/32"), "Teredo tunnelling (RFC 4380)", "tunnels to an IPv4 host through a relay that may be local; obsolete, refused outright rather than decoding its obfuscated IPv4 address"},
	{p("2001:2::/48"), "benchmarking (RFC 5180)", "reserved for lab networks; not routed on the internet"},
	{p("2001:db8::/32"), "documentation (RFC 3849)", whyDocs},
	{p("2002::/16"), "6to4 (RFC 3056), deprecated (RFC 7526)", "embeds an IPv4 address reached through a relay that may be local equipment; refused outright rather than trusting the embedded address"},
	{p("3fff::/20"), "documentation (RFC 9637)", whyDocs},
	{p("5f00::/16"), "SRv6 segment identifiers (RFC 9602)", "routing instructions inside an operator's network; not routed on the internet"},
	{p("fc00::/7"), "unique local addresses (RFC 4193)", "the IPv6 private networks: " + whyInternal},
	{p("fe80::/10"), "link-local (RFC 4291)", "the local network segment: " + whyInternal},
	{p("fec0::/10"), "site-local, deprecated (RFC 3879)", "a former private range some networks still use: " + whyInternal},
	{p("ff00::/8"), "multicast (RFC 4291)", "a group, not one receiver; TCP cannot connect to it"},
	{p("::/3"), "IPv6 reserved by the IETF, below 2000::/3", whyNoUnicast},
	{p("4000::/2"), "IPv6 reserved by the IETF, 4000::-7fff::", whyNoUnicast},
	{p("8000::/1"), "IPv6 reserved by the IETF, 8000::-ffff:: (holds fc00::/7, fe80::/10, ff00::/8)", whyNoUnicast},
}

func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// CheckDestination is the destination guard's decision for one address: nil
// when a callback may connect to ip, or a *BlockedError when ip lies in one
// of BlockedRanges and in none of allowed. An IPv6 zone is ignored. An
// IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) address gets the
// decision of the IPv4 address a.b.c.d; allowed is matched against both the
// address and that IPv4 address. An invalid ip is refused.
//
// The Deliverer's default HTTP client calls it on every address it is about
// to connect to, after DNS resolution; a host can call it too, for example
// to warn a customer who registers a callback URL that resolves to a refused
// address. It is safe for concurrent use.
func CheckDestination(ip netip.Addr, allowed []netip.Prefix) error {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return &BlockedError{IP: ip}
	}
	judged := ip.Unmap()
	if v4, ok := embeddedIPv4(judged); ok {
		judged = v4
	}
	for _, a := range allowed {
		if a.Contains(ip) || a.Contains(judged) {
			return nil
		}
	}
	if r, ok := refusedRange(judged); ok {
		return &BlockedError{IP: ip, Range: r.String()}
	}
	return nil
}

// embeddedIPv4 returns the IPv4 address in an IPv4-mapped or NAT64
// (64:ff9b::/96) address.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	if ip.Is4In6() {
		return ip.Unmap(), true
	}
	ip = ip.WithZone("")
	if nat64Prefix.Contains(ip) {
		b := ip.As16()
		return netip.AddrFrom4([4]byte(b[12:])), true
	}
	return netip.Addr{}, false
}

// refusedRange returns the longest prefix of blockedRanges that holds ip.
func refusedRange(ip netip.Addr) (netip.Prefix, bool) {
	var best netip.Prefix
	for _, r := range blockedRanges {
		if r.Prefix.Contains(ip) && (!best.IsValid() || r.Prefix.Bits() > best.Bits()) {
			best = r.Prefix
		}
	}
	return best, best.IsValid()
}

// guard is the destination guard of the default HTTP client.
type guard struct {
	allowed []netip.Prefix
}

// control is a net.Dialer ControlContext function: it runs after DNS
// resolution, on each address about to be connected to, before the
// connection is made, and counts what it lets through and what it refuses
// in the dial's tally (see dialContext).
func (g *guard) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	t, _ := ctx.Value(tallyKey{}).(*dialTally)
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: only TCP to an IP address is expected here.
		return fmt.Errorf("destination guard: cannot parse %s address %q: %w", network, address, ErrBlockedDestination)
	}
	if err := CheckDestination(ap.Addr(), g.allowed); err != nil {
		if t != nil {
			t.add(&t.refused, ap.Addr().String())
		}
		return err
	}
	if t != nil {
		t.add(&t.allowed, ap.Addr().String())
	}
	return nil
}

// dialTally is what the guard decided during one dial: the addresses it let
// through and those it refused. The dialer may try several addresses of a
// host, in parallel for the two families.
type dialTally struct {
	mu               sync.Mutex
	allowed, refused []string
}

func (t *dialTally) add(to *[]string, addr string) {
	t.mu.Lock()
	*to = append(*to, addr)
	t.mu.Unlock()
}

type tallyKey struct{}

// dialContext refuses, before any resolution, a host written as a number in
// a non-standard IPv4 form, then dials through dialer (whose ControlContext
// is g.control). The dialer answers with the error of the first address it
// tried: when that was a refusal but an address the guard allowed was tried
// too, and failed, the host is not blocked but unreachable, and the error
// says so (a connection error, retried) instead of refusing the delivery
// for good depending on the order of the host's addresses.
func (g *guard) dialContext(dialer *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(address); err == nil && nonStandardIPv4(host) {
			return nil, &URLError{URL: address, Reason: "host " + quote(host) + " is a number in a non-standard IPv4 form " +
				"(decimal, octal, hexadecimal or fewer than four parts), which resolvers read differently; write the address as four decimal numbers"}
		}
		t := &dialTally{}
		conn, err := dialer.DialContext(context.WithValue(ctx, tallyKey{}, t), network, address)
		if err == nil || !errors.Is(err, ErrBlockedDestination) {
			return conn, err
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if len(t.allowed) == 0 {
			return nil, err
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf(
			"no address the destination guard allows (%s) accepted a connection; refused: %s",
			strings.Join(t.allowed, ", "), strings.Join(t.refused, ", "))}
	}
}

// nonStandardIPv4 reports whether host is not a canonical IP address but
// ends in a number, the rule by which the WHATWG URL standard reads a host
// as an IPv4 address: "2130706433", "0177.0.0.1", "127.1", "0x7f000001".
// Go's resolver refuses such names, the C library's getaddrinfo reads them
// as IPv4 addresses (all of those are 127.0.0.1), and a DNS server may
// answer them; no real host name ends in a number.
func nonStandardIPv4(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	h := strings.TrimSuffix(host, ".")
	last := h[strings.LastIndexByte(h, '.')+1:]
	if last == "" {
		return false
	}
	if hex, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// validateAllowedNetworks returns allowed with host bits cleared, or an error
// naming the first entry the guard could never match.
func validateAllowedNetworks(allowed []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(allowed))
	for i, a := range allowed {
		switch {
		case !a.IsValid():
			return nil, fmt.Errorf("[%d] is not a valid prefix; build it with netip.ParsePrefix", i)
		case a.Addr().Is4In6():
			return nil, fmt.Errorf("[%d] %s is an IPv4-mapped prefix, which the guard never sees (it checks mapped addresses as IPv4); write it as IPv4", i, a)
		}
		out = append(out, a.Masked())
	}
	return out, nil
}

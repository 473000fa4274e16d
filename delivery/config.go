package delivery

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"time"

	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// Defaults for the zero values of Config.
const (
	DefaultWorkers           = 32
	DefaultMaxAttempts       = 8
	DefaultAttemptTimeout    = 15 * time.Second
	DefaultLease             = time.Minute
	DefaultPollInterval      = time.Second
	DefaultMaxRetryAfter     = time.Hour
	DefaultResponseBodyLimit = 20_000
	DefaultMaxPayloadBytes   = 256 << 10
)

// MaxLease is the longest Config.Lease, given or by default: a delivery
// claimed by a process that died waits that long before another takes it,
// and its lease must end within the years every Store keeps (see
// store.MaxYear). AttemptTimeout must be shorter still.
const MaxLease = 365 * 24 * time.Hour

// DefaultResponseReadLimit was the default of Config.ResponseReadLimit
// (64 KiB); set ResponseReadLimit to it to keep reading that far.
//
// Deprecated: ResponseReadLimit now defaults to ResponseBodyLimit, so that
// reading stops where storing does.
const DefaultResponseReadLimit = 64 << 10

// maxConnectTimeout bounds connecting and the TLS handshake of the default
// HTTP client (further bounded by AttemptTimeout).
const maxConnectTimeout = 10 * time.Second

// MaxWorkers is the most Workers a Deliverer accepts.
const MaxWorkers = 1 << 16

// Config configures a Deliverer. The zero value of every field but Signer
// means its documented default.
type Config struct {
	// Signer signs every attempt. Required: build it with signing.NewSigner.
	// Swap it at run time (secret rotation) with Deliverer.SetSigner.
	Signer *signing.Signer

	// Store keeps deliveries and attempts. Default: store.NewMemory(), which
	// lives and dies with the process; use store/postgres to survive restarts
	// and share work between replicas.
	Store store.Store

	// Clock reads the time and makes timers. Default: SystemClock().
	Clock Clock

	// HTTPClient sends the attempts. Default: a client with the
	// destination guard (see AllowPrivateNetworks), which follows no
	// redirect, reuses connections, ignores the HTTP_PROXY and HTTPS_PROXY
	// environment variables (through a proxy the guard would check the
	// proxy's address, not the receiver's), and bounds connecting and the
	// TLS handshake by min(10 s, AttemptTimeout). Every attempt, through
	// any client, is bounded as a whole by AttemptTimeout.
	//
	// A client you bring is used as is, and the destination guard is NOT
	// applied to it: any customer's callback URL can then make your servers
	// POST to loopback, your private network, or the cloud metadata
	// service at 169.254.169.254 (which hands out credentials), unless your
	// client's dialer or an egress proxy refuses such addresses itself
	// (CheckDestination gives the guard's decision for an address, for
	// use in your own net.Dialer Control function). It must also not
	// follow redirects if you want 3xx recorded as "redirect" (a followed
	// redirect can lead anywhere, internal addresses included), and should
	// set its own timeouts. AllowPrivateNetworks and AllowedNetworks have
	// no effect on it.
	HTTPClient *http.Client

	// AllowPrivateNetworks turns the destination guard of the default
	// HTTPClient OFF. Default false: the guard refuses to connect to
	// loopback, private (RFC 1918, IPv6 unique-local), link-local (cloud
	// metadata), carrier-grade NAT, multicast, unspecified and other
	// special-purpose addresses (BlockedRanges), checked on the address
	// each connection is about to use, after DNS resolution. A refused
	// attempt sends nothing and, when every address of the host is
	// refused, fails the delivery for good with reason
	// store.ReasonBlockedDestination (a host with an address the guard
	// allows, which did not answer, is a connection error, retried).
	//
	// FOR DEVELOPMENT AND TESTS ONLY (a receiver on localhost or
	// httptest.NewServer). Callback URLs are typed by your customers: with
	// the guard off, any of them can make your servers send requests into
	// your own network. To reach a few internal receivers in production,
	// list them in AllowedNetworks instead.
	AllowPrivateNetworks bool

	// AllowedNetworks lists networks the destination guard lets through
	// although they lie in a refused range, for example a receiver on your
	// private network (netip.MustParsePrefix("10.20.0.0/16")). An entry
	// matches the address connected to and, for an IPv4-mapped or NAT64
	// address, the IPv4 address embedded in it; write IPv4 networks in
	// IPv4 form. Host bits are ignored. Default: none. Must be empty when
	// HTTPClient is set, since the guard belongs to the default client, and
	// when AllowPrivateNetworks is, which turns the guard off.
	AllowedNetworks []netip.Prefix

	// Workers is how many attempts run at once. Default DefaultWorkers.
	//
	// A Deliverer claims ahead: up to 2×Workers deliveries in attempts or
	// waiting for a worker, claimed once at least Workers/2 are free (as
	// many as are free at a time), within which
	// Deliver hands new deliveries straight to the workers (the two may
	// overlap while a Claim is on its way, up to 4×Workers); up to
	// 2×Workers more wait in hosts' queues (see MaxPerHost). With a Store
	// other than the memory store, 2×Workers recorders write the outcomes,
	// so up to 2×Workers more may be attempted and not yet recorded (3×Workers
	// attempts in all, counting a worker's own that waits for a recorder,
	// which is among the claimed). All of
	// these are leased to the Deliverer, 8×Workers at the very most; a
	// crashed process leaves them leased until the lease expires.
	Workers int

	// MaxAttempts is how many attempts a delivery gets before it fails.
	// Default DefaultMaxAttempts (8).
	MaxAttempts int

	// RetryPolicy gives the delays between attempts. Default
	// DefaultRetryPolicy (DefaultSchedule with ±20% jitter).
	RetryPolicy RetryPolicy

	// MaxRetryAfter bounds how long a Retry-After header (on 429 and 503)
	// can push the next attempt out; a longer one is cut to it. Default
	// DefaultMaxRetryAfter (1 hour).
	MaxRetryAfter time.Duration

	// AttemptTimeout bounds one attempt in real time: connecting, sending
	// and reading the response. It must be shorter than MaxLease. Default
	// DefaultAttemptTimeout (15 s).
	AttemptTimeout time.Duration

	// Lease is how long a claimed delivery belongs to this Deliverer before
	// another may take it; it must exceed AttemptTimeout, and be at most
	// MaxLease. Leave room: a claimed delivery that waits for a worker (or
	// in its host's queue) until less than AttemptTimeout of its lease is
	// left is given back, due at once, and claimed again, so a Lease barely
	// longer than AttemptTimeout keeps deliveries going round. Default
	// DefaultLease (1 minute), or 2×AttemptTimeout when that is longer (at
	// most MaxLease).
	Lease time.Duration

	// PollInterval is how often the Store is asked for due deliveries when
	// nothing wakes the Deliverer sooner (Deliver and finished attempts do).
	// Default DefaultPollInterval (1 s).
	PollInterval time.Duration

	// ResponseBodyLimit is how many bytes of a response body are stored
	// with the attempt, at most, as text: bytes that are not UTF-8, and NUL
	// bytes, are stored as U+FFFD, within the limit. Default DefaultResponseBodyLimit
	// (20,000).
	ResponseBodyLimit int

	// ResponseReadLimit is how many bytes of a response body are read at
	// most; reading stops there and the connection is dropped, so a 10 MiB
	// answer costs no more than this. A body read to its end lets the
	// connection be reused, so a larger limit (say 64 KiB) keeps
	// connections to receivers whose answers are longer than what is
	// stored. Default ResponseBodyLimit: reading stops where storing does.
	// Never less than ResponseBodyLimit.
	ResponseReadLimit int

	// MaxPerHost is how many attempts to one destination host (host and
	// port of the URL) run at once, so one endpoint that hangs until every
	// timeout cannot occupy every worker. More deliveries to the host wait
	// in the host's queue without holding a worker (the next free slot of
	// the host takes them at once), up to max(MaxPerHost, min(2×Workers −
	// Workers/2 − MaxPerHost, 2×MaxPerHost)), 2×Workers in all hosts'
	// queues; they do not count against the deliveries claimed ahead, so
	// hosts that hang never leave an idle worker without work. Beyond that
	// they go back to the Store until the host is likely to have room
	// (about its recent attempt time, or how long none has ended; at most a
	// PollInterval). Default Workers/2 (at least 1); at most Workers.
	MaxPerHost int

	// MaxPayloadBytes is the largest frozen payload Deliver accepts.
	// Default DefaultMaxPayloadBytes (256 KiB).
	MaxPayloadBytes int

	// AllowURLUserinfo lets callback URLs carry user:password@ (sent as
	// basic auth). Default false: such URLs are refused. The URL is stored
	// as given, so the record (callback_url) shows the password to whoever
	// may read it.
	AllowURLUserinfo bool

	// Logger receives what happens: store errors at Error, lost leases and
	// deliveries that end failed at Warn, failed attempts at Info,
	// successes at Debug. Default: discard.
	Logger *slog.Logger

	// Observer is told of every attempt and every delivery that ends.
	// Default: nothing is told.
	Observer Observer
}

// Observer hooks let a host feed metrics or traces without hookline importing
// a metrics library. Each field may be nil. Hooks are called synchronously on
// the Deliverer's own goroutines: Attempt and Done on the worker that made
// the attempt (with the memory store) or on the recorder that stored it
// (with any other store), Error on whichever goroutine made the failed Store
// call. So they must be quick and safe for concurrent use, must not block,
// and must not call Stop, which waits for them; a hook that panics takes the
// process down, as any goroutine's panic does. Calling Deliver or Redeliver
// from a hook is fine.
type Observer struct {
	// Attempt is called after each attempt is recorded. d is the delivery's
	// new state without its Attempts; a is the attempt.
	Attempt func(d *store.Delivery, a store.Attempt)
	// Done is called when a delivery reaches succeeded or failed, after
	// Attempt.
	Done func(d *store.Delivery)
	// Error is called when a Store call fails, with the operation's name
	// ("claim", "record", "release"). The Deliverer retries on its own
	// schedule, except a call refused for its arguments
	// (store.ErrInvalidArgument), which no retry mends.
	Error func(op string, err error)
}

// withDefaults returns c with defaults filled in, or an error naming the first
// bad field.
func (c Config) withDefaults() (Config, error) {
	bad := func(field, msg string) (Config, error) {
		return c, fmt.Errorf("delivery: Config.%s %s: %w", field, msg, ErrInvalidConfig)
	}
	if c.Signer == nil || c.Signer.Keys().Len() == 0 {
		return bad("Signer", "is required; build one with signing.NewSigner")
	}
	if c.Store == nil {
		c.Store = store.NewMemory()
	} else if isNilPointer(c.Store) {
		return bad("Store", fmt.Sprintf("is a nil %T; leave it nil for a memory store, or pass one made by its constructor", c.Store))
	}
	if c.Clock == nil {
		c.Clock = SystemClock()
	} else if isNilPointer(c.Clock) {
		return bad("Clock", fmt.Sprintf("is a nil %T; leave it nil for the system clock, or use NewManualClock", c.Clock))
	}
	if c.RetryPolicy == nil {
		c.RetryPolicy = DefaultRetryPolicy
	}
	if c.RetryPolicy() == nil {
		return bad("RetryPolicy", "returned a nil backoff.BackOff; return a new one per delivery")
	}
	type intField struct {
		name string
		v    *int
		def  int
	}
	for _, f := range []intField{
		{"Workers", &c.Workers, DefaultWorkers},
		{"MaxAttempts", &c.MaxAttempts, DefaultMaxAttempts},
		{"ResponseBodyLimit", &c.ResponseBodyLimit, DefaultResponseBodyLimit},
		{"ResponseReadLimit", &c.ResponseReadLimit, -1}, // default depends on ResponseBodyLimit
		{"MaxPerHost", &c.MaxPerHost, -1},               // default depends on Workers
		{"MaxPayloadBytes", &c.MaxPayloadBytes, DefaultMaxPayloadBytes},
	} {
		if *f.v < 0 {
			return bad(f.name, "is negative; use 0 for the default")
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.Workers > MaxWorkers {
		return bad("Workers", fmt.Sprintf("(%d) is more than %d", c.Workers, MaxWorkers))
	}
	if c.MaxAttempts > math.MaxInt32 {
		return bad("MaxAttempts", fmt.Sprintf("(%d) is more than %d", c.MaxAttempts, math.MaxInt32))
	}
	if c.MaxPerHost == -1 {
		c.MaxPerHost = max(1, c.Workers/2)
	}
	if c.MaxPerHost > c.Workers {
		return bad("MaxPerHost", fmt.Sprintf("(%d) is more than Workers (%d)", c.MaxPerHost, c.Workers))
	}
	if c.ResponseReadLimit == -1 {
		c.ResponseReadLimit = c.ResponseBodyLimit
	}
	if c.ResponseReadLimit < c.ResponseBodyLimit {
		return bad("ResponseReadLimit", fmt.Sprintf("(%d) is less than ResponseBodyLimit (%d): what is stored must have been read", c.ResponseReadLimit, c.ResponseBodyLimit))
	}
	type durField struct {
		name string
		v    *time.Duration
		def  time.Duration
	}
	for _, f := range []durField{
		{"AttemptTimeout", &c.AttemptTimeout, DefaultAttemptTimeout},
		{"PollInterval", &c.PollInterval, DefaultPollInterval},
		{"MaxRetryAfter", &c.MaxRetryAfter, DefaultMaxRetryAfter},
		{"Lease", &c.Lease, -1}, // default depends on AttemptTimeout
	} {
		if *f.v < 0 {
			return bad(f.name, "is negative; use 0 for the default")
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.AttemptTimeout >= MaxLease {
		return bad("AttemptTimeout", fmt.Sprintf("(%s) is not shorter than MaxLease (%s): an attempt must end within its lease", c.AttemptTimeout, MaxLease))
	}
	if c.Lease == -1 {
		c.Lease = min(MaxLease, max(DefaultLease, 2*c.AttemptTimeout)) // 2×: less than 2 years
	}
	if c.Lease > MaxLease {
		return bad("Lease", fmt.Sprintf("(%s) is longer than MaxLease (%s)", c.Lease, MaxLease))
	}
	if c.Lease <= c.AttemptTimeout {
		return bad("Lease", fmt.Sprintf("(%s) must be longer than AttemptTimeout (%s), or another worker may take a delivery mid-attempt", c.Lease, c.AttemptTimeout))
	}
	if c.HTTPClient != nil && len(c.AllowedNetworks) > 0 {
		return bad("AllowedNetworks", "has no effect when HTTPClient is set: the destination guard belongs to the default client; leave it empty, or refuse addresses in your client's dialer")
	}
	if c.AllowPrivateNetworks && len(c.AllowedNetworks) > 0 {
		return bad("AllowedNetworks", "has no effect when AllowPrivateNetworks is set, which turns the destination guard off; keep the guard and list your networks here, or leave it empty")
	}
	allowed, err := validateAllowedNetworks(c.AllowedNetworks)
	if err != nil {
		return bad("AllowedNetworks", err.Error())
	}
	c.AllowedNetworks = allowed
	if c.HTTPClient == nil {
		var g *guard
		if !c.AllowPrivateNetworks {
			g = &guard{allowed: allowed}
		}
		c.HTTPClient = defaultHTTPClient(c.AttemptTimeout, c.Workers, g)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// isNilPointer reports whether v holds a nil pointer (an interface that is
// not nil, but whose methods would dereference nil).
func isNilPointer(v any) bool {
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Pointer && r.IsNil()
}

// defaultHTTPClient follows no redirect, keeps an idle connection per worker
// for each host, bounds connecting and TLS handshakes, and, unless g is nil,
// refuses destinations through g at dial time. The rest of an attempt
// (waiting for headers, reading the body) is bounded by the attempt's own
// timer (see worker.begin), so the transport keeps no timer per request.
// Its transport is made afresh, not copied from http.DefaultTransport, which
// the host may have changed or replaced: a DialTLSContext there would dial
// https callbacks past the guard, a TLSClientConfig would change how
// receivers' certificates are checked.
func defaultHTTPClient(attemptTimeout time.Duration, workers int, g *guard) *http.Client {
	dialer := &net.Dialer{
		Timeout:   min(maxConnectTimeout, attemptTimeout),
		KeepAlive: 30 * time.Second,
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would be the guard's only destination
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no global cap
		MaxIdleConnsPerHost:   workers,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(maxConnectTimeout, attemptTimeout),
		ExpectContinueTimeout: time.Second,
	}
	if g != nil {
		dialer.ControlContext = g.control
		tr.DialContext = g.dialContext(dialer)
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

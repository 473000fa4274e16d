package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/store"
)

var errInjected = errors.New("injected store failure")

// chaosStore fails calls at random while on: before the call (nothing
// happens), or after it (the call took effect but the caller hears it
// failed, as with a timeout on the way back), as an error or as a timeout.
type chaosStore struct {
	store.Store
	on       atomic.Bool
	p        float64
	mu       sync.Mutex
	rng      *rand.Rand
	injected atomic.Int64
}

// failRecord fails the first n Record calls before they reach the store.
type failRecord struct {
	store.Store
	n     int32
	calls atomic.Int32
}

func (s *failRecord) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	if s.calls.Add(1) <= s.n {
		return errInjected
	}
	return s.Store.Record(ctx, token, r)
}

// roll decides the fate of one call: fail before it, fail after it, and
// whether the failure looks like a timeout.
func (s *chaosStore) roll() (before, after bool, err error) {
	if !s.on.Load() {
		return false, false, nil
	}
	s.mu.Lock()
	x, y := s.rng.Float64(), s.rng.Float64()
	s.mu.Unlock()
	if x >= s.p {
		return false, false, nil
	}
	s.injected.Add(1)
	err = errInjected
	if y < 0.3 {
		time.Sleep(5 * time.Millisecond)
		err = fmt.Errorf("store call: %w", context.DeadlineExceeded)
	}
	return x < s.p/2, x >= s.p/2, err
}

func chaos[T any](s *chaosStore, call func() (T, error)) (T, error) {
	before, after, err := s.roll()
	var zero T
	if before {
		return zero, err
	}
	v, cerr := call()
	if after && cerr == nil {
		return zero, err
	}
	return v, cerr
}

func (s *chaosStore) Insert(ctx context.Context, d *store.Delivery) error {
	_, err := chaos(s, func() (struct{}, error) { return struct{}{}, s.Store.Insert(ctx, d) })
	return err
}

func (s *chaosStore) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	return chaos(s, func() ([]*store.Delivery, error) { return s.Store.Claim(ctx, now, limit, lease) })
}

func (s *chaosStore) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	_, err := chaos(s, func() (struct{}, error) { return struct{}{}, s.Store.Record(ctx, token, r) })
	return err
}

func (s *chaosStore) Release(ctx context.Context, id, token uuid.UUID, next time.Time) error {
	_, err := chaos(s, func() (struct{}, error) { return struct{}{}, s.Store.Release(ctx, id, token, next) })
	return err
}

func (s *chaosStore) History(ctx context.Context, batchID uuid.UUID) ([]*store.Delivery, error) {
	return chaos(s, func() ([]*store.Delivery, error) { return s.Store.History(ctx, batchID) })
}

// sinkReceiver answers 200, or 500 for a seeded 30% of requests, and keeps
// the request id (the attempt id) of every request.
type sinkReceiver struct {
	mu      sync.Mutex
	seed    uint64
	perID   map[string]int
	attempt map[string]bool // Hookline-Request-Id values seen
}

func (s *sinkReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id := r.Header.Get("Webhook-Id")
	s.perID[id]++
	n := s.perID[id]
	s.attempt[r.Header.Get("Runflow-Request-Id")] = true
	s.mu.Unlock()
	if rand.New(rand.NewPCG(s.seed, uint64(n)+uint64(len(id))*uint64(id[len(id)-1]))).Float64() < 0.3 {
		w.WriteHeader(500)
	}
}

// driveQuiet advances the manual clock whenever the store has been still for
// a moment, to the earliest next attempt (a lease left behind by a failed
// call counts: it is due again at its expiry), until all are terminal.
func driveQuiet(t *testing.T, clock *delivery.ManualClock, st store.Store, batches []uuid.UUID, limit time.Duration) map[uuid.UUID]*store.Delivery {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	var lastSig string
	quietSince := time.Now()
	for {
		require.True(t, time.Now().Before(deadline), "deliveries still pending after %s", limit)
		final := map[uuid.UUID]*store.Delivery{}
		var next time.Time
		sig := ""
		for _, b := range batches {
			h, err := st.History(ctx, b)
			require.NoError(t, err)
			for _, rec := range h {
				final[rec.ID] = rec
				sig += fmt.Sprint(rec.AttemptCount, rec.LeaseToken, rec.Status)
				if !rec.Status.Terminal() && (next.IsZero() || rec.NextAttemptAt.Before(next)) {
					next = rec.NextAttemptAt
				}
			}
		}
		if next.IsZero() {
			return final
		}
		if sig != lastSig {
			lastSig, quietSince = sig, time.Now()
		}
		if time.Since(quietSince) < 30*time.Millisecond {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if next.After(clock.Now()) {
			clock.Set(next)
		} else {
			clock.Advance(delivery.DefaultPollInterval)
		}
		quietSince = time.Now()
	}
}

// TestStoreFaults: with a Store that fails one call in ten (errors and
// timeouts, before and after taking effect), the Deliverer keeps going,
// reports the errors, loses no delivery, records no attempt twice, and once
// the faults stop every delivery ends.
func TestStoreFaults(t *testing.T) {
	n := 300
	seed := testenv.Seed(t)
	clock := delivery.NewManualClock(t0)
	rcv := &sinkReceiver{seed: seed, perID: map[string]int{}, attempt: map[string]bool{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	cs := &chaosStore{Store: store.NewMemory(), p: 0.1, rng: rand.New(rand.NewPCG(seed, 1))}
	cs.on.Store(true)
	var reported atomic.Int64
	secret := newSecret(t)
	d, err := delivery.New(delivery.Config{
		Signer:               newSigner(t, secret),
		Store:                cs,
		Clock:                clock,
		Workers:              16,
		MaxPerHost:           16,
		MaxAttempts:          len(faultSchedule) + 1,
		RetryPolicy:          func() backoff.BackOff { return &delivery.Schedule{Delays: faultSchedule} },
		AllowPrivateNetworks: true,
		Observer:             delivery.Observer{Error: func(op string, err error) { reported.Add(1) }},
	})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	defer d.Stop(context.Background())

	var batches []uuid.UUID
	for range n {
		b := uuid.New()
		batches = append(batches, b)
		var err error
		for try := 0; try < 50; try++ { // a host retries its own failed call
			if _, err = d.Deliver(context.Background(), srv.URL, callback(b)); err == nil {
				break
			}
		}
		require.NoError(t, err, "Deliver kept failing")
	}
	// Faults on for a while of schedule, then off.
	for range 5 {
		clock.Advance(faultSchedule[0])
		time.Sleep(100 * time.Millisecond)
	}
	cs.on.Store(false)
	final := driveQuiet(t, clock, cs.Store, batches, 60*time.Second)

	assert.Positive(t, cs.injected.Load())
	assert.Positive(t, reported.Load(), "store errors must reach the Observer")
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	perBatch := map[uuid.UUID]int{}
	for _, rec := range final {
		perBatch[rec.BatchID]++
		require.True(t, rec.Status.Terminal(), "delivery %s is %s (seed %d)", rec.ID, rec.Status, seed)
		require.Equal(t, rec.AttemptCount, len(rec.Attempts))
		seen := map[uuid.UUID]bool{}
		for i, a := range rec.Attempts {
			assert.Equal(t, i+1, a.AttemptNumber, "delivery %s: attempts numbered without gaps or repeats", rec.ID)
			assert.False(t, seen[a.ID], "delivery %s: attempt %s recorded twice", rec.ID, a.ID)
			seen[a.ID] = true
			assert.True(t, rcv.attempt[a.ID.String()], "delivery %s: attempt %d recorded but never sent", rec.ID, a.AttemptNumber)
		}
		assert.GreaterOrEqual(t, rcv.perID[rec.ID.String()], rec.AttemptCount, "delivery %s: more attempts recorded than sent", rec.ID)
	}
	for _, b := range batches {
		assert.Equal(t, 1, perBatch[b], "batch %s must have exactly one delivery (seed %d)", b, seed)
	}
	t.Logf("injected %d store faults, %d reported", cs.injected.Load(), reported.Load())
}

// TestStopUnderLoad: Stop during 500 attempts in flight returns by its
// deadline, leaving every delivery pending and released; a new Deliverer on
// the same store finishes them all.
func TestStopUnderLoad(t *testing.T) {
	const n = 500
	var inFlight atomic.Int32
	healthy := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body: only then does net/http watch the connection and
		// cancel r.Context() when the sender hangs up.
		io.Copy(io.Discard, r.Body)
		if healthy.Load() {
			return
		}
		inFlight.Add(1)
		defer inFlight.Add(-1)
		<-r.Context().Done()
	}))
	defer srv.Close()
	clock := delivery.NewManualClock(t0)
	st := store.NewMemory()
	secret := newSecret(t)
	newD := func() *delivery.Deliverer {
		d, err := delivery.New(delivery.Config{Signer: newSigner(t, secret), Store: st, Clock: clock, Workers: n, MaxPerHost: n,
			AttemptTimeout: time.Minute, Lease: 5 * time.Minute, AllowPrivateNetworks: true})
		require.NoError(t, err)
		require.NoError(t, d.Start(context.Background()))
		return d
	}
	baseline := runtime.NumGoroutine()
	d := newD()
	var ids []uuid.UUID
	for range n {
		rec, err := d.Deliver(context.Background(), srv.URL, callback(uuid.New()))
		require.NoError(t, err)
		ids = append(ids, rec.ID)
	}
	require.Eventually(t, func() bool { return inFlight.Load() == n }, 30*time.Second, 5*time.Millisecond, "in flight: %d", inFlight.Load())

	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := d.Stop(ctx)
	took := time.Since(start)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, took, deadline+2*time.Second, "Stop took %s with a %s deadline", took, deadline)
	for _, id := range ids {
		rec, err := st.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, store.StatusPending, rec.Status)
		require.Zero(t, rec.AttemptCount, "an aborted attempt is released, not recorded")
		require.Equal(t, uuid.Nil, rec.LeaseToken, "Stop must leave no lease behind")
	}
	srv.CloseClientConnections()

	healthy.Store(true)
	d2 := newD()
	for _, id := range ids {
		require.Eventually(t, func() bool {
			rec, err := st.Get(context.Background(), id)
			return err == nil && rec.Status == store.StatusSucceeded
		}, 30*time.Second, time.Millisecond)
	}
	require.NoError(t, d2.Stop(context.Background()))
	srv.CloseClientConnections()
	checkNoLeaks(t, baseline)
}

// TestClockJumpsForwardMidAttempt: the wall clock jumps an hour ahead while
// attempts are in flight, so their leases look expired and the dispatcher
// claims the deliveries again. The worker still on each one records its
// attempt under the new lease; nothing is sent twice.
func TestClockJumpsForwardMidAttempt(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	got := map[string]int{}
	var inFlight atomic.Int32
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("Webhook-Id")]++
		mu.Unlock()
		inFlight.Add(1)
		defer inFlight.Add(-1)
		<-release
	}, func(c *delivery.Config) {
		// Free workers: the dispatcher will claim the deliveries again.
		c.Workers, c.MaxPerHost, c.AttemptTimeout = 16, 16, time.Minute
	})
	var ids []uuid.UUID
	for range 8 {
		ids = append(ids, h.deliver(h.srv.URL).ID)
	}
	require.Eventually(t, func() bool { return inFlight.Load() == 8 }, 5*time.Second, time.Millisecond)

	h.clock.Advance(time.Hour)
	// The dispatcher takes every delivery again under a new lease.
	require.Eventually(t, func() bool {
		for _, id := range ids {
			rec, err := h.st.Get(context.Background(), id)
			require.NoError(t, err)
			if !rec.LeaseExpiresAt.After(t0.Add(time.Hour)) {
				return false
			}
		}
		return true
	}, 5*time.Second, time.Millisecond)
	close(release)
	for _, id := range ids {
		rec := h.waitTerminal(id)
		assert.Equal(t, store.StatusSucceeded, rec.Status)
		assert.Equal(t, 1, rec.AttemptCount)
	}
	settle()
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		assert.Equal(t, 1, got[id.String()], "delivery %s was sent %d times", id, got[id.String()])
	}
}

// TestClockJumpsBackward: the wall clock falls back an hour between attempts.
// Retries keep their absolute times: none comes early, each comes once.
func TestClockJumpsBackward(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("Webhook-Id")
		if got[id]++; got[id] == 1 {
			w.WriteHeader(503)
		}
	}, nil)
	var ids []uuid.UUID
	for range 20 {
		ids = append(ids, h.deliver(h.srv.URL).ID)
	}
	for _, id := range ids {
		h.waitAttempts(id, 1)
	}
	h.clock.Set(t0.Add(-time.Hour))
	// A jump back fires no timer: a new delivery wakes the dispatcher, so
	// that it claims with the clock an hour back.
	late := h.deliver(h.srv.URL)
	h.waitAttempts(late.ID, 1)
	settle()
	for _, id := range ids {
		rec, err := h.st.Get(context.Background(), id)
		require.NoError(t, err)
		assert.Equal(t, 1, rec.AttemptCount, "no retry before its time")
	}
	h.clock.Set(t0.Add(delivery.DefaultSchedule[0]))
	for _, id := range ids {
		rec := h.waitTerminal(id)
		assert.Equal(t, store.StatusSucceeded, rec.Status)
		assert.Equal(t, 2, rec.AttemptCount)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		assert.Equal(t, 2, got[id.String()], "delivery %s: sends", id)
	}
}

// net/http accepts any three digits as a status ("HTTP/1.1 050"), which no
// store may record as an HTTP status. Such a response is a malformed one: a
// connection_error attempt with no status, retried on the schedule, and not a
// Record the store refuses (which left the delivery leased, sent again at
// each lease expiry without ever being recorded).
func TestStatusBelow100IsAMalformedResponse(t *testing.T) {
	for _, line := range []string{"HTTP/1.1 050 Weird", "HTTP/1.1 000 Zero"} {
		t.Run(line, func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				defer conn.Close()
				buf.WriteString(line + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				buf.Flush()
			}, func(c *delivery.Config) {
				c.Observer.Error = func(op string, err error) { t.Errorf("store %s: %v", op, err) }
			})
			rec := h.waitAttempts(h.deliver(h.srv.URL).ID, 1)
			require.Equal(t, store.StatusPending, rec.Status, "retried on the schedule")
			a := rec.Attempts[0]
			assert.Equal(t, 0, a.StatusCode, "no HTTP status")
			assert.Equal(t, store.ReasonConnectionError, a.FailureReason)
			assert.Contains(t, a.ErrorMessage, "malformed HTTP response")
		})
	}
}

// failingRelease is a memory store whose Release fails once down is set,
// as when the database went away.
type failingRelease struct {
	*store.Memory
	down     atomic.Bool
	releases atomic.Int32
}

func (s *failingRelease) Release(ctx context.Context, id, token uuid.UUID, next time.Time) error {
	if s.down.Load() {
		s.releases.Add(1)
		return errors.New("connection refused")
	}
	return s.Memory.Release(ctx, id, token, next)
}

// Stop's context bounds its wait also when the Store fails: once it has
// ended, each lease still to give back gets one try, not the retries (about
// 3 s each, one after another for the deliveries queued behind a hanging
// host).
func TestStopKeepsItsDeadlineWhenTheStoreFails(t *testing.T) {
	var started atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer srv.Close()
	st := &failingRelease{Memory: store.NewMemory()}
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)), Store: st, Workers: 2, MaxPerHost: 1,
		AttemptTimeout: time.Minute, Lease: 2 * time.Minute, AllowPrivateNetworks: true})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	for range 4 {
		_, err := d.Deliver(context.Background(), srv.URL, callback(uuid.New()))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return started.Load() == 1 }, 10*time.Second, time.Millisecond)
	st.down.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.ErrorIs(t, d.Stop(ctx), context.DeadlineExceeded)
	took := time.Since(start)
	require.Positive(t, st.releases.Load(), "the leases were given back, and failed")
	require.Less(t, took, 2*time.Second, "Stop outlived its 100 ms context by %s (%d releases failed)", took, st.releases.Load())
}

// Hosts that hang hold their MaxPerHost slots and fill the hosts' queues,
// but never so far that a worker left idle has nothing to claim: a delivery
// to a healthy host, claimed from the Store (as DeliverTx's, retries' and
// other replicas' are), is sent while the hanging attempts still wait for
// their timeout.
func TestHangingHostsLeaveRoomToClaim(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		workers, maxPerHost, hosts int
	}{
		// A queue per host sized as if only one hung: two took all 16
		// places while 6 of 8 workers sat idle.
		{"two hosts, one slot each", 8, 1, 2},
		// MaxPerHost near Workers: 5 slots and a queue of 5 left 2 of 12
		// places free, fewer than a claim waits for (3).
		{"one host, most slots", 6, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *delivery.Config) {
				c.Workers, c.MaxPerHost = tc.workers, tc.maxPerHost
				c.AttemptTimeout, c.Lease = time.Minute, 2*time.Minute
			})
			release := make(chan struct{})
			var hanging atomic.Int32
			for range tc.hosts {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hanging.Add(1)
					defer hanging.Add(-1)
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}))
				t.Cleanup(srv.Close) // after release, which ends the requests
				for range 20 {
					_, err := h.d.DeliverTx(context.Background(), h.st, srv.URL, callback(uuid.New()))
					require.NoError(t, err)
				}
			}
			defer close(release)
			want := int32(tc.hosts * tc.maxPerHost)
			require.Eventually(t, func() bool { return hanging.Load() == want }, 10*time.Second, time.Millisecond)
			settle() // the dispatcher claims what the queues take
			rec, err := h.d.DeliverTx(context.Background(), h.st, h.srv.URL, callback(uuid.New()))
			require.NoError(t, err)
			h.waitFor(rec.ID, func(d *store.Delivery) bool { return d.Status == store.StatusSucceeded }, "succeeded while hosts hang")
		})
	}
}

// gatedInsertLeased holds InsertLeased's answer until gate is closed (a slow
// commit acknowledgement), and counts Store calls made once stopped is set.
type gatedInsertLeased struct {
	*store.Memory
	inserted chan uuid.UUID
	gate     chan struct{}
	stopped  atomic.Bool
	late     atomic.Int32
}

func (s *gatedInsertLeased) InsertLeased(ctx context.Context, d *store.Delivery) error {
	err := s.Memory.InsertLeased(ctx, d)
	s.inserted <- d.ID
	<-s.gate
	return err
}

func (s *gatedInsertLeased) Release(ctx context.Context, id, token uuid.UUID, next time.Time) error {
	if s.stopped.Load() {
		s.late.Add(1)
	}
	return s.Memory.Release(ctx, id, token, next)
}

// Stop waits for a Deliver that is handing its delivery straight to a
// worker and is still inside InsertLeased: when Stop returns, the delivery
// is not leased to the stopped Deliverer, and no Store call follows.
// So it does after Start's context was cancelled (a hard stop of the
// workers), too.
func TestStopWaitsForADeliverInsideInsertLeased(t *testing.T) {
	for _, cancelStart := range []bool{false, true} {
		t.Run(fmt.Sprint("Start's context cancelled: ", cancelStart), func(t *testing.T) {
			testStopWaitsForInsertLeased(t, cancelStart)
		})
	}
}

func testStopWaitsForInsertLeased(t *testing.T, cancelStart bool) {
	st := &gatedInsertLeased{Memory: store.NewMemory(), inserted: make(chan uuid.UUID, 1), gate: make(chan struct{})}
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)), Store: st, AllowPrivateNetworks: true})
	require.NoError(t, err)
	startCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, d.Start(startCtx))
	delivered := make(chan error, 1)
	go func() {
		_, err := d.Deliver(context.Background(), "http://127.0.0.1:9/hook", callback(uuid.New()))
		delivered <- err
	}()
	id := <-st.inserted
	if cancelStart {
		cancel()
	}
	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a Deliver was inside InsertLeased", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(st.gate)
	require.NoError(t, <-stopped)
	st.stopped.Store(true)
	require.NoError(t, <-delivered)
	got, err := st.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, uuid.Nil, got.LeaseToken, "the delivery is still leased to the stopped Deliverer")
	assert.Equal(t, store.StatusPending, got.Status)
	assert.Zero(t, st.late.Load(), "Store calls after Stop returned")
}

// slowClaimReturn is a memory store whose Claim, once hold is set, leases
// what is due and then waits for gate before returning (a slow round trip
// back from the database).
type slowClaimReturn struct {
	*store.Memory
	hold    atomic.Bool
	claimed chan struct{}
	gate    chan struct{}
	lost    atomic.Int32
}

func (s *slowClaimReturn) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	ds, err := s.Memory.Claim(ctx, now, limit, lease)
	if len(ds) > 0 && s.hold.CompareAndSwap(true, false) {
		close(s.claimed)
		<-s.gate
	}
	return ds, err
}

func (s *slowClaimReturn) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	err := s.Memory.Record(ctx, token, r)
	if errors.Is(err, store.ErrLeaseLost) {
		s.lost.Add(1)
	}
	return err
}

// The lease runs out mid-attempt (the clock jumps) and the dispatcher claims
// the delivery again; the attempt ends while that Claim, which has leased it
// in the Store, is still on its way back. The worker's Record finds its
// lease lost, waits for the Claim to be handed out, and records the attempt
// under the newer lease: one request, recorded, not a second one.
func TestLeaseLostWhileItsReclaimIsOnItsWay(t *testing.T) {
	var sends atomic.Int32
	firstIn, finish := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sends.Add(1) == 1 {
			close(firstIn)
			<-finish
		}
	}))
	defer srv.Close()
	clock := delivery.NewManualClock(t0)
	st := &slowClaimReturn{Memory: store.NewMemory(), claimed: make(chan struct{}), gate: make(chan struct{})}
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)), Store: st, Clock: clock,
		AttemptTimeout: 30 * time.Second, Lease: time.Minute, AllowPrivateNetworks: true})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	defer d.Stop(context.Background())

	rec, err := d.Deliver(context.Background(), srv.URL, callback(uuid.New()))
	require.NoError(t, err)
	<-firstIn
	st.hold.Store(true)
	clock.Advance(2 * time.Minute) // the lease has run out: the dispatcher claims again
	<-st.claimed                   // the Store has given out the new lease
	close(finish)                  // the attempt ends; its lease is lost
	require.Eventually(t, func() bool { return st.lost.Load() >= 1 }, 10*time.Second, time.Millisecond)
	close(st.gate) // the Claim returns
	require.Eventually(t, func() bool {
		got, err := st.Get(context.Background(), rec.ID)
		return err == nil && got.Status.Terminal()
	}, 10*time.Second, time.Millisecond)
	settle() // room for a second send, which must not happen
	got, err := st.Get(context.Background(), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusSucceeded, got.Status)
	assert.Equal(t, 1, got.AttemptCount)
	assert.Equal(t, int32(1), sends.Load(), "the delivery was sent twice")
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Over HTTP/2, net/http takes any number as the status (":status 1000"):
// beyond 999 it is a malformed response too, not a status no store records.
func TestStatusAbove999IsAMalformedResponse(t *testing.T) {
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 1000, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	h := newHarness(t, nil, func(c *delivery.Config) {
		c.HTTPClient = client
		c.Observer.Error = func(op string, err error) { t.Errorf("store %s: %v", op, err) }
	})
	rec := h.waitAttempts(h.deliver("https://receiver.example/hook").ID, 1)
	a := rec.Attempts[0]
	assert.Equal(t, 0, a.StatusCode)
	assert.Equal(t, store.ReasonConnectionError, a.FailureReason)
	assert.Contains(t, a.ErrorMessage, "status code 1000")
}

// Deliveries in hosts' queues do not count against the claim budget, but
// they are bounded all the same: with many hosts that hang and one slot
// each, a Deliverer holds leases on at most 4×Workers deliveries not yet
// attempted (Config.Workers), not a queue of about 1.5×Workers per host.
func TestHostQueuesAreBoundedTogether(t *testing.T) {
	const workers, hosts, perHost = 16, 16, 40
	var started atomic.Int32
	release := make(chan struct{})
	hang := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		started.Add(1)
		io.Copy(io.Discard, r.Body)
		select {
		case <-release:
			return nil, errors.New("released")
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	})}
	h := newHarness(t, nil, func(c *delivery.Config) {
		c.Workers, c.MaxPerHost, c.HTTPClient = workers, 1, hang
		c.AttemptTimeout, c.Lease = time.Minute, 2*time.Minute
	})
	t.Cleanup(func() { close(release) }) // before the harness stops the Deliverer
	var ids []uuid.UUID
	for host := range hosts {
		for range perHost {
			rec, err := h.d.DeliverTx(context.Background(), h.st, fmt.Sprintf("https://h%d.example/hook", host), callback(uuid.New()))
			require.NoError(t, err)
			ids = append(ids, rec.ID)
		}
	}
	require.Eventually(t, func() bool { return started.Load() == workers }, 10*time.Second, time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the dispatcher claims what the queues take
	leased := 0
	for _, id := range ids {
		rec, err := h.st.Get(context.Background(), id)
		require.NoError(t, err)
		if rec.LeaseToken != uuid.Nil {
			leased++
		}
	}
	t.Logf("leases held: %d", leased)
	assert.LessOrEqual(t, leased, 4*workers, "leases held beyond 4×Workers")
}

// A retry that comes due at the very time the dispatcher is claiming (a
// zero delay, or a release "due now") is recorded while an older retry hint,
// already due, is still in the dispatcher's heap. expectDue did not poke
// (the new hint is not the earliest), and sleepFor then dropped both hints
// as "seen by the Claim just made", although the Claim had scanned the Store
// before the retry was recorded: the delivery was due and nobody claimed it
// until a further PollInterval passed on the Clock. A hint already due now
// pokes the dispatcher.
func TestRetryDueDuringAClaimIsClaimed(t *testing.T) {
	var bAttempts atomic.Int32
	var aFirst atomic.Bool
	bIn, bGo := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/b") {
			if bAttempts.Add(1) == 2 {
				close(bIn)
				<-bGo
			}
			w.WriteHeader(500)
			return
		}
		if aFirst.CompareAndSwap(false, true) { // A fails once, then succeeds
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	clock := delivery.NewManualClock(t0)
	st := &slowClaimReturn{Memory: store.NewMemory(), claimed: make(chan struct{}), gate: make(chan struct{})}
	var bID atomic.Value
	bID.Store(uuid.Nil)
	bRecorded2 := make(chan struct{})
	var once sync.Once
	d, err := delivery.New(delivery.Config{
		Signer: newSigner(t, newSecret(t)), Store: st, Clock: clock, Workers: 4,
		RetryPolicy: func() backoff.BackOff {
			return &delivery.Schedule{Delays: []time.Duration{5 * time.Second, 0, 0, 0, 0, 0, 0}}
		},
		AllowPrivateNetworks: true,
		Observer: delivery.Observer{Attempt: func(rec *store.Delivery, a store.Attempt) {
			if rec.ID == bID.Load().(uuid.UUID) && a.AttemptNumber == 2 {
				once.Do(func() { close(bRecorded2) })
			}
		}},
	})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	defer d.Stop(context.Background())

	get := func(id uuid.UUID) *store.Delivery {
		rec, err := st.Get(context.Background(), id)
		require.NoError(t, err)
		return rec
	}
	waitAttempts := func(id uuid.UUID, n int) {
		require.Eventually(t, func() bool { return get(id).AttemptCount >= n }, 10*time.Second, time.Millisecond)
	}

	// B: first attempt fails, retry hint at t0+5s.
	b, err := d.Deliver(context.Background(), srv.URL+"/b", callback(uuid.New()))
	require.NoError(t, err)
	bID.Store(b.ID)
	waitAttempts(b.ID, 1)
	// B's second attempt starts at t0+5s and hangs in the receiver.
	clock.Advance(5 * time.Second)
	<-bIn
	// A: first attempt fails at t0+5s, retry hint at t0+10s.
	a, err := d.Deliver(context.Background(), srv.URL+"/a", callback(uuid.New()))
	require.NoError(t, err)
	waitAttempts(a.ID, 1)
	settle()

	// At t0+11s the dispatcher wakes and claims A; its Claim is slow to return.
	st.hold.Store(true)
	clock.Advance(6 * time.Second)
	<-st.claimed
	// Meanwhile B's attempt 2 fails; its retry (delay 0) is due at t0+11s,
	// the Clock's time, and is recorded after the Claim's scan.
	close(bGo)
	<-bRecorded2
	close(st.gate)

	// A's retry is claimed and succeeds; B is due (NextAttemptAt == now)...
	waitAttempts(a.ID, 2)
	// ...and must be attempted without the Clock moving on.
	require.Eventually(t, func() bool { return get(b.ID).AttemptCount >= 3 }, 3*time.Second, 5*time.Millisecond,
		"B, due at %s (the Clock reads %s), was never claimed: its retry hint was dropped", get(b.ID).NextAttemptAt, clock.Now())
}

// lostAnswer is a memory store (wrapped, so the Deliverer uses recorders)
// whose first Record applies but answers with an error, as when the
// connection is cut after the commit. With reclaimed set, that answer comes
// only once a Claim has taken the delivery again (its retry, due
// meanwhile), as when the connection hangs after the commit.
type lostAnswer struct {
	*store.Memory
	lost      atomic.Bool
	reclaimed chan struct{}
	once      sync.Once
}

func (s *lostAnswer) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	got, err := s.Memory.Claim(ctx, now, limit, lease)
	if s.reclaimed != nil && len(got) > 0 && s.lost.Load() {
		s.once.Do(func() { close(s.reclaimed) })
	}
	return got, err
}

func (s *lostAnswer) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	err := s.Memory.Record(ctx, token, r)
	if err == nil && s.lost.CompareAndSwap(false, true) {
		if s.reclaimed != nil {
			select {
			case <-s.reclaimed:
			case <-time.After(5 * time.Second):
			}
		}
		return errors.New("connection reset after commit")
	}
	return err
}

// A Record that applied but whose answer was lost is retried, finds the
// lease ended (by itself), and must still count as recorded: the delivery
// is reported, not left as "lease lost" with no Observer.Done. When the
// answer is lost only after the Deliverer's own dispatcher has claimed the
// retry (due meanwhile), the newer claim goes on to the retry: it was taken
// to record attempt 1 again, which failed, and the retry then waited,
// leased to nobody, until the lease ran out.
func TestRecordWhoseAnswerWasLostStillCounts(t *testing.T) {
	for _, reclaimed := range []bool{false, true} {
		t.Run(fmt.Sprintf("retry claimed meanwhile=%v", reclaimed), func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 && reclaimed {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}))
			defer srv.Close()
			st := &lostAnswer{Memory: store.NewMemory()}
			want := int32(1)
			if reclaimed {
				st.reclaimed, want = make(chan struct{}), 2
			}
			var attempts atomic.Int32
			done := make(chan *store.Delivery, 1)
			d, err := delivery.New(delivery.Config{
				Signer: newSigner(t, newSecret(t)), Store: st, AllowPrivateNetworks: true,
				PollInterval: 20 * time.Millisecond,
				RetryPolicy:  func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) },
				Observer: delivery.Observer{
					Attempt: func(rec *store.Delivery, a store.Attempt) { attempts.Add(1) },
					Done:    func(rec *store.Delivery) { done <- rec },
				},
			})
			require.NoError(t, err)
			require.NoError(t, d.Start(context.Background()))
			defer d.Stop(context.Background())
			rec, err := d.Deliver(context.Background(), srv.URL, callback(uuid.New()))
			require.NoError(t, err)
			select {
			case got := <-done:
				assert.Equal(t, rec.ID, got.ID)
				assert.Equal(t, store.StatusSucceeded, got.Status)
				assert.Equal(t, want, attempts.Load(), "every attempt reported")
			case <-time.After(15 * time.Second):
				t.Fatalf("not done after 15 s: %d attempts reported, %d sent", attempts.Load(), calls.Load())
			}
			assert.True(t, st.lost.Load(), "the first Record's answer was lost")
		})
	}
}

package delivery_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
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
	"github.com/hookline/hookline/store"
)

// A 101 Switching Protocols hands back the connection as the body, which the
// attempt's timer cannot interrupt: it is not read, so a receiver that keeps
// the connection open holds no worker.
func TestSwitchingProtocolsDoesNotHoldTheWorker(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				if _, err := http.ReadRequest(r); err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
				time.Sleep(time.Minute) // and say nothing more
			}()
		}
	}()
	h := newHarness(t, nil, func(c *delivery.Config) { c.AttemptTimeout = time.Second })
	got := h.waitAttempts(h.deliver("http://"+ln.Addr().String()+"/hooks").ID, 1)
	require.Len(t, got.Attempts, 1)
	assert.Equal(t, 101, got.Attempts[0].StatusCode)
	assert.Equal(t, store.ReasonHTTPError, got.FailureReason, "%s", got.FailureDetail)
	assert.Less(t, got.Attempts[0].ResponseTimeMS, int64(1000), "the attempt did not wait for the connection")
}

// hangingStore is a memory store whose Record and Release, once hang is
// set, wait for their context to end, as a database that stopped answering.
type hangingStore struct {
	*store.Memory
	hang    atomic.Bool
	entered chan struct{}
}

func (s *hangingStore) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	if s.hang.Load() {
		s.entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Memory.Record(ctx, token, r)
}

func (s *hangingStore) Release(ctx context.Context, id, token uuid.UUID, next time.Time) error {
	if s.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Memory.Release(ctx, id, token, next)
}

// Stop's context bounds it even when the Store stops answering mid-Record:
// Stop gives the Store's calls a short grace, then cancels them (their
// leases expire).
func TestStopIsBoundedWhenTheStoreHangs(t *testing.T) {
	t.Parallel()
	st := &hangingStore{Memory: store.NewMemory(), entered: make(chan struct{}, 1)}
	st.hang.Store(true)
	h := newHarness(t, nil, func(c *delivery.Config) { c.Store = st })
	h.deliver(h.srv.URL + "/hooks")
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt was never recorded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- h.d.Stop(ctx) }()
	select {
	case err := <-stopped:
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second, "Stop returns about 2 s after its context ended")
	case <-time.After(10 * time.Second):
		t.Fatal("Stop still waiting for the hanging Store 10 s after its context ended")
	}
}

// claimCounter is a memory store that counts Claims, and whose second
// Record first moves the clock past the lease again and waits for the
// dispatcher to claim the delivery once more.
type claimCounter struct {
	*store.Memory
	clock   *delivery.ManualClock
	lease   time.Duration
	claims  atomic.Int32
	records atomic.Int32
}

func (s *claimCounter) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	ds, err := s.Memory.Claim(ctx, now, limit, lease)
	if len(ds) > 0 {
		s.claims.Add(1)
	}
	return ds, err
}

func (s *claimCounter) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	if s.records.Add(1) == 2 {
		s.reclaim()
	}
	return s.Memory.Record(ctx, token, r)
}

// reclaim moves the clock past the current lease and waits until the
// dispatcher has claimed the delivery again.
func (s *claimCounter) reclaim() {
	n := s.claims.Load()
	s.clock.Advance(s.lease + time.Second)
	for deadline := time.Now().Add(10 * time.Second); s.claims.Load() == n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

// An attempt whose lease the clock overtook twice while it ran is recorded
// once, under the newest claim, and not sent again.
func TestAttemptOvertakenByTwoClaimsIsRecordedOnce(t *testing.T) {
	t.Parallel()
	const lease = 20 * time.Second
	release := make(chan struct{})
	var reqs atomic.Int32
	var st *claimCounter
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if reqs.Add(1) == 1 {
			<-release
		}
		w.WriteHeader(http.StatusInternalServerError)
	}, func(c *delivery.Config) {
		c.Lease, c.AttemptTimeout = lease, 5*time.Second
		st = &claimCounter{Memory: store.NewMemory(), clock: c.Clock.(*delivery.ManualClock), lease: lease}
		c.Store = st
	})
	h.st = st.Memory
	rec := h.deliver(h.srv.URL + "/hooks")
	require.Eventually(t, func() bool { return reqs.Load() == 1 }, 10*time.Second, time.Millisecond)
	st.reclaim() // the first claim overtaken while the request is out
	close(release)
	h.waitAttempts(rec.ID, 1)
	// The clock has moved past the attempt's retry (5 s after it), which
	// may go out now: every request sent must be an attempt recorded.
	settle()
	got, err := st.Get(context.Background(), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, int(reqs.Load()), got.AttemptCount, "every request sent is recorded as an attempt; none is dropped and sent again")
	assert.Equal(t, store.StatusPending, got.Status)
}

func TestNilPointersInConfigAreRefused(t *testing.T) {
	t.Parallel()
	signer := newSigner(t, newSecret(t))
	for field, cfg := range map[string]delivery.Config{
		"Store": {Signer: signer, Store: (*store.Memory)(nil)},
		"Clock": {Signer: signer, Clock: (*delivery.ManualClock)(nil)},
	} {
		_, err := delivery.New(cfg)
		require.ErrorIs(t, err, delivery.ErrInvalidConfig, field)
		assert.Contains(t, err.Error(), "Config."+field)
	}
	d, err := delivery.New(delivery.Config{Signer: signer})
	require.NoError(t, err)
	_, err = d.DeliverTx(context.Background(), (*store.Memory)(nil), "https://example.com/", callback(uuid.New()))
	assert.ErrorIs(t, err, delivery.ErrInvalidConfig)
}

// A clock at which no delivery can be stored and sent makes Deliver fail
// with ErrInvalidConfig, started or not, storing nothing, instead of failing
// in the Store with an untyped error (or, not started, storing a delivery
// that no Claim can lease): the zero time (the zero ManualClock), a time
// before 1970 (no signature carries it), and one too close to the end of
// year 9999 for a lease.
func TestDeliverRefusesAClockItCannotWorkWith(t *testing.T) {
	t.Parallel()
	for name, now := range map[string]time.Time{
		"zero":            {},
		"before 1970":     time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		"lease past 9999": time.Date(9999, 12, 31, 23, 59, 30, 0, time.UTC), // the default Lease is a minute
	} {
		for _, started := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/started=%v", name, started), func(t *testing.T) {
				t.Parallel()
				st := store.NewMemory()
				d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)), Store: st,
					Clock: delivery.NewManualClock(now), AllowPrivateNetworks: true})
				require.NoError(t, err)
				if started {
					require.NoError(t, d.Start(context.Background()))
					t.Cleanup(func() { d.Stop(context.Background()) })
				}
				cb := callback(uuid.New())
				_, err = d.Deliver(context.Background(), "https://example.com/", cb)
				require.ErrorIs(t, err, delivery.ErrInvalidConfig)
				assert.Contains(t, err.Error(), "NewManualClock")
				h, err := st.History(context.Background(), cb.BatchID)
				require.NoError(t, err)
				assert.Empty(t, h, "nothing stored")
			})
		}
	}
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)),
		Clock: delivery.NewManualClock(time.Date(9999, 12, 31, 23, 58, 0, 0, time.UTC))})
	require.NoError(t, err)
	_, err = d.Deliver(context.Background(), "https://example.com/", callback(uuid.New()))
	require.NoError(t, err, "a minute and more before the end is fine")
}

// A retry that would fall due past year 9999 (with its lease) cannot be
// stored: the delivery ends failed at that attempt, recorded, instead of a
// refused Record leaving the lease to expire and the attempt to be made
// again, unrecorded, with no end.
func TestRetryPastYear9999EndsTheDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
		func(c *delivery.Config) { c.RetryPolicy = delivery.ExponentialRetryPolicy(time.Hour, time.Hour) })
	h.clock.Set(time.Date(9999, 12, 31, 23, 30, 0, 0, time.UTC)) // the retry, an hour ±20% on, falls in year 10000
	got := h.waitTerminal(h.deliver(h.srv.URL + "/hooks").ID)
	assert.Equal(t, store.StatusFailed, got.Status)
	assert.Equal(t, 1, got.AttemptCount)
	assert.Equal(t, store.ReasonHTTPError, got.FailureReason)
	assert.Contains(t, got.FailureDetail, "not retried: the next attempt would fall after year 9999")
	settle()
	assert.Len(t, h.requests(), 1, "sent once")
}

// ExponentialRetryPolicy bounds initial and maxDelay to a year before its
// ±20% randomization, which would otherwise overflow to negative delays
// (read as "at once").
func TestExponentialPolicyBoundsHugeDelays(t *testing.T) {
	t.Parallel()
	const year = 365 * 24 * time.Hour
	for _, p := range []delivery.RetryPolicy{
		delivery.ExponentialRetryPolicy(time.Hour, math.MaxInt64),
		delivery.ExponentialRetryPolicy(math.MaxInt64, math.MaxInt64),
	} {
		b := p()
		for i := range 60 {
			d := b.NextBackOff()
			require.GreaterOrEqual(t, d, time.Duration(0), "delay %d", i+1)
			require.LessOrEqual(t, d, year+year/5, "delay %d", i+1)
		}
	}
}

// With the default policy, MaxAttempts alone ends a failing delivery: past
// DefaultSchedule, its last delay repeats. A Schedule without RepeatLast
// stops after its delays.
func TestDefaultPolicyRepeatsItsLastDelay(t *testing.T) {
	t.Parallel()
	b := delivery.DefaultRetryPolicy()
	last := delivery.DefaultSchedule[len(delivery.DefaultSchedule)-1]
	for i := range 20 {
		d := b.NextBackOff()
		require.NotEqual(t, backoff.Stop, d, "delay %d", i+1)
		if i >= len(delivery.DefaultSchedule) {
			assert.InDelta(t, float64(last), float64(d), float64(last)*delivery.DefaultJitter, "delay %d", i+1)
		}
	}
	s := &delivery.Schedule{Delays: []time.Duration{time.Second}}
	assert.Equal(t, time.Second, s.NextBackOff())
	assert.Equal(t, backoff.Stop, s.NextBackOff())
	assert.Equal(t, backoff.Stop, (&delivery.Schedule{RepeatLast: true}).NextBackOff(), "no delays: nothing to repeat")
}

// Delays never come out negative (-1 ns is backoff.Stop, which would end a
// delivery early), whatever Jitter, Rand or the delays say.
func TestRetryDelaysAreNeverNegative(t *testing.T) {
	t.Parallel()
	for name, b := range map[string]backoff.BackOff{
		"jitter above 1":       &delivery.Schedule{Delays: []time.Duration{time.Nanosecond, time.Second}, Jitter: 3, Rand: func() float64 { return 0 }},
		"negative delay":       &delivery.Schedule{Delays: []time.Duration{-5 * time.Second}},
		"rand out of range":    &delivery.Schedule{Delays: []time.Duration{time.Second}, Jitter: 0.5, Rand: func() float64 { return -7 }},
		"negative exponential": delivery.ExponentialRetryPolicy(-1, -1)(),
		"NaN jitter":           &delivery.Schedule{Delays: []time.Duration{time.Hour}, Jitter: math.NaN()},
		"NaN rand":             &delivery.Schedule{Delays: []time.Duration{time.Hour}, Jitter: 0.2, Rand: math.NaN},
		"overflowing jitter":   &delivery.Schedule{Delays: []time.Duration{math.MaxInt64 / 10 * 9}, Jitter: 0.2, Rand: func() float64 { return 0.99 }},
	} {
		d := b.NextBackOff()
		assert.GreaterOrEqual(t, d, time.Duration(0), "%s: first delay", name)
	}
}

// A refused URL is quoted with its control characters escaped, so that it
// cannot start a line of its own in a log.
func TestURLErrorEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	err := delivery.ValidateURL("https://example.com/\r\nlevel=ERROR msg=forged\x00", false)
	require.ErrorIs(t, err, delivery.ErrInvalidURL)
	assert.NotContains(t, err.Error(), "\n")
	assert.NotContains(t, err.Error(), "\r")
	assert.NotContains(t, err.Error(), "\x00")
	assert.Contains(t, err.Error(), `\r\nlevel=ERROR`)
	assert.True(t, strings.HasPrefix(err.Error(), `invalid callback URL "https://example.com/`), err.Error())
}

// A Stop whose context ends while a Deliver is inside InsertLeased returns;
// the Deliver then gives its delivery back itself (it is due again at once,
// not leased until the lease expires).
func TestDeliverGivesBackAfterATimedOutStop(t *testing.T) {
	for _, wait := range []time.Duration{0, 3 * time.Second} { // past Stop's 2 s grace, as an Insert waiting for a host's transaction may
		t.Run(wait.String(), func(t *testing.T) {
			t.Parallel()
			testGiveBackAfterATimedOutStop(t, wait)
		})
	}
}

func testGiveBackAfterATimedOutStop(t *testing.T, wait time.Duration) {
	st := newGate()
	d, id, delivered := deliverIntoGate(t, st, st)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, d.Stop(ctx), context.DeadlineExceeded)
	time.Sleep(wait)
	close(st.gate)
	require.NoError(t, <-delivered)
	got, err := st.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, uuid.Nil, got.LeaseToken, "given back, not left leased")
	assert.Equal(t, store.StatusPending, got.Status)
}

// hangingRelease is gatedInsertLeased whose Release waits for its context
// to end, as a Store that stopped answering.
type hangingRelease struct{ *gatedInsertLeased }

func (s hangingRelease) Release(ctx context.Context, _, _ uuid.UUID, _ time.Time) error {
	<-ctx.Done()
	return ctx.Err()
}

// The give-back of a Deliver still inserting when a Stop timed out is
// bounded too: with a Store that does not answer, the Deliver returns
// about 2 s after Stop instead of never.
func TestLateGiveBackIsBounded(t *testing.T) {
	t.Parallel()
	gate := newGate()
	st := hangingRelease{gate}
	d, _, delivered := deliverIntoGate(t, st, gate)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, d.Stop(ctx), context.DeadlineExceeded)
	close(st.gate)
	select {
	case <-delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("Deliver still blocked in its give-back 10 s after Stop")
	}
}

// slowRelease is gatedInsertLeased whose Release takes longer than Stop's
// grace, within its context.
type slowRelease struct{ *gatedInsertLeased }

func (s slowRelease) Release(ctx context.Context, id, token uuid.UUID, next time.Time) error {
	select {
	case <-time.After(2500 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Memory.Release(ctx, id, token, next)
}

// A graceful Stop (its context never ends) waits for a slow Store: the
// delivery a Deliver was inserting is given back, not left leased.
func TestGracefulStopWaitsForASlowRelease(t *testing.T) {
	t.Parallel()
	gate := newGate()
	st := slowRelease{gate}
	d, id, delivered := deliverIntoGate(t, st, gate)
	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	close(st.gate)
	require.NoError(t, <-stopped)
	require.NoError(t, <-delivered)
	got, err := st.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, uuid.Nil, got.LeaseToken, "a graceful Stop leaves nothing leased")
}

// newGate is a gatedInsertLeased on a fresh memory store.
func newGate() *gatedInsertLeased {
	return &gatedInsertLeased{Memory: store.NewMemory(), inserted: make(chan uuid.UUID, 1), gate: make(chan struct{})}
}

// deliverIntoGate starts a Deliverer on st, whose InsertLeased is gate's,
// and a Deliver that stops inside it; it returns the Deliverer, the id being
// inserted, and the channel of the Deliver's error.
func deliverIntoGate(t *testing.T, st store.Store, gate *gatedInsertLeased) (*delivery.Deliverer, uuid.UUID, <-chan error) {
	t.Helper()
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)), Store: st, AllowPrivateNetworks: true})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	delivered := make(chan error, 1)
	go func() {
		_, err := d.Deliver(context.Background(), "http://127.0.0.1:9/hook", callback(uuid.New()))
		delivered <- err
	}()
	return d, <-gate.inserted, delivered
}

// A Stop called while another is under way waits for that one to return
// (a caller may use Stop as a barrier, as two shutdown hooks do), or for
// its own context to end.
func TestConcurrentStopWaitsForTheFirst(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(block) })
	// Many workers: a probe below is handed to a worker (and stored
	// leased) until the first Stop begins, not because 2×Workers are busy.
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { <-block }, func(c *delivery.Config) { c.Workers = 256 })
	t.Cleanup(unblock) // runs before the harness's: its receiver must not hang
	rec := h.deliver(h.srv.URL + "/hooks")
	require.Eventually(t, func() bool { return len(h.requests()) == 1 }, 10*time.Second, time.Millisecond)
	first := make(chan error, 1)
	go func() { first <- h.d.Stop(context.Background()) }()
	// Once the first Stop is under way, a Deliver no longer hands its
	// delivery to a worker: it is stored without a lease.
	require.Eventually(t, func() bool {
		probe, err := h.d.Deliver(context.Background(), h.srv.URL+"/probe", callback(uuid.New()))
		if err != nil {
			return false
		}
		got, err := h.st.Get(context.Background(), probe.ID)
		return err == nil && got.LeaseToken == uuid.Nil
	}, 10*time.Second, time.Millisecond, "the first Stop never began")

	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, h.d.Stop(short), context.DeadlineExceeded, "a second Stop returned while an attempt was in flight")
	second := make(chan error, 1)
	go func() { second <- h.d.Stop(context.Background()) }()
	select {
	case err := <-second:
		t.Fatalf("a second Stop returned %v while an attempt was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	unblock()
	require.NoError(t, <-first)
	require.NoError(t, <-second)
	got, err := h.st.Get(context.Background(), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusSucceeded, got.Status, "the attempt was recorded, not aborted")

	// Stopped: Stop returns nil, whatever its context says.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for range 50 {
		require.NoError(t, h.d.Stop(done), "Stop of a stopped Deliverer with an ended context")
	}
}

// A nil context is refused with ErrInvalidArgument by every method that
// takes one, started or not, instead of a panic in the Store.
func TestNilContextIsRefused(t *testing.T) {
	t.Parallel()
	var nilCtx context.Context
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)), AllowPrivateNetworks: true})
	require.NoError(t, err)
	calls := map[string]func() error{
		"Deliver": func() error { _, err := d.Deliver(nilCtx, "https://example.com/", callback(uuid.New())); return err },
		"DeliverTx": func() error {
			_, err := d.DeliverTx(nilCtx, store.NewMemory(), "https://example.com/", callback(uuid.New()))
			return err
		},
		"Redeliver": func() error { _, err := d.Redeliver(nilCtx, uuid.New()); return err },
		"Get":       func() error { _, err := d.Get(nilCtx, uuid.New()); return err },
		"History":   func() error { _, err := d.History(nilCtx, uuid.New()); return err },
		"Start":     func() error { return d.Start(nilCtx) },
		"Stop":      func() error { return d.Stop(nilCtx) },
	}
	check := func(when string) {
		for name, call := range calls {
			assert.NotPanics(t, func() {
				assert.ErrorIs(t, call(), delivery.ErrInvalidArgument, "%s %s", name, when)
			}, "%s %s", name, when)
		}
	}
	check("before Start")
	require.NoError(t, d.Start(context.Background()))
	check("after Start")
	require.NoError(t, d.Stop(context.Background()))
}

// recordRefused is a memory store whose Record refuses every Result for its
// arguments, counting the calls.
type recordRefused struct {
	*store.Memory
	calls atomic.Int32
}

func (s *recordRefused) Record(context.Context, uuid.UUID, store.Result) error {
	s.calls.Add(1)
	return fmt.Errorf("record: a field this store cannot keep: %w", store.ErrInvalidArgument)
}

// A Record refused for its arguments is not tried again (no retry mends
// it): the lease is left to expire instead of the worker waiting through
// the store retries.
func TestRefusedRecordIsNotRetried(t *testing.T) {
	t.Parallel()
	st := &recordRefused{Memory: store.NewMemory()}
	errs := make(chan error, 10)
	h := newHarness(t, nil, func(c *delivery.Config) {
		c.Store = st
		c.Observer.Error = func(op string, err error) {
			select {
			case errs <- err:
			default:
			}
		}
	})
	h.deliver(h.srv.URL + "/hooks")
	select {
	case err := <-errs:
		assert.ErrorIs(t, err, store.ErrInvalidArgument)
	case <-time.After(10 * time.Second):
		t.Fatal("the refused Record was never reported")
	}
	time.Sleep(300 * time.Millisecond) // past the first two store retries (50 ms, 200 ms)
	assert.Equal(t, int32(1), st.calls.Load(), "Record tried again")
}

package delivery

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// Deliverer sends batch callbacks: Deliver freezes and stores one, workers
// started by Start claim due deliveries from the Store, sign and POST them,
// and record every attempt; failures are retried on the RetryPolicy until the
// delivery succeeds or fails for good. Redeliver, Get and History serve the
// host's own routes.
//
// Make one with New; the zero Deliverer is not usable (its methods return
// ErrInvalidConfig). All methods are safe for concurrent use. Deliver,
// Redeliver, Get and History work whether or not the Deliverer is started;
// only Start makes attempts. After Stop, Deliver and Redeliver still store
// the delivery, for another Deliverer on the same Store to send; with none
// (the memory store of a process that is shutting down, say), nothing will,
// so stop calling them before Stop.
type Deliverer struct {
	cfg    Config
	rt     http.RoundTripper // the default client's transport; nil with Config.HTTPClient
	signer atomic.Pointer[signing.Signer]
	wake   chan struct{} // capacity 1: "look at the Store again"

	mu      sync.Mutex
	state   int // 0 new, 1 started, 2 stopped
	stopCh  chan struct{}
	stopped chan struct{} // made by the Stop of a started Deliverer, closed when it returns
	runCtx  context.Context
	abort   context.CancelFunc // aborts attempts in flight
	// storeCtx is the context of Record and Release, which outlive an
	// abort (a lease must be recorded or released); Stop cancels it when
	// they have not returned stopGrace past its own context's end. Each
	// Release made after that end, or after Stop has returned (a Deliver
	// still inserting gives its delivery back), has stopGrace of its own
	// (see releaseCap).
	storeCtx    context.Context
	storeCancel context.CancelFunc
	releaseCap  atomic.Bool          // set once Stop's context has ended or Stop has returned
	done        chan struct{}        // closed when the dispatcher has returned
	jobs        chan *store.Delivery // claimed deliveries for the workers
	workers     sync.WaitGroup
	busy        atomic.Int64 // claimed and handed to a worker, not yet finished; not those in a host's queue (see admit)
	ahead       int64        // most deliveries busy at once: 2×Workers
	refill      int64        // claim only when at least this many are free: Workers/2
	hostQueue   int          // most deliveries waiting for one host's slots (see admit)

	records   chan recordJob // attempts for the recorders; nil when workers record
	recorders sync.WaitGroup

	lastURL atomic.Pointer[string] // the last callback URL that passed ValidateURL

	// open says the workers take jobs: started, jobs not closed. It is set
	// under sendMu's write lock; a send on jobs checks it under the read
	// lock, and reserve reads it without the lock.
	open   atomic.Bool
	sendMu sync.RWMutex

	// handoffs counts Deliver calls between reserve and the end of
	// enqueueLeased, which Stop waits for; handoffIdle, when set, is closed
	// when the count drops to zero. Both under handoffMu, under which
	// reserve also reads open.
	handoffMu   sync.Mutex
	handoffs    int
	handoffIdle chan struct{}

	dueMu sync.Mutex
	due   timeHeap // NextAttemptAt of retries this Deliverer scheduled

	flightMu  sync.Mutex
	flights   map[uuid.UUID]*store.Delivery // in work; value: a newer claim of it, or nil
	hosts     map[string]*hostState         // per destination host: slots taken, deliveries waiting
	claiming  bool                          // a Claim is on its way (see takeNewer)
	claims    uint64                        // Claims handed out so far
	claimDone sync.Cond                     // on flightMu: claiming became false
}

// claimed hands a claimed delivery to a worker, unless a worker of this
// Deliverer is still on it: its lease ran out during the attempt (a clock
// jump, a slow store) and it was claimed again. The newer claim then goes to
// that worker, which records its attempt under the new lease instead of a
// second worker sending the delivery again. It reports whether a worker slot
// is taken.
func (d *Deliverer) claimed(rec *store.Delivery) bool {
	d.flightMu.Lock()
	defer d.flightMu.Unlock()
	if _, busy := d.flights[rec.ID]; busy {
		d.flights[rec.ID] = rec
		return false
	}
	d.flights[rec.ID] = nil
	return true
}

// claim claims up to free due deliveries and hands them to the workers,
// saying meanwhile that a Claim is on its way (see takeNewer), and returns
// how many it claimed.
//
// Deliver may hand deliveries straight to the workers while the Claim is on
// its way (see reserve), so busy may reach 2×ahead: the jobs channel has
// that room (see Start).
func (d *Deliverer) claim(now time.Time, free int64) int {
	d.setClaiming(true)
	defer d.setClaiming(false)
	claimed, err := d.cfg.Store.Claim(d.runCtx, now, int(free), d.cfg.Lease)
	if err != nil && d.runCtx.Err() == nil {
		d.storeError("claim", err)
	}
	for _, rec := range claimed {
		if d.claimed(rec) {
			d.busy.Add(1)
			d.jobs <- rec // never blocks: see above
		}
	}
	return len(claimed)
}

// setClaiming says whether a Claim is on its way; see takeNewer.
func (d *Deliverer) setClaiming(on bool) {
	d.flightMu.Lock()
	d.claiming = on
	if !on {
		d.claims++
	}
	d.flightMu.Unlock()
	if !on {
		d.claimDone.Broadcast()
	}
}

// takeNewer returns and forgets a newer claim of the delivery, if any. A
// worker calls it when its lease was lost: the newer claim may be in a Claim
// that has leased the delivery in the Store and not yet returned, so it
// waits for a Claim on its way to be handed out first; for that one only,
// not for the next ones a busy dispatcher may start at once.
func (d *Deliverer) takeNewer(id uuid.UUID) *store.Delivery {
	d.flightMu.Lock()
	defer d.flightMu.Unlock()
	for gen := d.claims; d.flights[id] == nil && d.claiming && d.claims == gen; {
		d.claimDone.Wait()
	}
	newer := d.flights[id]
	if newer != nil {
		d.flights[id] = nil
	}
	return newer
}

// finished ends a worker's turn with a delivery: it returns a newer claim to
// work on next, or nil after forgetting the delivery.
func (d *Deliverer) finished(id uuid.UUID) *store.Delivery {
	d.flightMu.Lock()
	defer d.flightMu.Unlock()
	if newer := d.flights[id]; newer != nil {
		d.flights[id] = nil
		return newer
	}
	delete(d.flights, id)
	return nil
}

// hostState is one destination host's share of the workers.
type hostState struct {
	active  int               // attempts in flight (slots taken)
	waiting []*store.Delivery // claimed, waiting for a slot, oldest first
	avg     time.Duration     // moving average of the host's attempt times
	last    time.Time         // when an attempt of the host last ended, or the state was made
}

// backOff is how long a delivery that found the host's slots and queue full
// should stay away: about the time the host takes to work through its
// queue, judged by its recent attempt times and by how long none has ended
// (a hanging host), from 1 ms to PollInterval. The caller holds flightMu.
func (d *Deliverer) backOff(h *hostState) time.Duration {
	per := max(h.avg, time.Since(h.last))
	wait := per * time.Duration(len(h.waiting)/d.cfg.MaxPerHost+1)
	return min(max(wait, time.Millisecond), d.cfg.PollInterval)
}

// admission is what admit decided for a claimed delivery.
type admission int

const (
	run    admission = iota // a slot of the host is the caller's
	queued                  // waiting in the host's queue
	full                    // slots and queue full
)

// admit takes one of the host's MaxPerHost slots for rec, or queues rec
// behind the host's attempts, up to max(MaxPerHost, min(2×Workers −
// Workers/2 − MaxPerHost, 2×MaxPerHost)) deliveries per host. A queued
// delivery stops counting as busy (admit counts it out) until the worker
// holding the host's slot takes it (nextForHost counts it in again), so
// however many hosts hang, a worker left idle has work to claim: with at
// most Workers−1 attempts in flight and no delivery waiting for a worker,
// at most Workers−1 are busy. The queues are bounded all the same: only a
// host whose MaxPerHost slots are all taken has one, so at most
// Workers/MaxPerHost hosts do, and they hold at most 2×Workers deliveries
// together.
func (d *Deliverer) admit(host string, rec *store.Delivery) (admission, time.Duration) {
	d.flightMu.Lock()
	defer d.flightMu.Unlock()
	h := d.hosts[host]
	if h == nil {
		h = &hostState{last: time.Now()}
		d.hosts[host] = h
	}
	switch {
	case h.active < d.cfg.MaxPerHost:
		h.active++
		return run, 0
	case len(h.waiting) < d.hostQueue:
		h.waiting = append(h.waiting, rec)
		d.finishedOne() // not busy while it waits
		return queued, 0
	default:
		return full, d.backOff(h)
	}
}

// nextForHost records that an attempt of the host took took, then hands
// the caller the host's next waiting delivery, keeping the caller's slot, or
// frees the slot when none waits.
func (d *Deliverer) nextForHost(host string, took time.Duration) *store.Delivery {
	d.flightMu.Lock()
	defer d.flightMu.Unlock()
	h := d.hosts[host]
	h.avg += (took - h.avg) / 8
	h.last = time.Now()
	if len(h.waiting) > 0 {
		rec := h.waiting[0]
		h.waiting[0] = nil
		h.waiting = h.waiting[1:]
		d.busy.Add(1) // busy again, in the caller's attempt (see admit)
		return rec
	}
	if h.active--; h.active == 0 {
		delete(d.hosts, host)
	}
	return nil
}

// hostKey names a callback URL's destination for the per-host limit: the
// host and port as written, lower-cased.
//
// It runs once per attempt, so it slices the string rather than parse it:
// callback URLs passed ValidateURL (absolute http or https, no whitespace).
func hostKey(callbackURL string) string {
	_, rest, ok := strings.Cut(callbackURL, "://")
	if !ok {
		return strings.ToLower(callbackURL)
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:] // userinfo is not part of the host
	}
	return strings.ToLower(rest)
}

// finishedOne counts a delivery a worker is done with. The dispatcher claims
// in batches, so it is woken only when enough slots are free for one.
func (d *Deliverer) finishedOne() {
	if d.busy.Add(-1) == d.ahead-d.refill {
		d.poke()
	}
}

// maxDueHints bounds the retry times a Deliverer remembers to wake for;
// beyond it, retries are found by polling.
const maxDueHints = 10_000

// timeHeap is a min-heap of times.
type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// expectDue remembers that a delivery, just written to the Store, is due at
// t, so the dispatcher wakes then rather than at its next poll.
func (d *Deliverer) expectDue(t time.Time) {
	d.dueMu.Lock()
	defer d.dueMu.Unlock()
	// Due already: a Claim on its way may have looked before the write, and
	// sleepFor would then drop the hint as seen; a poke makes the
	// dispatcher look again.
	dueNow := !t.After(d.cfg.Clock.Now())
	// Also at a time equal to the earliest hint: the dispatcher may have
	// claimed at that very time (a clock that did not move) and be about to
	// drop the hint as seen.
	earliest := d.due.Len() == 0 || !t.After(d.due[0])
	if d.due.Len() < maxDueHints {
		heap.Push(&d.due, t)
	} else {
		earliest = false // not remembered: waking now would not help
	}
	if earliest || dueNow {
		d.poke() // the dispatcher may be asleep until a later time
	}
}

// sleepFor returns how long the dispatcher may sleep at now: until the
// earliest expected retry, at most PollInterval. Past hints are dropped: the
// Claim just made has seen them.
func (d *Deliverer) sleepFor(now time.Time) time.Duration {
	d.dueMu.Lock()
	defer d.dueMu.Unlock()
	for d.due.Len() > 0 && !d.due[0].After(now) {
		heap.Pop(&d.due)
	}
	wait := d.cfg.PollInterval
	if d.due.Len() > 0 {
		wait = min(wait, d.due[0].Sub(now))
	}
	return wait
}

// New returns a Deliverer for cfg, or an error matching ErrInvalidConfig that
// names the bad field.
func New(cfg Config) (*Deliverer, error) {
	ownClient := cfg.HTTPClient == nil
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Deliverer{
		cfg:     cfg,
		wake:    make(chan struct{}, 1),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
		flights: make(map[uuid.UUID]*store.Delivery),
		hosts:   make(map[string]*hostState),
		ahead:   2 * int64(cfg.Workers),
		refill:  max(1, int64(cfg.Workers)/2),
	}
	d.hostQueue = max(cfg.MaxPerHost, min(int(d.ahead-d.refill)-cfg.MaxPerHost, 2*cfg.MaxPerHost))
	d.claimDone.L = &d.flightMu
	if ownClient {
		// The default client follows no redirect and has no cookie jar or
		// timeout of its own, so its transport can be called directly,
		// sparing http.Client's per-request copy of the headers.
		d.rt = cfg.HTTPClient.Transport
	}
	d.signer.Store(cfg.Signer)
	return d, nil
}

// SetSigner replaces the Signer for every attempt from now on, for secret
// rotation: build the new one from a KeyRing holding the new primary and the
// old secret, so receivers can verify with either while they switch.
func (d *Deliverer) SetSigner(s *signing.Signer) error {
	if err := d.made(); err != nil {
		return err
	}
	if s == nil || s.Keys().Len() == 0 {
		return fmt.Errorf("delivery: SetSigner with a Signer not made by signing.NewSigner: %w", ErrInvalidConfig)
	}
	d.signer.Store(s)
	return nil
}

// Store returns the Store the Deliverer uses (nil for a nil Deliverer).
func (d *Deliverer) Store() store.Store {
	if d == nil {
		return nil
	}
	return d.cfg.Store
}

// Deliver validates the callback URL and the payload, freezes the payload into
// its canonical bytes, stores a pending automatic delivery due now, and wakes
// a worker. It returns the record as it was inserted (pending, due now, no
// attempts, no lease), whatever a worker has done with it since; the attempts
// happen in the background. Get or History show its current state.
//
// A batch has at most one automatic delivery: calling Deliver again for the
// same batch with the same URL and identical frozen bytes returns the existing
// record, as stored now, and sends nothing new (a retried host job is
// harmless); with different bytes or URL it returns ErrConflict.
//
// Errors: a *URLError (ErrInvalidURL) for a bad URL, a *payload.FieldError
// (payload.ErrInvalid) for a bad payload, ErrPayloadTooLarge, ErrConflict,
// ErrInvalidConfig for a Clock reading a time no delivery can be stored and
// sent at (the zero time, before 1970, or less than a Lease before year
// 10000), ErrInvalidArgument for a nil ctx, or the Store's error.
//
// When fewer than 2×Workers deliveries are claimed and not finished and the
// Store is a store.LeasedInserter (both of hookline's are), the delivery is
// inserted already leased to this Deliverer and handed to its workers
// directly, without a Claim.
func (d *Deliverer) Deliver(ctx context.Context, callbackURL string, p payload.Callback) (*store.Delivery, error) {
	return d.deliver(ctx, nil, callbackURL, p)
}

// DeliverTx is Deliver with the delivery inserted through ins instead of the
// Deliverer's Store: with the Postgres store, pass its Tx(tx) so the callback
// commits or rolls back together with the host's own change of the batch (the
// outbox pattern), and nothing is sent for a transaction that rolled back. ins
// must write to the same database as the Deliverer's Store. Workers find the
// delivery once the transaction commits (at once with LISTEN/NOTIFY, else at
// the next poll). A nil ins is refused with ErrInvalidConfig.
func (d *Deliverer) DeliverTx(ctx context.Context, ins store.Inserter, callbackURL string, p payload.Callback) (*store.Delivery, error) {
	if ins == nil || isNilPointer(ins) {
		return nil, fmt.Errorf("deliver batch %s: DeliverTx with a nil Inserter: %w", p.BatchID, ErrInvalidConfig)
	}
	return d.deliver(ctx, ins, callbackURL, p)
}

// deliver is Deliver (ins nil: the Deliverer's Store) and DeliverTx.
func (d *Deliverer) deliver(ctx context.Context, ins store.Inserter, callbackURL string, p payload.Callback) (*store.Delivery, error) {
	if err := d.ready(ctx, "deliver"); err != nil {
		return nil, err
	}
	if last := d.lastURL.Load(); last == nil || *last != callbackURL {
		if err := ValidateURL(callbackURL, d.cfg.AllowURLUserinfo); err != nil {
			return nil, err
		}
		d.lastURL.Store(&callbackURL)
	}
	body, err := payload.Freeze(p)
	if err != nil {
		return nil, err
	}
	if len(body) > d.cfg.MaxPayloadBytes {
		return nil, fmt.Errorf("deliver batch %s: frozen payload is %d bytes, over the %d-byte limit (Config.MaxPayloadBytes): %w",
			p.BatchID, len(body), d.cfg.MaxPayloadBytes, ErrPayloadTooLarge)
	}
	rec, err := d.enqueue(ctx, ins, callbackURL, p.BatchID, body, true)
	if errors.Is(err, store.ErrConflict) {
		// The same host job retried: hand back the delivery it made.
		if prev := d.automatic(ctx, p.BatchID); prev != nil && prev.CallbackURL == callbackURL && bytes.Equal(prev.Payload, body) {
			return prev, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("deliver batch %s: %w", p.BatchID, err)
	}
	return rec, nil
}

// automatic returns the batch's automatic delivery, if it has one.
func (d *Deliverer) automatic(ctx context.Context, batchID uuid.UUID) *store.Delivery {
	h, err := d.cfg.Store.History(ctx, batchID)
	if err != nil {
		return nil
	}
	for _, rec := range h {
		if rec.IsAutomatic {
			return rec
		}
	}
	return nil
}

// Redeliver starts a new, manual delivery of the batch's callback: the exact
// frozen bytes and URL of its latest delivery, a new id, IsAutomatic false,
// signed with the secrets active now. It returns the new record at once.
// ErrNotFound when the batch has no delivery; ErrConflict while one is still
// in flight.
func (d *Deliverer) Redeliver(ctx context.Context, batchID uuid.UUID) (*store.Delivery, error) {
	if err := d.ready(ctx, "redeliver"); err != nil {
		return nil, err
	}
	latest, err := d.cfg.Store.Latest(ctx, batchID)
	if err != nil {
		return nil, fmt.Errorf("redeliver batch %s: %w", batchID, err)
	}
	if latest.Status == store.StatusPending {
		return nil, fmt.Errorf("redeliver batch %s: delivery %s is still pending: %w", batchID, latest.ID, store.ErrConflict)
	}
	rec, err := d.enqueue(ctx, nil, latest.CallbackURL, batchID, latest.Payload, false)
	if err != nil {
		return nil, fmt.Errorf("redeliver batch %s: %w", batchID, err)
	}
	return rec, nil
}

// Get returns one delivery with its attempts, or ErrNotFound.
func (d *Deliverer) Get(ctx context.Context, id uuid.UUID) (*store.Delivery, error) {
	if err := d.ready(ctx, "get"); err != nil {
		return nil, err
	}
	return d.cfg.Store.Get(ctx, id)
}

// History returns the batch's deliveries, newest first, each with its
// attempts oldest first; empty when the batch has none.
func (d *Deliverer) History(ctx context.Context, batchID uuid.UUID) ([]*store.Delivery, error) {
	if err := d.ready(ctx, "history"); err != nil {
		return nil, err
	}
	return d.cfg.Store.History(ctx, batchID)
}

// checkClock refuses, with ErrInvalidConfig, a clock reading now at which no
// delivery could be stored and sent: the zero time (a ManualClock not set),
// a time before 1970 (signatures carry Unix time) or one too close to year
// MaxYear's end for a lease to be stored.
func checkClock(now time.Time, lease time.Duration) error {
	const hint = " (a ManualClock starts at the time given to NewManualClock; Set moves it)"
	switch {
	case now.IsZero():
		return fmt.Errorf("the Clock reads the zero time, which no Store keeps"+hint+": %w", ErrInvalidConfig)
	case now.Before(time.Unix(0, 0)):
		return fmt.Errorf("the Clock reads %s, before 1970, which signatures cannot carry"+hint+": %w",
			now.UTC().Format(time.RFC3339), ErrInvalidConfig)
	}
	if err := store.CheckTimes("deliver", now, lease); err != nil {
		return fmt.Errorf("the Clock reads %s, where no delivery can be leased (%v)"+hint+": %w",
			now.UTC().Format(time.RFC3339), err, ErrInvalidConfig)
	}
	return nil
}

// enqueue stores a new pending delivery through ins, or through the
// Deliverer's Store when ins is nil; then it may go straight to a worker.
func (d *Deliverer) enqueue(ctx context.Context, ins store.Inserter, url string, batchID uuid.UUID, body []byte, automatic bool) (*store.Delivery, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new delivery id: %w", err)
	}
	now := d.cfg.Clock.Now()
	if err := checkClock(now, d.cfg.Lease); err != nil {
		return nil, err
	}
	rec := &store.Delivery{
		ID:            id,
		BatchID:       batchID,
		CallbackURL:   url,
		Payload:       body,
		IsAutomatic:   automatic,
		Status:        store.StatusPending,
		MaxAttempts:   d.cfg.MaxAttempts,
		NextAttemptAt: now,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if ins == nil {
		if li, ok := d.cfg.Store.(store.LeasedInserter); ok && d.reserve() {
			return rec, d.enqueueLeased(ctx, li, rec)
		}
		ins = d.cfg.Store
	}
	if err := ins.Insert(ctx, rec); err != nil {
		return nil, err
	}
	d.poke()
	return rec, nil
}

// reserve takes a slot for a delivery to hand straight to a worker, if the
// workers run and fewer than 2×Workers deliveries are busy. The caller then
// calls enqueueLeased, which Stop waits for.
func (d *Deliverer) reserve() bool {
	d.handoffMu.Lock()
	defer d.handoffMu.Unlock()
	if !d.open.Load() || !d.takeOne() {
		return false
	}
	d.handoffs++
	return true
}

// takeOne counts one delivery in busy if fewer than ahead are.
func (d *Deliverer) takeOne() bool {
	for {
		b := d.busy.Load()
		if b >= d.ahead {
			return false
		}
		if d.busy.CompareAndSwap(b, b+1) {
			return true
		}
	}
}

// handoffDone counts out a hand-off that reserve counted in.
func (d *Deliverer) handoffDone() {
	d.handoffMu.Lock()
	defer d.handoffMu.Unlock()
	if d.handoffs--; d.handoffs == 0 && d.handoffIdle != nil {
		close(d.handoffIdle)
		d.handoffIdle = nil
	}
}

// waitHandoffs waits until no Deliver is between reserve and the end of its
// enqueueLeased (each has then handed its delivery to a worker, or given it
// back), or until ctx (Stop's) ends. The workers no longer take jobs (open is
// false), so no hand-off starts meanwhile.
func (d *Deliverer) waitHandoffs(ctx context.Context) {
	d.handoffMu.Lock()
	if d.handoffs == 0 {
		d.handoffMu.Unlock()
		return
	}
	if d.handoffIdle == nil {
		d.handoffIdle = make(chan struct{})
	}
	idle := d.handoffIdle
	d.handoffMu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// enqueueLeased inserts rec leased to this Deliverer and hands it to a
// worker, in the slot reserve took. The worker gets its own copy: the
// caller may do as it likes with rec.
//
// The delivery is in flight (see claimed) from before it is inserted: if its
// lease runs out before a worker has it (a slow insert, a clock jump), a
// claim of it by this Deliverer's dispatcher is then a newer claim for the
// same worker, not a second delivery to send.
func (d *Deliverer) enqueueLeased(ctx context.Context, li store.LeasedInserter, rec *store.Delivery) error {
	defer d.handoffDone()
	job := *rec
	job.Payload = bytes.Clone(rec.Payload)
	job.LeaseToken = uuid.New()
	job.LeaseExpiresAt = rec.NextAttemptAt.Add(d.cfg.Lease)
	d.claimed(&job) // a new id, so always a worker slot
	if err := li.InsertLeased(ctx, &job); err != nil {
		// Nothing was inserted, unless the store could not tell: then the
		// dispatcher may have claimed it meanwhile. Give any claim back.
		if newer := d.finished(job.ID); newer != nil {
			d.releaseChain(newer, d.cfg.Clock.Now())
		}
		d.finishedOne()
		return err
	}
	job.NextAttemptAt = job.LeaseExpiresAt // as stored
	d.sendMu.RLock()
	open := d.open.Load()
	if open {
		d.jobs <- &job // never blocks: see Start
	}
	d.sendMu.RUnlock()
	if !open { // stopped meanwhile: give it back, due now
		d.releaseChain(&job, d.cfg.Clock.Now())
		d.finishedOne()
	}
	return nil
}

// do sends one request through the default transport, or the host's client.
func (d *Deliverer) do(req *http.Request) (*http.Response, error) {
	if d.rt != nil {
		return d.rt.RoundTrip(req)
	}
	return d.cfg.HTTPClient.Do(req)
}

// stopping reports whether Stop has been called or Start's context ended.
func (d *Deliverer) stopping() bool {
	select {
	case <-d.stopCh:
		return true
	case <-d.runCtx.Done():
		return true
	default:
		return false
	}
}

// poke wakes the dispatcher without blocking.
func (d *Deliverer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start begins claiming and sending due deliveries in the background and
// returns at once. Cancelling ctx stops the Deliverer hard (attempts in
// flight are aborted and their leases released); Stop stops it gracefully.
// A Deliverer starts once: a second Start, or a Start after Stop, returns
// ErrStopped.
func (d *Deliverer) Start(ctx context.Context) error {
	if err := d.ready(ctx, "start"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != 0 {
		return ErrStopped
	}
	d.state = 1
	d.runCtx, d.abort = context.WithCancel(ctx)
	d.storeCtx, d.storeCancel = context.WithCancel(context.WithoutCancel(d.runCtx))
	var notified <-chan struct{}
	if n, ok := d.cfg.Store.(store.Notifier); ok {
		notified = n.Notify(d.runCtx)
	}
	// Every delivery on jobs is counted in busy. A Claim is sized for
	// what is free when it starts, and Deliver's hand-offs and recorders
	// count in only while fewer than ahead are busy (takeOne), so busy
	// stays within twice ahead, which never blocks a send.
	d.jobs = make(chan *store.Delivery, 2*d.ahead)
	d.sendMu.Lock()
	d.open.Store(true)
	d.sendMu.Unlock()
	// A Store other than the memory store commits each Record, which takes
	// a round trip and a durable commit. Recorders do that, so that a
	// worker starts its next attempt at once, and concurrent Records make
	// larger groups (the Postgres store commits them together). There are
	// 2×Workers of them, taking attempts without a buffer: a Record waits
	// for a commit that may take longer than an attempt, and with as many
	// recorders as workers the workers ended up waiting for a free
	// recorder (measured: 2×Workers recorders deliver about 10% more on
	// PostgreSQL, at 16 and at 64 workers). So at most 3×Workers attempts
	// are made and not yet recorded: 2×Workers with the recorders and one
	// per worker waiting for a free recorder (still counted as busy). The
	// memory store records in a moment:
	// its workers record themselves.
	if _, inMemory := d.cfg.Store.(*store.Memory); !inMemory {
		d.records = make(chan recordJob)
		for range 2 * d.cfg.Workers {
			d.recorders.Go(d.recordLoop)
		}
	}
	// A fixed pool: workers keep their grown stacks and buffers between
	// attempts.
	for range d.cfg.Workers {
		d.workers.Go(func() {
			var w worker
			defer w.close()
			for rec := range d.jobs {
				d.work(&w, rec)
			}
		})
	}
	if d.records != nil {
		go func() {
			d.workers.Wait()
			close(d.records) // the recorders finish what the workers sent
		}()
	}
	go d.dispatch(notified)
	return nil
}

// stopGrace is how long Stop, once its context has ended, waits for the
// Store calls that release the leases of aborted attempts or record
// finished ones, before it cancels them.
const stopGrace = 2 * time.Second

// Stop stops claiming new deliveries and waits for the attempts in flight to
// finish and be recorded, and for Deliver calls that are handing their new
// delivery straight to a worker (which then give it back, due at once). If
// ctx ends first, it aborts the attempts, releases their leases (so they are
// due again at once, for this or another process) and returns ctx's error.
// Either way no delivery is left leased by this Deliverer, except: one whose
// Record or Release fails once ctx has ended (it is not retried; its lease
// expires), or has not returned 2 seconds after (Stop then cancels it, so
// that a Store that stopped answering cannot hold Stop); one that a Claim
// cut off by ctx had leased; and one a Deliver
// was still inserting, which that Deliver gives back itself when its insert
// returns, after Stop has returned (a Release given 2 seconds; past them the
// lease expires). An Observer hook that is running is
// waited for even then (see Observer). Stop on a Deliverer never started, or
// already stopped, returns nil; while another Stop is under way it waits for
// that one to return (nil), or for ctx to end (ctx's error; the other Stop
// goes on); on a Deliverer not made by New (nil included), an error matching
// ErrInvalidConfig.
func (d *Deliverer) Stop(ctx context.Context) error {
	if err := d.ready(ctx, "stop"); err != nil {
		return err
	}
	d.mu.Lock()
	if d.state != 1 {
		d.state = 2
		stopped := d.stopped
		d.mu.Unlock()
		if stopped == nil { // never started
			return nil
		}
		select {
		case <-stopped: // already stopped, whatever ctx says
			return nil
		default:
		}
		select {
		case <-stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.state = 2
	d.stopped = make(chan struct{})
	defer close(d.stopped)
	close(d.stopCh)
	d.mu.Unlock()

	// The dispatcher closes jobs when it returns; workers then finish what
	// was claimed. It may be waiting on a Claim that does not return (a
	// database that stopped answering): ctx's end aborts that too.
	var err error
	select {
	case <-d.done:
	case <-ctx.Done():
		err = ctx.Err()
		d.abort()
		<-d.done
	}
	finished := make(chan struct{})
	go func() { d.waitHandoffs(ctx); d.workers.Wait(); d.recorders.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		d.releaseCap.Store(true)
		d.abort()
		select {
		case <-finished:
		case <-time.After(stopGrace):
			// A Store that does not answer: its calls are given up, and
			// their leases expire.
			d.storeCancel()
			<-finished
		}
		err = ctx.Err()
	}
	d.abort()
	d.releaseCap.Store(true)
	if tr, ok := d.rt.(interface{ CloseIdleConnections() }); ok {
		tr.CloseIdleConnections() // no keep-alive goroutine outlives the Deliverer
	}
	return err
}

// dispatch claims due deliveries for the workers, and sleeps until Deliver,
// finished attempts or the Store's notification wakes it, a retry it
// scheduled comes due, or PollInterval passes.
//
// It claims ahead: up to 2×Workers deliveries are claimed and not finished
// at once (briefly up to 4×Workers while a Claim and Deliver's hand-offs
// overlap), Workers of them in attempts and the rest waiting for the next
// free worker, and it claims only when at least Workers/2 are missing. A claim
// thus serves several deliveries (one Store round trip, one wake-up), and
// workers find the next delivery waiting when they finish one.
func (d *Deliverer) dispatch(notified <-chan struct{}) {
	defer close(d.done)
	defer func() {
		d.sendMu.Lock()
		d.open.Store(false)
		close(d.jobs)
		d.sendMu.Unlock()
	}()
	for {
		select {
		case <-d.stopCh:
			return
		case <-d.runCtx.Done():
			return
		default:
		}
		now := d.cfg.Clock.Now()
		if free := d.ahead - d.busy.Load(); free >= d.refill {
			if n := d.claim(now, free); n == int(free) {
				// More may be due. Workers wake the dispatcher only as
				// busy falls through ahead-refill, which it may never
				// have risen above, so look again now.
				continue
			}
		}
		// Sleep until an absolute time: the clock may have moved since now
		// was read (a ManualClock set by a test, a wall clock jump), and a
		// retry due by then must not wait for a further interval.
		wake := now.Add(d.sleepFor(now))
		t := d.timerUntil(wake)
		select {
		case <-d.wake:
		case <-notified: // nil (never ready) unless the Store notifies
		case <-t.C():
		case <-d.stopCh:
		case <-d.runCtx.Done():
		}
		t.Stop()
	}
}

// made returns ErrInvalidConfig for a Deliverer not made by New.
func (d *Deliverer) made() error {
	if d == nil || d.cfg.Store == nil {
		return fmt.Errorf("delivery: Deliverer not made by New: %w", ErrInvalidConfig)
	}
	return nil
}

// ready is made, and refuses a nil ctx with ErrInvalidArgument.
func (d *Deliverer) ready(ctx context.Context, op string) error {
	if err := d.made(); err != nil {
		return err
	}
	if ctx == nil {
		return fmt.Errorf("delivery: %s: nil Context: %w", op, ErrInvalidArgument)
	}
	return nil
}

// timerUntil arms a timer of the Deliverer's clock that fires at wake.
func (d *Deliverer) timerUntil(wake time.Time) Timer {
	if c, ok := d.cfg.Clock.(timerAt); ok {
		return c.newTimerAt(wake)
	}
	return d.cfg.Clock.NewTimer(wake.Sub(d.cfg.Clock.Now()))
}

func (d *Deliverer) storeError(op string, err error) {
	d.cfg.Logger.Error("hookline: store call failed", "op", op, "error", err)
	if f := d.cfg.Observer.Error; f != nil {
		f(op, err)
	}
}

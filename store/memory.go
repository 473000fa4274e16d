package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
)

var (
	_ Store          = (*Memory)(nil)
	_ LeasedInserter = (*Memory)(nil)
	_ OneClaimer     = (*Memory)(nil)
)

// Memory is the in-memory Store, the embedded default: one process, no
// persistence. It keeps every delivery and attempt for its own lifetime
// (at most 2^31-1 deliveries).
//
// The zero value is an empty store ready to use; NewMemory returns the same.
// A Memory must not be copied after first use. All methods are safe for
// concurrent use: each one runs atomically under a single mutex, and
// deliveries are copied in and out, so the store never shares memory with
// its callers.
//
// Claim does not scan: pending deliveries are kept in a heap ordered by
// NextAttemptAt (ties broken by delivery id, so in creation order for UUIDv7
// ids), and claiming k of n pending deliveries costs O(k log n). History
// reads only the batch's own deliveries. A pending delivery costs about 450
// bytes beyond its payload and callback URL, in structures that hold few
// pointers, so a large store adds little garbage-collection work.
type Memory struct {
	mu sync.Mutex
	// entries holds the deliveries in chunks of at most memChunk, so that
	// a delivery's index never changes and growing never copies them all.
	// The indexes below refer to deliveries by that index, not by pointer,
	// which keeps them free of pointers for the garbage collector to trace.
	entries [][]memEntry
	n       int32
	byID    map[uuid.UUID]int32 // delivery id to index
	byBatch map[uuid.UUID]int32 // batch id to the index of its newest delivery
	due     []memHeapItem       // every pending delivery, leased or not, as a 4-ary min-heap
}

// memChunk is the number of deliveries in one chunk of Memory.entries.
const memChunk = 256

// memEntry is one stored delivery. Attempts are kept inline in d.Attempts,
// and a batch's deliveries form a list from newest to oldest through older.
type memEntry struct {
	d       Delivery
	older   int32 // index of the batch's next older delivery, -1 for none
	heapIdx int32 // position in Memory.due, -1 once terminal
}

// memHeapItem is a heap slot: the delivery's index, and its NextAttemptAt as
// a key that compares without reading the delivery.
type memHeapItem struct {
	at  int64 // timeKey(NextAttemptAt)
	idx int32
}

// NewMemory returns an empty in-memory Store. It is safe for concurrent use.
func NewMemory() *Memory {
	return &Memory{}
}

func (m *Memory) init() {
	if m.byID == nil {
		m.byID = make(map[uuid.UUID]int32)
		m.byBatch = make(map[uuid.UUID]int32)
	}
}

// entry returns the delivery at index i. The pointer is valid until the next
// add.
func (m *Memory) entry(i int32) *memEntry {
	return &m.entries[i/memChunk][i%memChunk]
}

// add stores e and returns its index. The first chunk grows by doubling up
// to memChunk entries, so a small store stays small; later chunks are
// allocated whole.
func (m *Memory) add(e memEntry) (int32, error) {
	if m.n == math.MaxInt32 {
		return 0, errors.New("store: the in-memory store is full")
	}
	i := m.n
	if i%memChunk == 0 {
		m.entries = append(m.entries, nil)
	}
	last := &m.entries[len(m.entries)-1]
	if len(*last) == cap(*last) {
		size := memChunk // later chunks are made whole: growing copies
		if len(m.entries) == 1 {
			size = min(max(2*cap(*last), 8), memChunk)
		}
		grown := make([]memEntry, len(*last), size)
		copy(grown, *last)
		*last = grown
	}
	*last = append(*last, e)
	m.n++
	return i, nil
}

// Insert adds a new pending delivery, copying d (see Store.Insert). Besides
// ErrConflict it returns a descriptive error, inserting nothing, when d is
// not a valid new delivery (see CheckNew) or its ID is already stored. The
// lease fields of d are ignored. Insert is safe for concurrent use.
func (m *Memory) Insert(ctx context.Context, d *Delivery) error {
	return m.insert(ctx, d, false)
}

// InsertLeased adds a new pending delivery already leased with d.LeaseToken
// until d.LeaseExpiresAt, copying d (see LeasedInserter). It refuses what
// Insert refuses, and a nil LeaseToken or a LeaseExpiresAt not after
// NextAttemptAt. It is safe for concurrent use.
func (m *Memory) InsertLeased(ctx context.Context, d *Delivery) error {
	return m.insert(ctx, d, true)
}

func (m *Memory) insert(ctx context.Context, d *Delivery, leased bool) error {
	if err := CheckContext(ctx, "insert delivery"); err != nil {
		return err
	}
	check := CheckNew
	if leased {
		check = CheckLeased
	}
	if err := check(d); err != nil {
		return err
	}
	e := memEntry{d: *d, older: -1}
	e.d.Payload = bytes.Clone(d.Payload)
	e.d.Attempts = nil
	if !leased {
		e.d.LeaseToken = uuid.Nil
		e.d.LeaseExpiresAt = time.Time{}
	} else {
		e.d.LeaseExpiresAt = e.d.LeaseExpiresAt.Round(0)
		e.d.NextAttemptAt = e.d.LeaseExpiresAt
	}
	stripMonotonic(&e.d)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.byID[d.ID]; ok {
		return fmt.Errorf("store: insert delivery %s: a delivery with this id already exists", d.ID)
	}
	if i, ok := m.byBatch[d.BatchID]; ok {
		for ; i >= 0; i = m.entry(i).older {
			o := &m.entry(i).d
			if o.Status == StatusPending {
				return fmt.Errorf("insert delivery %s: batch %s has pending delivery %s: %w", d.ID, d.BatchID, o.ID, ErrConflict)
			}
			if d.IsAutomatic && o.IsAutomatic {
				return fmt.Errorf("insert delivery %s: batch %s already has automatic delivery %s: %w", d.ID, d.BatchID, o.ID, ErrConflict)
			}
		}
	}
	i, err := m.add(e)
	if err != nil {
		return err
	}
	m.byID[d.ID] = i
	m.linkBatch(i)
	m.push(i)
	return nil
}

// linkBatch puts delivery i into its batch's list, which runs newest first
// (CreatedAt descending, then ID descending). A new delivery is usually the
// newest, so this is O(1) in practice.
func (m *Memory) linkBatch(i int32) {
	e := m.entry(i)
	head, ok := m.byBatch[e.d.BatchID]
	if !ok || m.newer(i, head) {
		if ok {
			e.older = head
		}
		m.byBatch[e.d.BatchID] = i
		return
	}
	p := head
	for o := m.entry(p).older; o >= 0 && !m.newer(i, o); o = m.entry(p).older {
		p = o
	}
	e.older = m.entry(p).older
	m.entry(p).older = i
}

// newer reports whether delivery i sorts before delivery j in History:
// created later, or at the same time with a greater id.
func (m *Memory) newer(i, j int32) bool {
	a, b := &m.entry(i).d, &m.entry(j).d
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c > 0
	}
	return bytes.Compare(a.ID[:], b.ID[:]) > 0
}

// Claim leases up to limit due deliveries, earliest NextAttemptAt first and,
// at equal times, lowest id first (see Store.Claim). It returns an error when
// limit is not positive or lease is not a positive duration. Claim is safe
// for concurrent use; concurrent callers never receive the same delivery
// under a valid lease.
func (m *Memory) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*Delivery, error) {
	if err := CheckContext(ctx, "claim"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("store: claim: limit is %d, want at least 1: %w", limit, ErrInvalidArgument)
	}
	if lease <= 0 {
		return nil, fmt.Errorf("store: claim: lease is %v, want a positive duration: %w", lease, ErrInvalidArgument)
	}
	if err := CheckTimes("claim", now, lease); err != nil {
		return nil, err
	}
	now = now.Round(0)
	expires := now.Add(lease)
	nowKey, expiresKey := timeKey(now), timeKey(expires)

	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Delivery, 0, min(limit, len(m.due)))
	for len(out) < limit && len(m.due) > 0 {
		top := m.due[0]
		e := m.entry(top.idx)
		if top.at > nowKey || (top.at == nowKey && e.d.NextAttemptAt.After(now)) {
			break
		}
		e.d.LeaseToken = uuid.New()
		e.d.LeaseExpiresAt = expires
		e.d.NextAttemptAt = expires
		out = append(out, cloneWithoutAttempts(&e.d))
		// The new key (now + lease) is after now, so the root sinks below
		// every delivery still due and the loop cannot see it again.
		m.due[0].at = expiresKey
		m.down(0)
	}
	return out, nil
}

// ClaimOne leases delivery id when it is pending and due at now (see
// OneClaimer). It is safe for concurrent use with Claim: the two never
// lease one delivery twice.
func (m *Memory) ClaimOne(ctx context.Context, id uuid.UUID, now time.Time, lease time.Duration) (*Delivery, error) {
	if err := CheckContext(ctx, "claim delivery"); err != nil {
		return nil, err
	}
	if lease <= 0 {
		return nil, fmt.Errorf("store: claim delivery %s: lease is %v, want a positive duration: %w", id, lease, ErrInvalidArgument)
	}
	if err := CheckTimes("claim delivery "+id.String(), now, lease); err != nil {
		return nil, err
	}
	now = now.Round(0)
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.byID[id]
	if !ok {
		return nil, nil
	}
	e := m.entry(i)
	if e.d.Status != StatusPending || e.d.NextAttemptAt.After(now) {
		return nil, nil
	}
	expires := now.Add(lease)
	e.d.LeaseToken = uuid.New()
	e.d.LeaseExpiresAt = expires
	e.d.NextAttemptAt = expires
	m.rekey(int(e.heapIdx), expires)
	return cloneWithoutAttempts(&e.d), nil
}

func cloneWithoutAttempts(d *Delivery) *Delivery {
	attempts := d.Attempts
	d.Attempts = nil
	c := d.Clone()
	d.Attempts = attempts
	return c
}

// Record stores an attempt and the delivery's new state while leaseToken is
// its current lease (see Store.Record). The lease is fenced by token alone:
// an expired lease still records until another Claim replaces it. Besides
// ErrNotFound and ErrLeaseLost it returns a descriptive error, changing
// nothing, when r is inconsistent: an Attempt.DeliveryID other than
// r.DeliveryID, an AttemptNumber other than AttemptCount+1, an unknown
// status, or times that do not fit the status (a pending result needs
// NextAttemptAt and no CompletedAt; a terminal one needs CompletedAt and no
// NextAttemptAt). Record is safe for concurrent use.
func (m *Memory) Record(ctx context.Context, leaseToken uuid.UUID, r Result) error {
	if err := CheckContext(ctx, "record attempt"); err != nil {
		return err
	}
	if err := CheckResult(&r); err != nil { // before the lease, as a database store checks it before its round trip
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.leased(r.DeliveryID, leaseToken, "record attempt")
	if err != nil {
		return err
	}
	if r.Attempt.AttemptNumber != e.d.AttemptCount+1 {
		return fmt.Errorf("store: record attempt on delivery %s: Attempt.AttemptNumber is %d, want %d (AttemptCount+1): %w", r.DeliveryID, r.Attempt.AttemptNumber, e.d.AttemptCount+1, ErrInvalidArgument)
	}
	a := r.Attempt
	a.CreatedAt = a.CreatedAt.Round(0)
	e.d.Attempts = append(e.d.Attempts, a)
	e.d.AttemptCount = a.AttemptNumber
	e.d.Status = r.Status
	e.d.FailureReason = r.FailureReason
	e.d.FailureDetail = r.FailureDetail
	e.d.SigningSecretID = r.SigningSecretID
	e.d.NextAttemptAt = r.NextAttemptAt.Round(0)
	e.d.UpdatedAt = r.UpdatedAt.Round(0)
	e.d.CompletedAt = r.CompletedAt.Round(0)
	e.d.LeaseToken = uuid.Nil
	e.d.LeaseExpiresAt = time.Time{}
	if r.Status.Terminal() {
		m.remove(int(e.heapIdx))
	} else {
		m.rekey(int(e.heapIdx), e.d.NextAttemptAt)
	}
	return nil
}

// Release gives a leased delivery back, due again at next, without recording
// an attempt (see Store.Release). Like Record it is fenced by the token
// alone. It returns a descriptive error, changing nothing, when next is
// zero. Release is safe for concurrent use.
func (m *Memory) Release(ctx context.Context, id, leaseToken uuid.UUID, next time.Time) error {
	if err := CheckContext(ctx, "release"); err != nil {
		return err
	}
	if next.IsZero() {
		return fmt.Errorf("store: release delivery %s: next is zero; pass when it is due again: %w", id, ErrInvalidArgument)
	}
	if err := CheckTimes("release delivery "+id.String(), next, 0); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.leased(id, leaseToken, "release")
	if err != nil {
		return err
	}
	e.d.NextAttemptAt = next.Round(0)
	e.d.LeaseToken = uuid.Nil
	e.d.LeaseExpiresAt = time.Time{}
	m.rekey(int(e.heapIdx), e.d.NextAttemptAt)
	return nil
}

// leased returns delivery id when token is its current lease. The caller
// holds m.mu.
func (m *Memory) leased(id, token uuid.UUID, verb string) (*memEntry, error) {
	i, ok := m.byID[id]
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", verb, id, ErrNotFound)
	}
	e := m.entry(i)
	if token == uuid.Nil || token != e.d.LeaseToken {
		return nil, fmt.Errorf("%s %s: %w", verb, id, ErrLeaseLost)
	}
	return e, nil
}

// Get returns a copy of one delivery with its attempts, or ErrNotFound. It
// is safe for concurrent use.
func (m *Memory) Get(ctx context.Context, id uuid.UUID) (*Delivery, error) {
	if err := CheckContext(ctx, "get delivery"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.byID[id]
	if !ok {
		return nil, fmt.Errorf("get delivery %s: %w", id, ErrNotFound)
	}
	return m.entry(i).d.Clone(), nil
}

// Latest returns a copy of the batch's newest delivery (latest CreatedAt,
// then greatest id) with its attempts, or ErrNotFound. It is safe for
// concurrent use.
func (m *Memory) Latest(ctx context.Context, batchID uuid.UUID) (*Delivery, error) {
	if err := CheckContext(ctx, "latest delivery"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.byBatch[batchID]
	if !ok {
		return nil, fmt.Errorf("latest delivery of batch %s: %w", batchID, ErrNotFound)
	}
	return m.entry(i).d.Clone(), nil
}

// History returns copies of every delivery of the batch, newest first
// (CreatedAt descending, then id descending), each with its attempts oldest
// first. It reads only the batch's own deliveries and is safe for concurrent
// use.
func (m *Memory) History(ctx context.Context, batchID uuid.UUID) ([]*Delivery, error) {
	if err := CheckContext(ctx, "history"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	head, ok := m.byBatch[batchID]
	if !ok {
		return []*Delivery{}, nil
	}
	var out []*Delivery
	for i := head; i >= 0; i = m.entry(i).older {
		out = append(out, m.entry(i).d.Clone())
	}
	return out, nil
}

// stripMonotonic drops monotonic clock readings so that every comparison
// inside the store uses wall time, as a database would.
func stripMonotonic(d *Delivery) {
	d.NextAttemptAt = d.NextAttemptAt.Round(0)
	d.CreatedAt = d.CreatedAt.Round(0)
	d.UpdatedAt = d.UpdatedAt.Round(0)
	d.CompletedAt = d.CompletedAt.Round(0)
}

// Times within int64 nanoseconds of the Unix epoch (years 1678 to 2262) key
// the heap exactly; times beyond are clamped, and equal keys fall back to
// comparing the times themselves.
var (
	minKeyTime = time.Unix(0, math.MinInt64)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

func timeKey(t time.Time) int64 {
	switch {
	case t.Before(minKeyTime):
		return math.MinInt64
	case t.After(maxKeyTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// The heap: Memory.due is a 4-ary min-heap of pending deliveries ordered by
// NextAttemptAt, then id. Sifting compares the inline keys and reads a
// delivery only on a tie; each delivery records its own position (heapIdx)
// for O(log n) rekey and remove.

const memHeapArity = 4

func (m *Memory) less(i, j int) bool {
	a, b := m.due[i], m.due[j]
	if a.at != b.at {
		return a.at < b.at
	}
	da, db := &m.entry(a.idx).d, &m.entry(b.idx).d
	if c := da.NextAttemptAt.Compare(db.NextAttemptAt); c != 0 {
		return c < 0
	}
	return bytes.Compare(da.ID[:], db.ID[:]) < 0
}

func (m *Memory) swap(i, j int) {
	h := m.due
	h[i], h[j] = h[j], h[i]
	m.entry(h[i].idx).heapIdx = int32(i)
	m.entry(h[j].idx).heapIdx = int32(j)
}

// push adds delivery i to the heap.
func (m *Memory) push(i int32) {
	e := m.entry(i)
	e.heapIdx = int32(len(m.due))
	m.due = append(m.due, memHeapItem{at: timeKey(e.d.NextAttemptAt), idx: i})
	m.up(len(m.due) - 1)
}

// remove takes the item at heap position p out of the heap.
func (m *Memory) remove(p int) {
	last := len(m.due) - 1
	e := m.entry(m.due[p].idx)
	if p != last {
		m.swap(p, last)
	}
	m.due = m.due[:last]
	e.heapIdx = -1
	if p < last {
		m.fix(p)
	}
}

// rekey sets the key at heap position p to t and restores the order.
func (m *Memory) rekey(p int, t time.Time) {
	m.due[p].at = timeKey(t)
	m.fix(p)
}

func (m *Memory) fix(p int) {
	if !m.down(p) {
		m.up(p)
	}
}

func (m *Memory) up(p int) {
	for p > 0 {
		parent := (p - 1) / memHeapArity
		if !m.less(p, parent) {
			return
		}
		m.swap(p, parent)
		p = parent
	}
}

// down sinks the item at p and reports whether it moved.
func (m *Memory) down(p int) bool {
	start := p
	n := len(m.due)
	for {
		first := memHeapArity*p + 1
		if first >= n || first < 0 {
			break
		}
		c := first
		for k := first + 1; k < first+memHeapArity && k < n; k++ {
			if m.less(k, c) {
				c = k
			}
		}
		if !m.less(c, p) {
			break
		}
		m.swap(p, c)
		p = c
	}
	return p > start
}

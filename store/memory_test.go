package store_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

func TestMemoryZeroValueIsReady(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return new(store.Memory) })
}

var base = time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)

func TestMemoryRejectsInvalidInput(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory()
	valid := storetest.NewDelivery(uuid.New(), base)
	require.NoError(t, m.Insert(ctx, valid))

	inserts := map[string]func(d *store.Delivery){
		"nil ID":                 func(d *store.Delivery) { d.ID = uuid.Nil },
		"nil BatchID":            func(d *store.Delivery) { d.BatchID = uuid.Nil },
		"status succeeded":       func(d *store.Delivery) { d.Status = store.StatusSucceeded },
		"empty status":           func(d *store.Delivery) { d.Status = "" },
		"AttemptCount 1":         func(d *store.Delivery) { d.AttemptCount = 1 },
		"attempts present":       func(d *store.Delivery) { d.Attempts = []store.Attempt{{AttemptNumber: 1}} },
		"zero NextAttemptAt":     func(d *store.Delivery) { d.NextAttemptAt = time.Time{} },
		"CompletedAt on pending": func(d *store.Delivery) { d.CompletedAt = base },
		"MaxAttempts 0":          func(d *store.Delivery) { d.MaxAttempts = 0 },
		"duplicate ID":           func(d *store.Delivery) { d.ID = valid.ID },
	}
	if strconv.IntSize == 64 {
		wide := int64(math.MaxInt32) + 1
		inserts["MaxAttempts beyond 32 bits"] = func(d *store.Delivery) { d.MaxAttempts = int(wide) }
	}
	for name, change := range inserts {
		t.Run("Insert/"+name, func(t *testing.T) {
			d := storetest.NewDelivery(uuid.New(), base)
			change(d)
			err := m.Insert(ctx, d)
			require.Error(t, err)
			assert.False(t, errors.Is(err, store.ErrConflict), "a malformed delivery is not a conflict: %v", err)
			t.Log(err)
			h, err := m.History(ctx, d.BatchID)
			require.NoError(t, err)
			if d.BatchID != valid.BatchID {
				assert.Empty(t, h, "a refused Insert inserts nothing")
			}
		})
	}
	t.Run("Insert/nil delivery", func(t *testing.T) {
		require.Error(t, m.Insert(ctx, nil))
	})

	t.Run("Claim", func(t *testing.T) {
		_, err := m.Claim(ctx, base, 0, time.Minute)
		assert.Error(t, err, "limit 0")
		_, err = m.Claim(ctx, base, 1, 0)
		assert.Error(t, err, "lease 0")
		_, err = m.Claim(ctx, base, 1, -time.Second)
		assert.Error(t, err, "negative lease")
	})

	c, err := m.Claim(ctx, base, 1, time.Minute)
	require.NoError(t, err)
	require.Len(t, c, 1)
	before, err := m.Get(ctx, valid.ID)
	require.NoError(t, err)
	result := func() store.Result {
		return store.Result{
			DeliveryID: valid.ID,
			Attempt: store.Attempt{
				ID: uuid.New(), DeliveryID: valid.ID, AttemptNumber: 1, CreatedAt: base,
			},
			Status:        store.StatusPending,
			NextAttemptAt: base.Add(time.Minute),
			UpdatedAt:     base,
		}
	}
	records := map[string]func(r *store.Result){
		"pending without NextAttemptAt": func(r *store.Result) { r.NextAttemptAt = time.Time{} },
		"pending with CompletedAt":      func(r *store.Result) { r.CompletedAt = base },
		"terminal with NextAttemptAt":   func(r *store.Result) { r.Status, r.CompletedAt = store.StatusFailed, base },
		"terminal without CompletedAt":  func(r *store.Result) { r.Status, r.NextAttemptAt = store.StatusSucceeded, time.Time{} },
		"unknown status":                func(r *store.Result) { r.Status = "done" },
		"attempt of another delivery":   func(r *store.Result) { r.Attempt.DeliveryID = uuid.New() },
		"attempt number 0":              func(r *store.Result) { r.Attempt.AttemptNumber = 0 },
		"status code 42":                func(r *store.Result) { r.Attempt.StatusCode = 42 },
		"status code 1000":              func(r *store.Result) { r.Attempt.StatusCode = 1000 },
	}
	if strconv.IntSize == 64 {
		wide := int64(1)<<32 + 1
		records["attempt number 2^32+1"] = func(r *store.Result) { r.Attempt.AttemptNumber = int(wide) }
	}
	for name, change := range records {
		t.Run("Record/"+name, func(t *testing.T) {
			r := result()
			change(&r)
			err := m.Record(ctx, c[0].LeaseToken, r)
			require.Error(t, err)
			assert.False(t, errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrNotFound), "a malformed result is neither a lost lease nor not found: %v", err)
			t.Log(err)
			after, err := m.Get(ctx, valid.ID)
			require.NoError(t, err)
			assert.Equal(t, before, after, "a refused Record changes nothing")
		})
	}
	t.Run("Release/zero next", func(t *testing.T) {
		require.Error(t, m.Release(ctx, valid.ID, c[0].LeaseToken, time.Time{}))
		after, err := m.Get(ctx, valid.ID)
		require.NoError(t, err)
		assert.Equal(t, before, after, "a refused Release changes nothing")
	})
	require.NoError(t, m.Record(ctx, c[0].LeaseToken, result()), "the lease survives refused calls")
}

func TestMemoryCanceledContextReturnsContextError(t *testing.T) {
	m := store.NewMemory()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	id := uuid.New()
	_, errClaim := m.Claim(ctx, base, 1, time.Minute)
	_, errGet := m.Get(ctx, id)
	_, errLatest := m.Latest(ctx, id)
	_, errHistory := m.History(ctx, id)
	for name, err := range map[string]error{
		"Insert":  m.Insert(ctx, storetest.NewDelivery(id, base)),
		"Claim":   errClaim,
		"Record":  m.Record(ctx, uuid.New(), store.Result{DeliveryID: id}),
		"Release": m.Release(ctx, id, uuid.New(), base),
		"Get":     errGet,
		"Latest":  errLatest,
		"History": errHistory,
	} {
		assert.ErrorIs(t, err, context.Canceled, name)
	}
}

// TestMemoryHistoryOrdersByCreatedAtThenID inserts a batch's deliveries out
// of CreatedAt order and with equal CreatedAt: History must sort them by
// CreatedAt, then id, newest first, whatever the insertion order.
func TestMemoryHistoryOrdersByCreatedAtThenID(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory()
	batch := uuid.New()
	created := []time.Duration{time.Hour, 3 * time.Hour, 0, 2 * time.Hour, 2 * time.Hour, 2 * time.Hour, -time.Hour}
	var all []*store.Delivery
	for i, off := range created {
		d := storetest.NewDelivery(batch, base.Add(off))
		d.IsAutomatic = i == 0
		d.NextAttemptAt = base.Add(time.Duration(i) * time.Minute)
		require.NoError(t, m.Insert(ctx, d))
		c, err := m.Claim(ctx, d.NextAttemptAt, 1, time.Minute)
		require.NoError(t, err)
		require.Len(t, c, 1)
		require.NoError(t, m.Record(ctx, c[0].LeaseToken, store.Result{
			DeliveryID: d.ID,
			Attempt:    store.Attempt{ID: uuid.New(), DeliveryID: d.ID, AttemptNumber: 1, CreatedAt: d.NextAttemptAt},
			Status:     store.StatusSucceeded, UpdatedAt: d.NextAttemptAt, CompletedAt: d.NextAttemptAt,
		}))
		all = append(all, d)
	}
	slices.SortFunc(all, func(a, b *store.Delivery) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:])
	})
	h, err := m.History(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, idsOf(all), idsOf(h))
	latest, err := m.Latest(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, all[0].ID, latest.ID)
}

func TestMemoryClaimBreaksTiesByID(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory()
	var ds []*store.Delivery
	for range 20 {
		ds = append(ds, storetest.NewDelivery(uuid.New(), base))
	}
	r := rand.New(rand.NewPCG(testenv.Seed(t), 0))
	r.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	for _, d := range ds {
		require.NoError(t, m.Insert(ctx, d))
	}
	slices.SortFunc(ds, func(a, b *store.Delivery) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	var got []*store.Delivery
	for {
		c, err := m.Claim(ctx, base, 3, time.Minute)
		require.NoError(t, err)
		if len(c) == 0 {
			break
		}
		got = append(got, c...)
	}
	assert.Equal(t, idsOf(ds), idsOf(got), "deliveries due at the same time are claimed in id order")
}

// TestMemoryFarTimes checks ordering of times beyond int64 nanoseconds from
// the epoch (before 1678 or after 2262).
func TestMemoryFarTimes(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory()
	year := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC) }
	var ds []*store.Delivery
	for _, y := range []int{1600, 1500, 1650, 2030, 2300, 2900, 3000} {
		d := storetest.NewDelivery(uuid.New(), base)
		d.NextAttemptAt = year(y)
		require.NoError(t, m.Insert(ctx, d))
		ds = append(ds, d)
	}
	// claim claims what is due at now and ends it, so it is not due again.
	claim := func(now time.Time) []uuid.UUID {
		c, err := m.Claim(ctx, now, 10, time.Hour)
		require.NoError(t, err)
		for _, d := range c {
			require.NoError(t, m.Record(ctx, d.LeaseToken, store.Result{
				DeliveryID: d.ID,
				Attempt:    store.Attempt{ID: uuid.New(), DeliveryID: d.ID, AttemptNumber: 1, CreatedAt: now},
				Status:     store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
			}))
		}
		return idsOf(c)
	}
	assert.Equal(t, []uuid.UUID{ds[1].ID, ds[0].ID, ds[2].ID}, claim(year(1660)))
	assert.Equal(t, []uuid.UUID{ds[3].ID}, claim(year(2100)))
	assert.Equal(t, []uuid.UUID{ds[4].ID}, claim(year(2899)))
	assert.Empty(t, claim(year(2900).Add(-time.Nanosecond)), "due in a nanosecond")
	assert.Equal(t, []uuid.UUID{ds[5].ID}, claim(year(2900)))
	assert.Equal(t, []uuid.UUID{ds[6].ID}, claim(year(3000)))
}

func idsOf(ds []*store.Delivery) []uuid.UUID {
	out := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// modelDelivery is the naive model's view of a delivery.
type modelDelivery struct {
	id, batch   uuid.UUID
	automatic   bool
	status      store.Status
	created     time.Time
	next        time.Time
	token       uuid.UUID
	leaseExpiry time.Time
	attempts    int
	tokens      []uuid.UUID // every token ever issued, for stale calls
}

// TestMemoryMatchesModel drives Memory with random operations and checks
// every result against a naive model that scans every delivery: claim order
// (and so the heap), conflicts, fencing, and history order.
func TestMemoryMatchesModel(t *testing.T) {
	ctx := t.Context()
	r := rand.New(rand.NewPCG(testenv.Seed(t), 1))
	m := store.NewMemory()
	model := map[uuid.UUID]*modelDelivery{}
	var order []*modelDelivery // insertion order, to pick at random
	batches := make([]uuid.UUID, 40)
	for i := range batches {
		batches[i] = uuid.New()
	}
	now := base
	steps := 20000
	if testing.Short() {
		steps = 3000
	}
	// Times in whole seconds, so many deliveries tie and ids decide.
	sec := func(lo, hi int) time.Duration { return time.Duration(lo+r.IntN(hi-lo+1)) * time.Second }
	leased := func() *modelDelivery {
		var ls []*modelDelivery
		for _, d := range order {
			if d.token != uuid.Nil {
				ls = append(ls, d)
			}
		}
		if len(ls) == 0 {
			return nil
		}
		return ls[r.IntN(len(ls))]
	}
	for step := range steps {
		switch op := r.IntN(100); {
		case op < 25: // insert
			batch := batches[r.IntN(len(batches))]
			d := storetest.NewDelivery(batch, now.Add(sec(-30, 30)))
			d.IsAutomatic = r.IntN(2) == 0
			d.NextAttemptAt = now.Add(sec(-20, 40))
			conflict := false
			for _, o := range order {
				if o.batch == batch && (o.status == store.StatusPending || d.IsAutomatic && o.automatic) {
					conflict = true
				}
			}
			err := m.Insert(ctx, d)
			if conflict {
				require.ErrorIs(t, err, store.ErrConflict, "step %d", step)
				continue
			}
			require.NoError(t, err, "step %d", step)
			md := &modelDelivery{id: d.ID, batch: batch, automatic: d.IsAutomatic, status: store.StatusPending, created: d.CreatedAt, next: d.NextAttemptAt}
			model[d.ID] = md
			order = append(order, md)
		case op < 50: // claim
			limit, lease := 1+r.IntN(5), sec(1, 60)
			var due []*modelDelivery
			for _, d := range order {
				if d.status == store.StatusPending && !d.next.After(now) {
					due = append(due, d)
				}
			}
			slices.SortFunc(due, func(a, b *modelDelivery) int {
				return cmp.Or(a.next.Compare(b.next), bytes.Compare(a.id[:], b.id[:]))
			})
			due = due[:min(limit, len(due))]
			got, err := m.Claim(ctx, now, limit, lease)
			require.NoError(t, err)
			want := make([]uuid.UUID, len(due))
			for i, d := range due {
				want[i] = d.id
			}
			require.Equal(t, want, idsOf(got), "step %d: claim at %s", step, now)
			for i, d := range due {
				d.token = got[i].LeaseToken
				d.tokens = append(d.tokens, d.token)
				d.leaseExpiry = now.Add(lease)
				d.next = d.leaseExpiry
				require.True(t, d.next.Equal(got[i].NextAttemptAt))
			}
		case op < 70: // record, sometimes with a stale token
			d := leased()
			if d == nil {
				continue
			}
			token := d.token
			stale := r.IntN(5) == 0
			if stale {
				token = d.tokens[r.IntN(len(d.tokens))]
				if token == d.token {
					token = uuid.New()
				}
			}
			res := store.Result{
				DeliveryID: d.id,
				Attempt:    store.Attempt{ID: uuid.New(), DeliveryID: d.id, AttemptNumber: d.attempts + 1, CreatedAt: now},
				UpdatedAt:  now,
			}
			switch r.IntN(3) {
			case 0:
				res.Status, res.CompletedAt = store.StatusSucceeded, now
			case 1:
				res.Status, res.CompletedAt = store.StatusFailed, now
			default:
				res.Status, res.NextAttemptAt = store.StatusPending, now.Add(sec(-10, 60))
			}
			err := m.Record(ctx, token, res)
			if stale {
				require.ErrorIs(t, err, store.ErrLeaseLost, "step %d", step)
				continue
			}
			require.NoError(t, err, "step %d", step)
			d.attempts++
			d.status, d.next, d.token, d.leaseExpiry = res.Status, res.NextAttemptAt, uuid.Nil, time.Time{}
		case op < 78: // release
			d := leased()
			if d == nil {
				continue
			}
			next := now.Add(sec(-10, 60))
			require.NoError(t, m.Release(ctx, d.id, d.token, next), "step %d", step)
			d.next, d.token, d.leaseExpiry = next, uuid.Nil, time.Time{}
		case op < 83: // check one delivery and its batch's history
			if len(order) == 0 {
				continue
			}
			d := order[r.IntN(len(order))]
			got, err := m.Get(ctx, d.id)
			require.NoError(t, err)
			assert.Equal(t, d.status, got.Status, "step %d", step)
			assert.Equal(t, d.attempts, got.AttemptCount, "step %d", step)
			assert.Len(t, got.Attempts, d.attempts, "step %d", step)
			assert.True(t, d.next.Equal(got.NextAttemptAt), "step %d: NextAttemptAt %s, want %s", step, got.NextAttemptAt, d.next)
			assert.Equal(t, d.token, got.LeaseToken, "step %d", step)
			assert.True(t, d.leaseExpiry.Equal(got.LeaseExpiresAt), "step %d", step)
			var want []*modelDelivery
			for _, o := range order {
				if o.batch == d.batch {
					want = append(want, o)
				}
			}
			slices.SortFunc(want, func(a, b *modelDelivery) int {
				return cmp.Or(b.created.Compare(a.created), bytes.Compare(b.id[:], a.id[:]))
			})
			h, err := m.History(ctx, d.batch)
			require.NoError(t, err)
			require.Len(t, h, len(want), "step %d", step)
			for i := range want {
				require.Equal(t, want[i].id, h[i].ID, "step %d: history[%d]", step, i)
			}
		default: // time passes
			now = now.Add(sec(0, 20))
		}
	}
}

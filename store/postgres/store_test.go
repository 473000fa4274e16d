package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
	"github.com/hookline/hookline/storetest"
)

func TestConformance(t *testing.T) {
	testDSN(t)
	t.Run("GroupCommit", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newTestDB(t).Store })
	})
	t.Run("NoGroupCommit", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			return newTestDB(t).NewStore(t, nil, func(o *postgres.Options) { o.DisableGroupCommit = true })
		})
	})
}

func TestNewChecksOptions(t *testing.T) {
	pool := newPoolNoPing(t)
	for _, bad := range []string{"1abc", "a-b", "x;drop table y", `"q"`, "ünï", "a b", strings.Repeat("s", 64)} {
		_, err := postgres.New(pool, postgres.Options{Schema: bad})
		assert.ErrorContains(t, err, "Options.Schema", "schema %q must be refused, naming the field", bad)
	}
	for _, good := range []string{"hookline", "Hook_Line2", "_x", strings.Repeat("s", 63)} {
		s, err := postgres.New(pool, postgres.Options{Schema: good})
		require.NoError(t, err, "schema %q is a plain identifier", good)
		assert.Equal(t, good, s.Schema())
	}
	s, err := postgres.New(pool, postgres.Options{})
	require.NoError(t, err)
	assert.Equal(t, postgres.DefaultSchema, s.Schema(), "an empty Schema means DefaultSchema")
	_, err = postgres.New(nil, postgres.Options{})
	assert.Error(t, err, "a nil pool must be refused")
}

// A Record or Insert of many concurrent callers is written in groups; each
// caller must still get its own answer: success, ErrLeaseLost, ErrConflict,
// or the error of its own bad value while the others succeed.
func TestGroupCommitAnswersEachCaller(t *testing.T) {
	db := newTestDB(t)
	st := db.Store
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)

	// 60 inserts on 30 batches: one of each pair conflicts; one delivery
	// has a callback URL PostgreSQL refuses (a NUL byte), which must fail
	// alone.
	const batches = 30
	var ds []*store.Delivery
	for i := range batches {
		b := uuid.New()
		for range 2 {
			d := storetest.NewDelivery(b, now)
			d.IsAutomatic = i%2 == 0
			ds = append(ds, d)
		}
	}
	bad := storetest.NewDelivery(uuid.New(), now)
	bad.CallbackURL = "https://example.com/\x00"
	ds = append(ds, bad)
	errs := runConcurrently(len(ds), func(i int) error { return st.Insert(ctx, ds[i]) })
	require.Error(t, errs[len(ds)-1], "an Insert the server refuses must fail")
	assert.NotErrorIs(t, errs[len(ds)-1], store.ErrConflict)
	for b := range batches {
		e1, e2 := errs[2*b], errs[2*b+1]
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("batch %d: Inserts returned %v and %v: exactly one of two pending deliveries of a batch must be accepted", b, e1, e2)
		}
		assert.ErrorIs(t, errors.Join(e1, e2), store.ErrConflict, "batch %d: the losing Insert must return ErrConflict", b)
	}

	// Claim them all, then record each, concurrently with a stale twin
	// (a random token), a repeat with the same token, and one result whose
	// attempt id is already taken (refused by the server).
	claimed, err := st.Claim(ctx, now, 1000, time.Hour)
	require.NoError(t, err)
	require.Len(t, claimed, batches)
	type call struct {
		token uuid.UUID
		r     store.Result
	}
	var calls []call
	for _, c := range claimed {
		r := store.Result{
			DeliveryID: c.ID,
			Attempt: store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: c.ID, AttemptNumber: 1, StatusCode: 200,
				ResponseBody: "ok\x00\xff", CreatedAt: now},
			Status: store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
		}
		calls = append(calls, call{c.LeaseToken, r}, call{uuid.New(), r}, call{c.LeaseToken, r})
	}
	calls[1].r.Attempt.ID = calls[0].r.Attempt.ID // stale and a duplicate attempt id
	errs = runConcurrently(len(calls), func(i int) error { return st.Record(ctx, calls[i].token, calls[i].r) })
	for i, c := range claimed {
		good, stale, again := errs[3*i], errs[3*i+1], errs[3*i+2]
		assert.ErrorIs(t, stale, store.ErrLeaseLost, "a Record with a token that was never the lease must return ErrLeaseLost")
		if (good == nil) == (again == nil) {
			t.Errorf("delivery %s: two Records with one token returned %v and %v: exactly one must apply", c.ID, good, again)
		} else {
			assert.ErrorIs(t, errors.Join(good, again), store.ErrLeaseLost, "the second Record with one token must return ErrLeaseLost")
		}
		got, err := st.Get(ctx, c.ID)
		require.NoError(t, err)
		assert.Equal(t, store.StatusSucceeded, got.Status)
		require.Len(t, got.Attempts, 1, "exactly one attempt must be recorded")
		assert.Equal(t, "ok\uFFFD\uFFFD", got.Attempts[0].ResponseBody, "NUL and invalid UTF-8, which PostgreSQL cannot store as text, become U+FFFD")
	}
}

// runConcurrently calls f(0..n-1) at once and returns their errors.
func runConcurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// A caller whose context ends while its call waits in a group gets the
// context's error, and the call is dropped.
func TestGroupCommitHonoursContext(t *testing.T) {
	db := newTestDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := storetest.NewDelivery(uuid.New(), time.Now())
	require.ErrorIs(t, db.Store.Insert(ctx, d), context.Canceled)
	_, err := db.Store.Get(context.Background(), d.ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// A Store not made by New says so from every method instead of panicking.
func TestZeroStoreRefuses(t *testing.T) {
	var s postgres.Store
	ctx := context.Background()
	d := storetest.NewDelivery(uuid.New(), time.Now())
	assert.Error(t, s.Migrate(ctx))
	assert.Error(t, s.Insert(ctx, d))
	assert.Error(t, s.InsertLeased(ctx, d))
	_, err := s.Claim(ctx, time.Now(), 1, time.Minute)
	assert.Error(t, err)
	assert.Error(t, s.Record(ctx, uuid.New(), store.Result{}))
	assert.Error(t, s.Release(ctx, uuid.New(), uuid.New(), time.Now()))
	_, err = s.Get(ctx, uuid.New())
	assert.Error(t, err)
	_, err = s.Latest(ctx, uuid.New())
	assert.Error(t, err)
	_, err = s.History(ctx, uuid.New())
	assert.Error(t, err)
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-s.Notify(nctx):
		t.Fatal("the zero Store notified")
	case <-time.After(20 * time.Millisecond):
	}
}

package storetest

// The rules below came from mutation testing: each closed a gap through
// which a Store that breaks a rule of store.Store or store.LeasedInserter
// (Latest not the newest, a Get sharing memory, times compared to the
// millisecond or as wall clocks, a Record that is not atomic, ...) passed
// the suite.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
)

func testReadsAgree(h *harness) {
	batch := uuid.New()
	d1 := h.failedTwice(batch)

	d2 := NewDelivery(batch, at(time.Hour))
	d2.IsAutomatic = false
	h.insert(d2)
	c := h.claimOne(d2.ID, at(time.Hour))
	h.record(c.LeaseToken, retryResult(c, at(time.Hour+time.Second), at(2*time.Hour)))
	h.claimOne(d2.ID, at(2*time.Hour)) // d2: one attempt, leased now

	want := []*store.Delivery{h.get(d2.ID), h.get(d1.ID)}
	require.Len(h.t, want[0].Attempts, 1)
	require.NotEqual(h.t, uuid.Nil, want[0].LeaseToken)
	latest, err := h.s.Latest(h.ctx, batch)
	require.NoError(h.t, err)
	sameDelivery(h.t, want[0], latest, "Latest must equal Get of the newest delivery, attempts and lease included")
	hist := h.history(batch)
	require.Equal(h.t, ids(want), ids(hist))
	for i := range want {
		sameDelivery(h.t, want[i], hist[i], fmt.Sprintf("History[%d] must equal Get, attempts and lease included", i))
	}
}

func testLatestByCreatedAt(h *harness) {
	batch := uuid.New()
	newer := NewDelivery(batch, at(2*time.Hour))
	h.insert(newer)
	h.finish(newer.ID, at(2*time.Hour), store.StatusSucceeded)
	older := NewDelivery(batch, at(time.Hour)) // inserted later, created earlier
	older.IsAutomatic = false
	h.insert(older)
	h.finish(older.ID, at(2*time.Hour), store.StatusFailed)
	latest, err := h.s.Latest(h.ctx, batch)
	require.NoError(h.t, err)
	assert.Equal(h.t, newer.ID, latest.ID, "Latest must return the newest CreatedAt, not the last inserted")

	// CreatedAt ties: whichever a Store puts first, Latest agrees with History.
	tie := uuid.New()
	for range 3 {
		d := NewDelivery(tie, at(3*time.Hour))
		d.IsAutomatic = false
		h.insert(d)
		h.finish(d.ID, at(3*time.Hour), store.StatusSucceeded)
	}
	latest, err = h.s.Latest(h.ctx, tie)
	require.NoError(h.t, err)
	hist := h.history(tie)
	require.Len(h.t, hist, 3)
	assert.Equal(h.t, hist[0].ID, latest.ID, "Latest must be History[0] when CreatedAt ties")
}

func testOlderPendingConflicts(h *harness) {
	batch := uuid.New()
	newest := NewDelivery(batch, at(2*time.Hour))
	h.insert(newest)
	h.finish(newest.ID, at(2*time.Hour), store.StatusSucceeded)
	pending := NewDelivery(batch, at(time.Hour)) // created before newest (another process's clock)
	pending.IsAutomatic = false
	h.insert(pending)

	d := NewDelivery(batch, at(3*time.Hour))
	d.IsAutomatic = false
	assert.ErrorIs(h.t, h.s.Insert(h.ctx, d), store.ErrConflict,
		"Insert while the batch has a pending delivery must return ErrConflict even if that delivery is not the newest")
	assert.ElementsMatch(h.t, []uuid.UUID{newest.ID, pending.ID}, ids(h.history(batch)), "a conflicting Insert inserts nothing")
}

func testClaimMicroseconds(h *harness) {
	now := at(time.Hour + 123456*time.Microsecond) // not a whole millisecond
	offsets := []time.Duration{time.Microsecond, 0, -time.Microsecond, -2 * time.Microsecond, -3 * time.Microsecond, -400 * time.Microsecond}
	byOffset := map[time.Duration]uuid.UUID{}
	for _, off := range offsets { // the latest due first, so ids run against due order
		d := NewDelivery(uuid.New(), at(0))
		d.NextAttemptAt = now.Add(off)
		h.insert(d)
		byOffset[off] = d.ID
	}
	want := []uuid.UUID{byOffset[-400*time.Microsecond], byOffset[-3*time.Microsecond], byOffset[-2*time.Microsecond], byOffset[-time.Microsecond], byOffset[0]}
	assert.Equal(h.t, want, ids(h.claim(now, 10)), "Claim must return the deliveries due at or before now to the microsecond, earliest first")
	h.claimOne(byOffset[time.Microsecond], now.Add(time.Microsecond))
}

func testFarTimes(h *harness) {
	type due struct {
		name string
		at   time.Time
	}
	times := []due{
		{"year 9999", time.Date(store.MaxYear, 12, 30, 0, 0, 0, 0, time.UTC)},
		{"year 5000", time.Date(5000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"year 2300", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"year 1000", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"year 1600", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	idOf := map[string]uuid.UUID{}
	for _, x := range times {
		d := NewDelivery(uuid.New(), at(0))
		d.NextAttemptAt = x.at
		h.insert(d)
		idOf[x.name] = d.ID
		sameTime(h.t, x.at, h.get(d.ID).NextAttemptAt, "NextAttemptAt", "a time in "+x.name+" must read back")
	}
	got := h.claim(at(0), 10)
	assert.Equal(h.t, []uuid.UUID{idOf["year 1000"], idOf["year 1600"]}, ids(got),
		"Claim now must return exactly the deliveries due in years 1000 and 1600, earliest first")
	for _, c := range got {
		h.record(c.LeaseToken, terminalResult(c, store.StatusSucceeded, at(0)))
	}
	for _, x := range []due{times[2], times[1], times[0]} {
		h.noneDue(x.at.Add(-time.Microsecond), x.name+" is not due a microsecond before it")
		h.finish(idOf[x.name], x.at, store.StatusSucceeded)
	}
}

func testLocations(h *harness) {
	east := time.FixedZone("UTC+05:30", 5*3600+1800)
	west := time.FixedZone("UTC-07:00", -7*3600)
	d := NewDelivery(uuid.New(), at(0))
	d.NextAttemptAt = at(time.Minute).In(east)
	d.CreatedAt = at(0).In(east)
	d.UpdatedAt = at(time.Microsecond).In(east)
	want := d.Clone()
	h.insert(d)
	sameDelivery(h.t, want, h.get(d.ID), "times inserted in another location must read back as the same instants")
	h.noneDue(at(time.Minute-time.Microsecond).In(west), "a delivery is due at its instant, whatever the locations")
	c := h.claimOne(d.ID, at(time.Minute).In(west))
	sameTime(h.t, at(time.Minute+lease), c.LeaseExpiresAt, "LeaseExpiresAt", "now+lease whatever now's location")

	next := at(time.Hour).In(west)
	before := h.get(d.ID)
	r := retryResult(c, at(time.Minute+time.Second).In(east), next)
	r.UpdatedAt = r.UpdatedAt.In(west)
	h.record(c.LeaseToken, r)
	h.unchanged(applied(before, r), "Record with times in other locations must store the same instants")
	h.noneDue(at(time.Hour-time.Microsecond), "due again at NextAttemptAt's instant")
	c = h.claimOne(d.ID, at(time.Hour).In(east))
	release := at(2 * time.Hour).In(east)
	require.NoError(h.t, h.s.Release(h.ctx, d.ID, c.LeaseToken, release))
	sameTime(h.t, release, h.get(d.ID).NextAttemptAt, "NextAttemptAt", "Release with next in another location")
	h.noneDue(at(2*time.Hour-time.Microsecond).In(west), "due again at next's instant")
	h.claimOne(d.ID, at(2*time.Hour))
}

func testTimesKeepMicroseconds(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	d.CreatedAt = at(567 * time.Microsecond)
	d.UpdatedAt = d.CreatedAt
	d.NextAttemptAt = at(time.Second + 1*time.Microsecond)
	want := d.Clone()
	h.insert(d)
	sameDelivery(h.t, want, h.get(d.ID), "Insert must keep every time to the microsecond")

	c := h.claimOne(d.ID, d.NextAttemptAt)
	next := at(time.Minute + 345678*time.Microsecond)
	require.NoError(h.t, h.s.Release(h.ctx, d.ID, c.LeaseToken, next))
	sameTime(h.t, next, h.get(d.ID).NextAttemptAt, "NextAttemptAt", "Release must keep next to the microsecond")
	h.noneDue(next.Add(-time.Microsecond), "a released delivery is due only at next")
	h.finish(d.ID, next, store.StatusSucceeded)

	li, ok := h.s.(store.LeasedInserter)
	if !ok {
		return
	}
	l := newLeased(uuid.New(), at(time.Hour))
	l.LeaseExpiresAt = l.LeaseExpiresAt.Add(123457 * time.Microsecond)
	require.NoError(h.t, li.InsertLeased(h.ctx, l))
	got := h.get(l.ID)
	sameTime(h.t, l.LeaseExpiresAt, got.LeaseExpiresAt, "LeaseExpiresAt", "InsertLeased must keep LeaseExpiresAt to the microsecond")
	sameTime(h.t, l.LeaseExpiresAt, got.NextAttemptAt, "NextAttemptAt", "InsertLeased must store NextAttemptAt = LeaseExpiresAt to the microsecond")
	h.noneDue(l.LeaseExpiresAt.Add(-time.Microsecond), "a delivery inserted leased is not due before its lease expires")
	h.claimOne(l.ID, l.LeaseExpiresAt)
}

func testInsertLeasedRefusesAll(h *harness, li store.LeasedInserter) {
	inserts := func(d *store.Delivery, why string) {
		h.t.Helper()
		_, err := h.s.Get(h.ctx, d.ID)
		assert.ErrorIs(h.t, err, store.ErrNotFound, "a refused InsertLeased (%s) inserts nothing", why)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	d := newLeased(uuid.New(), at(0))
	assert.Error(h.t, li.InsertLeased(ctx, d), "InsertLeased with a canceled context must fail")
	inserts(d, "canceled context")

	late := time.Date(store.MaxYear+1, 1, 1, 0, 0, 0, 0, time.UTC)
	for what, change := range map[string]func(d *store.Delivery){
		"an empty CallbackURL":         func(d *store.Delivery) { d.CallbackURL = "" },
		"a nil BatchID":                func(d *store.Delivery) { d.BatchID = uuid.Nil },
		"a CreatedAt after MaxYear":    func(d *store.Delivery) { d.CreatedAt = late },
		"MaxAttempts 0":                func(d *store.Delivery) { d.MaxAttempts = 0 },
		"a nil Payload":                func(d *store.Delivery) { d.Payload = nil },
		"LeaseExpiresAt after MaxYear": func(d *store.Delivery) { d.LeaseExpiresAt = late },
	} {
		d := newLeased(uuid.New(), at(0))
		change(d)
		err := li.InsertLeased(h.ctx, d)
		assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "InsertLeased of a delivery with %s must fail: it is invalid, not a conflict", what)
		inserts(d, what)
	}

	first := NewDelivery(uuid.New(), at(0))
	h.insert(first)
	want := h.get(first.ID)
	dup := newLeased(uuid.New(), at(time.Minute))
	dup.ID = first.ID
	dup.IsAutomatic = false
	err := li.InsertLeased(h.ctx, dup)
	assert.Error(h.t, err, "InsertLeased of a delivery whose ID is already stored must fail")
	assert.NotErrorIs(h.t, err, store.ErrConflict, "a duplicate id is an error, not a conflict of the batch (see Store.Insert)")
	h.unchanged(want, "a duplicate InsertLeased must leave the stored delivery unchanged")
	assert.Empty(h.t, h.history(dup.BatchID), "a duplicate InsertLeased must not add the delivery to its batch")

	h.finish(first.ID, at(0), store.StatusSucceeded)
	again := newLeased(first.BatchID, at(time.Minute))
	assert.ErrorIs(h.t, li.InsertLeased(h.ctx, again), store.ErrConflict,
		"a second automatic InsertLeased must return ErrConflict after the first automatic delivery ended")
	inserts(again, "second automatic")
	manual := newLeased(first.BatchID, at(time.Minute))
	manual.IsAutomatic = false
	require.NoError(h.t, li.InsertLeased(h.ctx, manual), "a manual InsertLeased is accepted once nothing is pending")
}

func testInsertIgnoresLease(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	d.LeaseToken = uuid.New()
	d.LeaseExpiresAt = at(lease)
	want := d.Clone()
	want.LeaseToken, want.LeaseExpiresAt = uuid.Nil, time.Time{}
	h.insert(d)
	sameDelivery(h.t, want, h.get(d.ID), "Insert must store no lease")
	err := h.s.Record(h.ctx, d.LeaseToken, retryResult(d, at(0), at(time.Minute)))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "the token a Delivery carried into Insert is no lease")
	h.unchanged(want, "a refused Record changes nothing")
	c := h.claimOne(d.ID, at(0))
	assert.NotEqual(h.t, d.LeaseToken, c.LeaseToken, "Claim gives a fresh token")
}

func testClaimBadArgs(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	before := h.get(d.ID)
	for _, x := range []struct {
		limit int
		lease time.Duration
	}{{0, lease}, {-1, lease}, {10, 0}, {10, -time.Second}} {
		ds, err := h.s.Claim(h.ctx, at(0), x.limit, x.lease)
		if err == nil {
			assert.Empty(h.t, ids(ds), "Claim with limit %d and lease %v must fail or return nothing", x.limit, x.lease)
		} else {
			assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "Claim with limit %d and lease %v", x.limit, x.lease)
		}
		h.unchanged(before, fmt.Sprintf("Claim with limit %d and lease %v must lease nothing", x.limit, x.lease))
	}
	h.claimOne(d.ID, at(0))
}

func testHistoryEmptyNotNil(h *harness) {
	hist, err := h.s.History(h.ctx, uuid.New())
	require.NoError(h.t, err)
	assert.NotNil(h.t, hist, "History of a batch without deliveries must be an empty slice, not nil")
	assert.Empty(h.t, hist)
}

func testRecordRacesClaim(h *harness) {
	const n = 50
	// Delivery i is leased until (i+1) minutes: in round i only its lease
	// has expired, so the Claim racing the stale Record can take only it.
	stale := make([]*store.Delivery, n)
	for range n {
		h.insert(NewDelivery(uuid.New(), at(0)))
	}
	for i := range n {
		ds, err := h.s.Claim(h.ctx, at(0), 1, time.Duration(i+1)*time.Minute)
		require.NoError(h.t, err)
		require.Len(h.t, ds, 1)
		stale[i] = ds[0]
	}
	both := 0
	for i, d := range stale {
		now := at(time.Duration(i+1) * time.Minute)
		var recErr, claimErr error
		var got []*store.Delivery
		start := make(chan struct{})
		var wg sync.WaitGroup
		record := func() {
			<-start
			recErr = h.s.Record(h.ctx, d.LeaseToken, retryResult(d, now, at(1000*time.Hour)))
		}
		claim := func() {
			<-start
			got, claimErr = h.s.Claim(h.ctx, now, 10, 1000*time.Hour)
		}
		if i%2 == 0 { // the scheduler tends to run the last started first: vary it
			wg.Go(record)
			wg.Go(claim)
		} else {
			wg.Go(claim)
			wg.Go(record)
		}
		close(start)
		wg.Wait()
		require.NoError(h.t, claimErr)
		if recErr != nil {
			require.ErrorIs(h.t, recErr, store.ErrLeaseLost, "a Record that lost the race must return ErrLeaseLost")
		}
		claimed := false
		for _, c := range got {
			require.Equal(h.t, d.ID, c.ID, "only delivery %d's lease has expired at %s", i, now)
			claimed = true
		}
		if recErr == nil && claimed {
			both++
		}
		assert.True(h.t, recErr == nil || claimed, "delivery %d was neither recorded nor claimed again", i)
		if claimed {
			assert.Empty(h.t, h.get(d.ID).Attempts, "delivery %d was claimed again: the stale Record must add nothing", i)
		}
	}
	assert.Zero(h.t, both, "deliveries both recorded with an expired token and claimed again: the token check and the write of Record must be one atomic step")
}

func testAttemptsRecordOrder(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	ids := []uuid.UUID{uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())}
	var want []store.Attempt
	now := at(0)
	for i := range 3 {
		c := h.claimOne(d.ID, now)
		r := retryResult(c, now, now.Add(time.Minute))
		r.Attempt.ID = ids[2-i] // ids run against the order of the attempts
		h.record(c.LeaseToken, r)
		want = append(want, r.Attempt)
		now = now.Add(time.Minute)
	}
	sameAttempts(h.t, want, h.get(d.ID).Attempts, "Get must return attempts in the order recorded")
	hist := h.history(d.BatchID)
	require.Len(h.t, hist, 1)
	sameAttempts(h.t, want, hist[0].Attempts, "History must return attempts in the order recorded")
}

func testInsertRefusesNonPending(h *harness) {
	h.refusesInserts(map[string]func(d *store.Delivery){
		"Status succeeded": func(d *store.Delivery) { d.Status = store.StatusSucceeded },
		"Status failed":    func(d *store.Delivery) { d.Status = store.StatusFailed },
		"AttemptCount 2":   func(d *store.Delivery) { d.AttemptCount = 2 },
		// The rest of what store.CheckNew refuses.
		"a nil ID":      func(d *store.Delivery) { d.ID = uuid.Nil },
		"a nil BatchID": func(d *store.Delivery) { d.BatchID = uuid.Nil },
		"attempts already": func(d *store.Delivery) {
			d.Attempts = []store.Attempt{{ID: uuid.New(), DeliveryID: d.ID, AttemptNumber: 1}}
		},
		"MaxAttempts 0":        func(d *store.Delivery) { d.MaxAttempts = 0 },
		"a zero NextAttemptAt": func(d *store.Delivery) { d.NextAttemptAt = time.Time{} },
		"CompletedAt set":      func(d *store.Delivery) { d.CompletedAt = d.CreatedAt },
		"a nil Payload":        func(d *store.Delivery) { d.Payload = nil },
	})
}

package store_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/storetest"
)

// noMonotonic asserts that x carries no monotonic clock reading, as no time
// read back from a database does.
func noMonotonic(t *testing.T, name string, x time.Time) {
	t.Helper()
	assert.True(t, x == x.Round(0), "%s keeps a monotonic reading: %s", name, x)
}

// The memory store keeps times without their monotonic clock reading
// (time.Now() has one), as a database would: they compare with == and
// order by the wall clock.
func TestMemoryStripsMonotonicReadings(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	m := store.NewMemory()
	now := time.Now()
	d := storetest.NewDelivery(uuid.New(), now)
	d.CreatedAt, d.UpdatedAt, d.NextAttemptAt = now, now, now
	require.NoError(t, m.Insert(ctx, d))
	got, err := m.Get(ctx, d.ID)
	require.NoError(t, err)
	noMonotonic(t, "CreatedAt", got.CreatedAt)
	noMonotonic(t, "UpdatedAt", got.UpdatedAt)
	noMonotonic(t, "NextAttemptAt", got.NextAttemptAt)
	c, err := m.Claim(ctx, now, 1, time.Minute)
	require.NoError(t, err)
	require.Len(t, c, 1)
	noMonotonic(t, "LeaseExpiresAt of a claim", c[0].LeaseExpiresAt)
	got, err = m.Get(ctx, d.ID)
	require.NoError(t, err)
	noMonotonic(t, "LeaseExpiresAt", got.LeaseExpiresAt)
	require.NoError(t, m.Release(ctx, d.ID, c[0].LeaseToken, now))
	got, err = m.Get(ctx, d.ID)
	require.NoError(t, err)
	noMonotonic(t, "NextAttemptAt after Release", got.NextAttemptAt)
	c, err = m.Claim(ctx, now, 1, time.Minute)
	require.NoError(t, err)
	require.Len(t, c, 1)
	r := store.Result{DeliveryID: d.ID, Status: store.StatusPending, NextAttemptAt: now.Add(time.Hour), UpdatedAt: now,
		Attempt: store.Attempt{ID: uuid.New(), DeliveryID: d.ID, AttemptNumber: 1, CreatedAt: now, StatusCode: 500}}
	require.NoError(t, m.Record(ctx, c[0].LeaseToken, r))
	got, err = m.Get(ctx, d.ID)
	require.NoError(t, err)
	noMonotonic(t, "Attempt.CreatedAt", got.Attempts[0].CreatedAt)
	noMonotonic(t, "NextAttemptAt after Record", got.NextAttemptAt)
	noMonotonic(t, "UpdatedAt after Record", got.UpdatedAt)
}

// CheckResult takes AttemptNumber up to 2^31-1 (what a 32-bit column
// holds) and refuses one more.
func TestCheckResultAttemptNumberBound(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	at := time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)
	r := store.Result{DeliveryID: id, Status: store.StatusPending, NextAttemptAt: at, UpdatedAt: at,
		Attempt: store.Attempt{DeliveryID: id, AttemptNumber: math.MaxInt32, CreatedAt: at}}
	require.NoError(t, store.CheckResult(&r))
	if strconv.IntSize == 64 { // else no int is beyond it
		beyond := int64(math.MaxInt32) + 1
		r.Attempt.AttemptNumber = int(beyond)
		assert.ErrorIs(t, store.CheckResult(&r), store.ErrInvalidArgument)
	}
}

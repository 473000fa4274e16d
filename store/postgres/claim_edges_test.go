package postgres_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/storetest"
)

// At equal NextAttemptAt, Claim with a limit takes the lowest ids, as its
// doc says. (Claim sorts what it returns, so only which rows the limit
// picks shows it. The due index, ordered by (next_attempt_at, id), gives
// that order too, so this pins what callers see, not the statement's text.)
func TestClaimTiesTakeTheLowestIDs(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	due := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	var ids []uuid.UUID
	for range 20 {
		d := storetest.NewDelivery(uuid.New(), due)
		d.ID = uuid.New() // random (v4): insertion order is not id order
		require.NoError(t, db.Store.Insert(ctx, d))
		ids = append(ids, d.ID)
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	got, err := db.Store.Claim(ctx, time.Now(), 3, time.Minute)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, ids[:3], []uuid.UUID{got[0].ID, got[1].ID, got[2].ID})
}

// In one group of records, a stale token is fenced row by row: its call
// gets ErrLeaseLost and changes nothing, the other applies. (Concurrent
// calls reach the group statement only when they happen to queue behind
// another group; this writes one group directly.)
func TestRecordGroupFencesEachRow(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	for range 2 {
		require.NoError(t, db.Store.Insert(ctx, storetest.NewDelivery(uuid.New(), now)))
	}
	claimed, err := db.Store.Claim(ctx, now, 2, time.Hour)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	var tokens []uuid.UUID
	var rs []store.Result
	for i, c := range claimed {
		token := c.LeaseToken
		if i == 0 {
			token = uuid.New() // never its lease
		}
		tokens = append(tokens, token)
		rs = append(rs, store.Result{
			DeliveryID: c.ID,
			Attempt:    store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: c.ID, AttemptNumber: 1, StatusCode: 200, CreatedAt: now},
			Status:     store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
		})
	}
	errs := db.Store.RecordGroup(ctx, tokens, rs)
	require.Len(t, errs, 2)
	assert.ErrorIs(t, errs[0], store.ErrLeaseLost)
	assert.NoError(t, errs[1])
	stale, err := db.Store.Get(ctx, claimed[0].ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusPending, stale.Status, "the fenced call changed nothing")
	assert.Empty(t, stale.Attempts)
	good, err := db.Store.Get(ctx, claimed[1].ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusSucceeded, good.Status)
	assert.Len(t, good.Attempts, 1)
}

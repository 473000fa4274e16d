package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
	"github.com/hookline/hookline/storetest"
)

// PostgreSQL may settle on a generic plan for a prepared statement after
// five runs and keep it until the table's statistics change. Planned while
// the deliveries table of a new schema was tiny, Record's group statement
// read the whole table (a hash join over a sequential scan) and the conflict
// check walked every pending delivery (the due index), and both went on
// doing so as the table grew, until autovacuum's next ANALYZE. Each test
// runs its statement ten times on a tiny table, through a pool of one
// connection (one plan cache), grows the table to 20,000 pending deliveries
// without ANALYZE, runs it once more and counts the rows that run read.
func TestStatementsDoNotReadTheTableAsItGrows(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, st *postgres.Store)
	}{
		{"record group", recordGroup},
		{"insert conflict", insertConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newTestDB(t)
			pool := newPool(t, db.DSN, 1)
			st := db.NewStore(t, pool, nil)
			for range 10 {
				tt.run(t, st)
			}
			growUnanalyzed(t, pool, db.Schema, 20_000)
			before := rowsRead(t, db, pool)
			tt.run(t, st)
			require.Less(t, rowsRead(t, db, pool)-before, int64(100), "one run read the deliveries table (20,000 rows)")
		})
	}
}

// recordGroup records the first attempts of two new deliveries in one group.
func recordGroup(t *testing.T, st *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	tokens := []uuid.UUID{uuid.New(), uuid.New()}
	rs := make([]store.Result, len(tokens))
	for i, tok := range tokens {
		d := storetest.NewDelivery(uuid.New(), now)
		d.LeaseToken, d.LeaseExpiresAt = tok, now.Add(time.Minute)
		require.NoError(t, st.InsertLeased(ctx, d))
		rs[i] = store.Result{
			DeliveryID: d.ID, Status: store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
			Attempt: store.Attempt{ID: uuid.New(), DeliveryID: d.ID, AttemptNumber: 1, StatusCode: 204, CreatedAt: now},
		}
	}
	for i, err := range st.RecordGroup(ctx, tokens, rs) {
		require.NoError(t, err, "record %d of the group", i)
	}
}

// insertConflict inserts a second delivery of a batch whose first is
// pending, which the Store refuses after reading why.
func insertConflict(t *testing.T, st *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	batch := uuid.New()
	require.NoError(t, st.Insert(ctx, storetest.NewDelivery(batch, time.Now())))
	require.ErrorIs(t, st.Insert(ctx, storetest.NewDelivery(batch, time.Now())), store.ErrConflict)
}

// growUnanalyzed adds n pending deliveries to schema's table without
// ANALYZE, as between two runs of autovacuum.
func growUnanalyzed(t *testing.T, pool *pgxpool.Pool, schema string, n int) {
	t.Helper()
	rows := make([][]any, n)
	for i := range rows {
		d := storetest.NewDelivery(uuid.New(), time.Now())
		rows[i] = []any{d.ID, d.BatchID, d.CallbackURL, d.Payload, true, "pending", 0, 8, d.NextAttemptAt, d.CreatedAt, d.UpdatedAt}
	}
	_, err := pool.CopyFrom(context.Background(), pgx.Identifier{schema, "deliveries"},
		[]string{"id", "batch_id", "callback_url", "payload", "is_automatic", "status", "attempt_count", "max_attempts", "next_attempt_at", "created_at", "updated_at"},
		pgx.CopyFromRows(rows))
	require.NoError(t, err)
}

// rowsRead flushes the statistics of pool's one connection (PostgreSQL 15
// and later) and returns how many rows of the deliveries table the server
// has counted as read by sequential scans or fetched through indexes.
func rowsRead(t *testing.T, db *testDB, pool *pgxpool.Pool) int64 {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, "SELECT pg_stat_force_next_flush()")
	require.NoError(t, err)
	var n int64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT seq_tup_read + coalesce(idx_tup_fetch, 0)
		FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'deliveries'`, db.Schema).Scan(&n))
	return n
}

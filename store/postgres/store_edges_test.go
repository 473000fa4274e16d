package postgres_test

// Tests from a manual mutation-testing pass over store/postgres: each one
// fails on a small bug (a mutant) that the rest of the suite let through.

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
	"github.com/hookline/hookline/storetest"
)

// Guards against the single-row insert statement (sql.go, used with
// DisableGroupCommit) notifying for a leased row too. The existing
// TestInsertLeasedNotifiesNobody only goes through the group statement.
func TestInsertLeasedWithoutGroupCommitNotifiesNobody(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	st := db.NewStore(t, db.Pool, func(o *postgres.Options) { o.DisableGroupCommit = true })
	conn, channel := listen(t, db)

	now := time.Now().Truncate(time.Microsecond)
	d := storetest.NewDelivery(uuid.New(), now)
	d.LeaseToken = uuid.New()
	d.LeaseExpiresAt = now.Add(time.Hour)
	require.NoError(t, st.InsertLeased(ctx, d))
	nothingNotified(t, db, conn, channel, "a leased insert must send no notification")

	insertOne(t, st)
	assert.Equal(t, "", nextPayload(t, conn), "a plain insert notifies")
}

// Guards against writeRecords answering every call of a refused group statement with
// "outcome unknown" instead of writing each call on its own. Two results
// share an attempt id, so the group statement fails with a unique violation
// (an ERROR: nothing applied); written one by one, the first applies and
// only the second fails.
func TestRecordGroupRefusedFallsBackToOneByOne(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	claimed, tokens, rs := recordGroupOf(t, db)
	rs[1].Attempt.ID = rs[0].Attempt.ID // the second must fail
	errs := db.Store.RecordGroup(ctx, tokens, rs)
	require.Len(t, errs, 2)
	assert.NoError(t, errs[0], "the first call, written on its own, applies")
	require.Error(t, errs[1], "the second reuses the attempt id")
	assert.NotContains(t, errs[1].Error(), "outcome is unknown", "the server refused it: nothing applied")

	first, err := db.Store.Get(ctx, claimed[0].ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusSucceeded, first.Status)
	second, err := db.Store.Get(ctx, claimed[1].ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusPending, second.Status, "the failed call changed nothing")
	assert.Empty(t, second.Attempts)
}

// Guards against the group record statement without its attempt-number fence
// (d.attempt_count = r.attempt_number - 1). A call with a valid token but
// the wrong attempt number must not apply, and says why.
func TestRecordGroupFencesTheAttemptNumber(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	claimed, tokens, rs := recordGroupOf(t, db)
	rs[1].Attempt.AttemptNumber = 2
	errs := db.Store.RecordGroup(ctx, tokens, rs)
	require.Len(t, errs, 2)
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], store.ErrInvalidArgument, "attempt 2 of a delivery never attempted")
	bad, err := db.Store.Get(ctx, claimed[1].ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusPending, bad.Status, "the refused call changed nothing")
	assert.Zero(t, bad.AttemptCount)
	assert.Empty(t, bad.Attempts)
}

// Guards against History's and Latest's tie-break on id reversed (d.id instead of
// d.id DESC). Two deliveries of one batch with the same CreatedAt.
func TestHistoryBreaksCreatedAtTiesByDescendingID(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	batch := uuid.New()
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	for i, id := range []uuid.UUID{ids[1], ids[0]} { // the higher id first
		d := storetest.NewDelivery(batch, now)
		d.ID = id
		d.IsAutomatic = i == 0 // a batch has at most one automatic delivery
		require.NoError(t, db.Store.Insert(ctx, d))
		if i == 0 { // finish it, so the batch may take another
			c, err := db.Store.ClaimOne(ctx, id, now, time.Hour)
			require.NoError(t, err)
			require.NotNil(t, c)
			require.NoError(t, db.Store.Record(ctx, c.LeaseToken, store.Result{
				DeliveryID: id,
				Attempt:    store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: id, AttemptNumber: 1, StatusCode: 200, CreatedAt: now},
				Status:     store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
			}))
		}
	}
	h, err := db.Store.History(ctx, batch)
	require.NoError(t, err)
	require.Len(t, h, 2)
	assert.Equal(t, []uuid.UUID{ids[1], ids[0]}, []uuid.UUID{h[0].ID, h[1].ID}, "equal CreatedAt: greater id first")
	latest, err := db.Store.Latest(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, ids[1], latest.ID, "equal CreatedAt: the greater id is the latest")
}

// Guards against readSnapshot reading at READ COMMITTED instead of REPEATABLE READ.
// Get reads the delivery, then waits for its attempts query behind a lock
// that another transaction holds while it records an attempt; the attempts
// Get returns must still match the AttemptCount it read.
func TestGetReadsOneSnapshot(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	pool := newPool(t, db.DSN, 1) // one connection: Get's statements are prepared when the lock is taken
	st := db.NewStore(t, pool, nil)
	now := time.Now().Truncate(time.Microsecond)
	d := storetest.NewDelivery(uuid.New(), now)
	require.NoError(t, st.Insert(ctx, d))
	_, err := st.Get(ctx, d.ID) // prepares Get's statements on the one connection
	require.NoError(t, err)

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, "LOCK TABLE "+db.Schema+".attempts IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)

	type got struct {
		d   *store.Delivery
		err error
	}
	done := make(chan got, 1)
	go func() {
		g, err := st.Get(ctx, d.ID)
		done <- got{g, err}
	}()
	require.Eventually(t, func() bool { // Get waits for the attempts
		var waiting bool
		err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE NOT granted AND relation = to_regclass($1))`, db.Schema+".attempts").Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, 5*time.Millisecond)
	_, err = tx.Exec(ctx, "UPDATE "+db.Schema+".deliveries SET attempt_count = 1 WHERE id = $1", d.ID)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO "+db.Schema+`.attempts (id, delivery_id, attempt_number, response_time_ms, created_at)
		VALUES ($1, $2, 1, 5, $3)`, uuid.Must(uuid.NewV7()), d.ID, now)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	select {
	case g := <-done:
		require.NoError(t, g.err)
		assert.Len(t, g.d.Attempts, g.d.AttemptCount, "AttemptCount and Attempts from one snapshot")
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not return")
	}
}

// Guards against Migrate not restoring the role's lock_timeout after taking the
// migration lock. The migration's own statements must wait for table locks
// no longer than the operator allows: here schema_migrations exists (at
// version 0) and another transaction holds it locked, so Migrate must fail
// with a lock timeout rather than wait for it.
func TestMigrateKeepsTheLockTimeoutForItsStatements(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	admin := newPool(t, dsn, 0)
	schema := freshSchema()
	t.Cleanup(func() {
		_, err := admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		assert.NoError(t, err)
	})
	_, err := admin.Exec(ctx, "CREATE SCHEMA "+schema+"; CREATE TABLE "+schema+`.schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)

	tx, err := admin.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+schema+".schema_migrations IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	release := time.AfterFunc(3*time.Second, func() { tx.Rollback(context.Background()) })
	defer func() {
		release.Stop()
		tx.Rollback(context.Background())
	}()

	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = "100ms"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st, err := postgres.New(pool, postgres.Options{Schema: schema})
	require.NoError(t, err)

	start := time.Now()
	err = st.Migrate(ctx)
	require.Error(t, err, "schema_migrations is locked for longer than lock_timeout")
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%v", err)
	assert.Equal(t, "55P03", pgErr.Code, "lock_not_available")
	assert.Less(t, time.Since(start), 2*time.Second, "it gave up after lock_timeout")
}

// Guards against execError treating an error pgconn marks safe to retry (nothing was
// sent) as an unknown outcome. The caller's context ends after the pool
// hands over a connection and before the statement is sent.
func TestWriteWhoseContextEndsBeforeSendingIsNotAnUnknownOutcome(t *testing.T) {
	db := newTestDB(t)
	cfg, err := pgxpool.ParseConfig(db.DSN)
	require.NoError(t, err)
	type cancelKey struct{}
	cfg.PrepareConn = func(ctx context.Context, _ *pgx.Conn) (bool, error) {
		if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
			cancel()
		}
		return true, nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := db.NewStore(t, pool, func(o *postgres.Options) { o.DisableGroupCommit = true })

	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, cancelKey{}, cancel)
	err = st.Insert(ctx, storetest.NewDelivery(uuid.New(), time.Now()))
	require.Error(t, err)
	require.True(t, pgconn.SafeToRetry(err), "pgx sent nothing: %v", err)
	assert.NotContains(t, err.Error(), "outcome is unknown", "nothing was sent, so nothing applied")
}

// Guards against synchronous_commit off set by any statement other than Claim's (the
// record statement, say), and a Claim that no longer sets it. A trigger
// notes the setting in force when each statement writes a delivery.
func TestOnlyClaimsCommitWithoutWaitingForTheDisk(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(db.DSN)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on" // as in production
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := db.Schema
	_, err = db.Pool.Exec(ctx, `CREATE TABLE `+s+`.seen (op text, sync text);
CREATE FUNCTION `+s+`.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO `+s+`.seen VALUES (TG_OP, current_setting('synchronous_commit'));
	RETURN NULL;
END $$;
CREATE TRIGGER note AFTER INSERT OR UPDATE ON `+s+`.deliveries FOR EACH ROW EXECUTE FUNCTION `+s+`.note();`)
	require.NoError(t, err)

	for _, group := range []bool{false, true} {
		st := db.NewStore(t, pool, func(o *postgres.Options) { o.DisableGroupCommit = !group })
		_, err = db.Pool.Exec(ctx, "TRUNCATE "+s+".seen")
		require.NoError(t, err)
		now := time.Now().Truncate(time.Microsecond)
		require.NoError(t, st.Insert(ctx, storetest.NewDelivery(uuid.New(), now)))
		claimed, err := st.Claim(ctx, now, 1, time.Hour)
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		c := claimed[0]
		require.NoError(t, st.Release(ctx, c.ID, c.LeaseToken, now))
		one, err := st.ClaimOne(ctx, c.ID, now, time.Hour)
		require.NoError(t, err)
		require.NotNil(t, one)
		require.NoError(t, st.Record(ctx, one.LeaseToken, store.Result{
			DeliveryID: c.ID,
			Attempt:    store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: c.ID, AttemptNumber: 1, StatusCode: 200, CreatedAt: now},
			Status:     store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
		}))

		rows, err := db.Pool.Query(ctx, "SELECT op || ':' || sync FROM "+s+".seen ORDER BY ctid")
		require.NoError(t, err)
		seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		// insert, claim, release, claim one, record
		assert.Equal(t, []string{"INSERT:on", "UPDATE:off", "UPDATE:on", "UPDATE:off", "UPDATE:on"}, seen, "group commit %v", group)
	}
}

// Guards against insertConflict checking the pending guard only for non-automatic
// deliveries (case pending.Valid && !d.IsAutomatic): an automatic delivery
// refused because of a pending manual one would be told only "a conflicting
// delivery", without naming the pending delivery in the way.
func TestInsertConflictNamesThePendingDelivery(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	batch := uuid.New()
	manual := storetest.NewDelivery(batch, now)
	manual.IsAutomatic = false
	require.NoError(t, db.Store.Insert(ctx, manual))
	for _, group := range []bool{false, true} {
		st := db.NewStore(t, db.Pool, func(o *postgres.Options) { o.DisableGroupCommit = !group })
		err := st.Insert(ctx, storetest.NewDelivery(batch, now)) // automatic
		require.ErrorIs(t, err, store.ErrConflict)
		assert.Contains(t, err.Error(), "pending delivery "+manual.ID.String(), "group commit %v", group)
	}
}

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
	claimed, tokens, rs := recordGroupOf(t, db)
	tokens[0] = uuid.New() // never its lease
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

// recordGroupOf inserts two deliveries, claims both, and returns them with
// their lease tokens and a successful first attempt for each, for
// RecordGroup; a test changes one call before writing the group.
func recordGroupOf(t *testing.T, db *testDB) (claimed []*store.Delivery, tokens []uuid.UUID, rs []store.Result) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	for range 2 {
		require.NoError(t, db.Store.Insert(ctx, storetest.NewDelivery(uuid.New(), now)))
	}
	claimed, err := db.Store.Claim(ctx, now, 2, time.Hour)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	for _, c := range claimed {
		tokens = append(tokens, c.LeaseToken)
		rs = append(rs, store.Result{
			DeliveryID: c.ID,
			Attempt:    store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: c.ID, AttemptNumber: 1, StatusCode: 200, CreatedAt: now},
			Status:     store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
		})
	}
	return claimed, tokens, rs
}

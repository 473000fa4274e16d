package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/storetest"
)

// The outbox: the host marks its batch done and enqueues the callback in one
// transaction. A rollback leaves neither the batch change nor a delivery, and
// nothing is sent; a commit makes both visible, and the callback is sent.
func TestOutbox(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	secret := newSecret(t)
	rc := newReceiver(t, 0, secret)
	d := newDeliverer(t, db.Store, newSigner(t, secret), nil)
	_, err := db.Pool.Exec(ctx, "CREATE TABLE "+db.Schema+".batches (id uuid PRIMARY KEY, status text NOT NULL)")
	require.NoError(t, err)

	// finish is the host's job: mark the batch done and enqueue its
	// callback, in one transaction that commits or rolls back.
	finish := func(batch uuid.UUID, commit bool) *store.Delivery {
		t.Helper()
		var rec *store.Delivery
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO "+db.Schema+".batches (id, status) VALUES ($1, 'succeeded')", batch); err != nil {
				return err
			}
			var err error
			rec, err = d.DeliverTx(ctx, db.Store.Tx(tx), rc.URL, callback(batch))
			require.NoError(t, err)
			if !commit {
				return errRollback
			}
			return nil
		})
		if commit {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, errRollback)
		}
		return rec
	}

	lost := finish(uuid.New(), false)
	_, err = db.Store.Get(ctx, lost.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "a rolled-back transaction must leave no delivery")
	hist, err := db.Store.History(ctx, lost.BatchID)
	require.NoError(t, err)
	assert.Empty(t, hist, "a rolled-back transaction must leave no delivery")
	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".batches").Scan(&n))
	assert.Zero(t, n, "nor the host's own change")

	kept := finish(uuid.New(), true)
	got := waitTerminal(t, db.Store, []uuid.UUID{kept.ID}, 10*time.Second)[0]
	assert.Equal(t, store.StatusSucceeded, got.Status, "a committed delivery must be delivered")
	receipts, _, total := rc.counts()
	assert.Equal(t, map[string]int{kept.ID.String(): 1}, receipts, "only the committed callback may reach the receiver")
	assert.Equal(t, 1, total)
}

// A conflict inside the host's transaction (the batch already has a pending
// delivery) returns ErrConflict and leaves the transaction usable.
func TestOutboxConflictKeepsTheTransactionUsable(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	secret := newSecret(t)
	rc := newReceiver(t, 0, secret)
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, secret), Store: db.Store, AllowPrivateNetworks: true})
	require.NoError(t, err)

	batch := uuid.New()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	first, err := d.DeliverTx(ctx, db.Store.Tx(tx), rc.URL, callback(batch))
	require.NoError(t, err)
	second := callback(batch)
	second.DurationMS++
	_, err = d.DeliverTx(ctx, db.Store.Tx(tx), rc.URL, second)
	require.ErrorIs(t, err, store.ErrConflict, "a second automatic delivery of the batch must conflict")
	var one int
	require.NoError(t, tx.QueryRow(ctx, "SELECT 1").Scan(&one), "the transaction must still be usable after a conflict")
	require.NoError(t, tx.Commit(ctx))
	got, err := db.Store.Get(ctx, first.ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusPending, got.Status)
}

// A conflict in a transaction that the host wraps (tracing, say) so that
// Conn returns nil is still a conflict, not a panic.
func TestOutboxConflictThroughAWrappedTransaction(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	ins := db.Store.Tx(connless{tx})
	batch := uuid.New()
	require.NoError(t, ins.Insert(ctx, storetest.NewDelivery(batch, time.Now())))
	require.ErrorIs(t, ins.Insert(ctx, storetest.NewDelivery(batch, time.Now())), store.ErrConflict)
}

// connless is a pgx.Tx whose Conn is nil.
type connless struct{ pgx.Tx }

func (connless) Conn() *pgx.Conn { return nil }

var errRollback = rollbackError{}

type rollbackError struct{}

func (rollbackError) Error() string { return "roll back" }

// A host transaction that inserted a delivery and has not committed holds up
// an Insert of the same batch, which must wait to learn whether it
// conflicts, but no other Insert: a group statement gives up waiting for the
// lock, and its calls are then written one by one, each waiting only for
// itself.
func TestOpenHostTransactionHoldsUpOnlyItsBatch(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	batch := uuid.New()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	require.NoError(t, db.Store.Tx(tx).Insert(ctx, storetest.NewDelivery(batch, time.Now())))

	same := make(chan error, 1)
	go func() { same <- db.Store.Insert(ctx, storetest.NewDelivery(batch, time.Now())) }()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, db.Schema).Scan(&n))
		return n > 0
	}, 10*time.Second, 5*time.Millisecond, "the Insert of the transaction's batch never waited for its lock")

	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, db.Store.Insert(octx, storetest.NewDelivery(uuid.New(), time.Now())),
		"an Insert of another batch must not wait for the host's transaction")
	assert.Less(t, time.Since(start), 5*time.Second)
	select {
	case err := <-same:
		t.Fatalf("the Insert of the transaction's batch returned (%v) while the transaction is open", err)
	default:
	}

	require.NoError(t, tx.Rollback(ctx))
	select {
	case err := <-same:
		require.NoError(t, err, "once the transaction rolled back, the batch has no pending delivery")
	case <-time.After(10 * time.Second):
		t.Fatal("the Insert of the batch did not finish after the rollback")
	}
}

// Inserts held up by a host transaction, whose callers gave up, stop
// waiting with them: after a group statement gives up on the lock, each
// call is written alone within its caller's context, so none goes on
// holding a pool connection (and waiting for the lock) for its caller.
func TestInsertsHeldUpByAHostTransactionEndWithTheirCallers(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	st := db.NewStore(t, newPool(t, db.DSN, 2), nil)
	batch := uuid.New()
	tx, err := db.Pool.Begin(ctx) // the host's, on a pool of its own
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	require.NoError(t, st.Tx(tx).Insert(ctx, storetest.NewDelivery(batch, time.Now())))

	for i, err := range runConcurrently(2, func(int) error {
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		return st.Insert(c, storetest.NewDelivery(batch, time.Now()))
	}) {
		require.ErrorIs(t, err, context.DeadlineExceeded, "insert %d", i)
	}
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, db.Schema).Scan(&n))
		return n == 0
	}, 5*time.Second, 10*time.Millisecond, "inserts whose callers gave up still wait for the host's lock")
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = st.Claim(c, time.Now(), 1, time.Minute)
	require.NoError(t, err, "the Store's pool is free again")
}

// At REPEATABLE READ, a conflicting delivery committed after the host's
// snapshot was taken is, as PostgreSQL has it, a serialization failure that
// aborts the transaction (Tx says so), not an ErrConflict that leaves it
// usable; at READ COMMITTED it is an ErrConflict.
func TestOutboxConflictAtRepeatableReadIsASerializationFailure(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	for _, iso := range []pgx.TxIsoLevel{pgx.RepeatableRead, pgx.ReadCommitted} {
		batch := uuid.New()
		tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso})
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "SELECT 1") // takes the snapshot
		require.NoError(t, err)
		require.NoError(t, db.Store.Insert(ctx, storetest.NewDelivery(batch, time.Now())), "another replica's delivery of the batch")

		err = db.Store.Tx(tx).Insert(ctx, storetest.NewDelivery(batch, time.Now()))
		_, probe := tx.Exec(ctx, "SELECT 1")
		if iso == pgx.RepeatableRead {
			pgErr, ok := errors.AsType[*pgconn.PgError](err)
			if assert.True(t, ok, "want a PostgreSQL error, got %v", err) {
				assert.Equal(t, "40001", pgErr.Code)
			}
			assert.Error(t, probe, "the transaction is aborted")
		} else {
			assert.ErrorIs(t, err, store.ErrConflict)
			assert.NoError(t, probe, "a conflict leaves the transaction usable")
		}
		require.NoError(t, tx.Rollback(ctx))
	}
}

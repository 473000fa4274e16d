package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
	"github.com/hookline/hookline/storetest"
)

// The Store's writes are written for READ COMMITTED; a role or connection
// string whose default isolation is stricter must still get the documented
// answers (ErrConflict, ErrLeaseLost, claims that skip each other), not
// serialization failures.
func TestConformanceAtStricterDefaultIsolation(t *testing.T) {
	testDSN(t)
	for _, level := range []string{"repeatable read", "serializable"} {
		for _, group := range []bool{true, false} {
			name := level
			if !group {
				name += "/NoGroupCommit"
			}
			t.Run(name, func(t *testing.T) {
				storetest.Run(t, func(t *testing.T) store.Store {
					db := newTestDB(t)
					dsn := withParam(db.DSN, "default_transaction_isolation", level)
					return db.NewStore(t, newPool(t, dsn, 0), func(o *postgres.Options) { o.DisableGroupCommit = !group })
				})
			})
		}
	}
}

// A service role that owns its schema, made for it by an administrator, but
// may not create schemas in the database, migrates its schema.
func TestMigrateIntoAnExistingSchemaWithoutCreateOnTheDatabase(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	schema := db.Schema + "_own"
	role := "hookline_test_owner_" + db.Schema[len(db.Schema)-12:]
	t.Cleanup(func() {
		db.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		db.Pool.Exec(ctx, "DROP OWNED BY "+role)
		db.Pool.Exec(ctx, "DROP ROLE "+role)
	})
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"CREATE SCHEMA " + schema + " AUTHORIZATION " + role,
	} {
		_, err := db.Pool.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	pool := poolAs(t, db, role)
	st, err := postgres.New(pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	require.NoError(t, st.Migrate(ctx))
	require.NoError(t, st.Insert(ctx, storetest.NewDelivery(uuid.New(), time.Now())))
}

func TestCheckSchemaRefusesPostgresOwnPrefix(t *testing.T) {
	for _, s := range []string{"pg_hooks", "pg_"} {
		assert.ErrorContains(t, postgres.CheckSchema(s), "pg_", s)
	}
	for _, s := range []string{"pgx_hooks", "PG_x", "Pg_hooks"} { // quoted, so PostgreSQL takes them
		assert.NoError(t, postgres.CheckSchema(s), s)
	}
}

// Replicas that start together migrate one schema whatever lock_timeout or
// statement_timeout their role or connection string sets: a replica waits
// for the one migrating.
func TestConcurrentMigrateWithShortTimeouts(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	schema := db.Schema + "_late"
	t.Cleanup(func() { db.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	dsn := viaProxy(t, db, serverAddr(t, db), "lock_timeout", "1", "statement_timeout", "5")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		st := db.NewStore(t, newPool(t, dsn, 2), func(o *postgres.Options) { o.Schema = schema })
		wg.Go(func() { errs[i] = st.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "replica %d", i)
	}
}

// A Notify listener is not ended again and again by an idle_session_timeout
// shorter than its pings.
func TestListenerSurvivesAShortIdleSessionTimeout(t *testing.T) {
	db := newTestDB(t)
	dsn := viaProxy(t, db, serverAddr(t, db), "idle_session_timeout", "200")
	st := db.NewStore(t, newPool(t, dsn, 0), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := st.Notify(ctx)
	wakeups := 0
	for end := time.After(1500 * time.Millisecond); ; { // several timeouts' worth
		select {
		case <-ch:
			wakeups++
			continue
		case <-end:
		}
		break
	}
	assert.LessOrEqual(t, wakeups, 1, "each reconnect wakes the listener's reader; there should be none")
}

// withParam adds the run-time parameter name=value to dsn, a URL. (url.Values
// would write a space as "+", which the server would read as a "+".)
func withParam(dsn, name, value string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + name + "=" + url.PathEscape(value)
}

// A write that was never sent, for want of a connection, changed nothing,
// and says so plainly: not that its outcome is unknown.
func TestWriteNeverSentIsNotAnUnknownOutcome(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	pool := newPool(t, db.DSN, 1)
	st := db.NewStore(t, pool, func(o *postgres.Options) { o.DisableGroupCommit = true })
	now := time.Now().Truncate(time.Microsecond)
	require.NoError(t, st.Insert(ctx, storetest.NewDelivery(uuid.New(), now)))
	claimed, err := st.Claim(ctx, now, 1, time.Hour)
	require.NoError(t, err)
	require.Len(t, claimed, 1)

	held, err := pool.Acquire(ctx) // the pool's only connection
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	for name, err := range map[string]error{
		"insert":  st.Insert(short, storetest.NewDelivery(uuid.New(), now)),
		"release": st.Release(short, claimed[0].ID, claimed[0].LeaseToken, now),
	} {
		require.Error(t, err, name)
		assert.NotContains(t, err.Error(), "outcome is unknown", name)
	}
	held.Release()
	pool.Close()
	err = st.Insert(ctx, storetest.NewDelivery(uuid.New(), now))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "outcome is unknown", "a closed pool sends nothing")
}

// panickyTracer panics in its first query start, as a host's broken tracing
// hook might.
type panickyTracer struct{ fired atomic.Bool }

func (p *panickyTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if p.fired.CompareAndSwap(false, true) {
		panic("tracer")
	}
	return ctx
}

func (p *panickyTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A panic during a write of the Store's own gives its connection back to
// the pool, as pgxpool's own Exec does.
func TestPanicDuringAWriteReleasesTheConnection(t *testing.T) {
	db := newTestDB(t)
	cfg, err := pgxpool.ParseConfig(db.DSN)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = &panickyTracer{}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		if pool.Stat().AcquiredConns() == 0 { // Close would wait for a leaked connection forever
			pool.Close()
		}
	})
	st := db.NewStore(t, pool, func(o *postgres.Options) { o.DisableGroupCommit = true })
	func() {
		defer func() { recover() }()
		st.Insert(context.Background(), storetest.NewDelivery(uuid.New(), time.Now()))
	}()
	assert.Zero(t, pool.Stat().AcquiredConns(), "the connection went back to the pool")
}

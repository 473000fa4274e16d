package postgres_test

import (
	"context"
	"net"
	"net/url"
	"runtime"
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

// listenerPID waits until a Notify listener of schema other than old
// listens, and returns its backend's pid.
func listenerPID(t *testing.T, db *testDB, old int32) int32 {
	t.Helper()
	var pid int32
	require.Eventually(t, func() bool {
		err := db.Pool.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND query = $2 AND pid <> $3`,
			postgres.ListenerApplicationName, `LISTEN "hookline:`+db.Schema+`"`, old).Scan(&pid)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "no listener of schema %s", db.Schema)
	return pid
}

// drain empties a notification channel.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// insertOne inserts a new pending delivery through st.
func insertOne(t *testing.T, st store.Inserter) {
	t.Helper()
	require.NoError(t, st.Insert(context.Background(), storetest.NewDelivery(uuid.New(), time.Now())))
}

func awaitNotification(t *testing.T, ch <-chan struct{}, why string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("no notification within 5 s: %s", why)
	}
}

func TestNotifyWakesAnotherReplica(t *testing.T) {
	db := newTestDB(t)
	listener := db.NewStore(t, nil, nil) // its own pool, as another process
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := listener.Notify(ctx)
	listenerPID(t, db, 0)

	start := time.Now()
	insertOne(t, db.Store)
	awaitNotification(t, ch, "an Insert through another Store must wake the listener")
	t.Logf("woken %s after the insert began", time.Since(start))

	tx, err := db.Pool.Begin(context.Background())
	require.NoError(t, err)
	insertOne(t, db.Store.Tx(tx))
	require.NoError(t, tx.Commit(context.Background()))
	awaitNotification(t, ch, "a committed Tx insert must wake the listener")
}

// The notification of an insert made in a transaction is sent on commit,
// and never for a rollback. A raw LISTEN connection sees the exact sequence.
// listen returns a connection of its own listening on the schema's channel,
// and the channel's name.
func listen(t *testing.T, db *testDB) (*pgx.Conn, string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), db.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	channel := "hookline:" + db.Schema
	_, err = conn.Exec(context.Background(), "LISTEN "+pgx.Identifier{channel}.Sanitize())
	require.NoError(t, err)
	return conn, channel
}

// nextPayload returns the payload of the next notification conn receives,
// waiting at most 5 s.
func nextPayload(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	wait, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(wait)
	require.NoError(t, err)
	return n.Payload
}

// nothingNotified sends a marker on channel and requires it to be the next
// notification conn receives: nothing was notified before it.
func nothingNotified(t *testing.T, db *testDB, conn *pgx.Conn, channel, why string) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), "SELECT pg_notify($1, 'marker')", channel)
	require.NoError(t, err)
	assert.Equal(t, "marker", nextPayload(t, conn), why)
}

func TestNotifyOnlyOnCommit(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	conn, channel := listen(t, db)

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	insertOne(t, db.Store.Tx(tx))
	require.NoError(t, tx.Rollback(ctx))
	nothingNotified(t, db, conn, channel, "a rolled-back insert must send no notification")

	tx, err = db.Pool.Begin(ctx)
	require.NoError(t, err)
	insertOne(t, db.Store.Tx(tx))
	insertOne(t, db.Store.Tx(tx))
	require.NoError(t, tx.Commit(ctx))
	assert.Equal(t, "", nextPayload(t, conn), "a committed insert must notify")
}

func TestNotifyResumesAfterTheListenerIsTerminated(t *testing.T) {
	db := newTestDB(t)
	listener := db.NewStore(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := listener.Notify(ctx)
	pid := listenerPID(t, db, 0)

	var ok bool
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok))
	require.True(t, ok)
	listenerPID(t, db, pid) // reconnected

	// After reconnecting the listener sends one value of its own (it may
	// have missed notifications); so two rounds, the second of which only
	// an insert can satisfy.
	for range 2 {
		drain(ch)
		insertOne(t, db.Store)
		awaitNotification(t, ch, "notifications must resume after the listener's connection was terminated")
	}
}

func TestNotifyStopsWithItsContext(t *testing.T) {
	db := newTestDB(t)
	// Listeners of earlier tests, whose contexts have ended, are gone too.
	require.Eventually(t, func() bool { return listenerGoroutines() == 0 }, 5*time.Second, time.Millisecond,
		"listeners of earlier tests are still running after their contexts ended")
	ctx, cancel := context.WithCancel(context.Background())
	db.Store.Notify(ctx)
	db.Store.Notify(ctx)
	require.Eventually(t, func() bool { return listenerGoroutines() == 2 }, 5*time.Second, time.Millisecond)
	listenerPID(t, db, 0)

	cancel()
	require.Eventually(t, func() bool { return listenerGoroutines() == 0 }, 5*time.Second, time.Millisecond,
		"the listener goroutines must return when their context ends")
	var n int
	require.Eventually(t, func() bool {
		require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE $2",
			postgres.ListenerApplicationName, "%"+db.Schema+"%").Scan(&n))
		return n == 0
	}, 5*time.Second, 5*time.Millisecond, "the listeners must close their connections when their context ends")
}

// listenerGoroutines counts the goroutines running a Notify listener.
func listenerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "store/postgres.(*Store).listen(")
}

// Deliveries inserted leased (InsertLeased, here concurrently, so in groups)
// notify nobody: no other process may claim them before the lease expires.
// A plain Insert in the same group still notifies.
func TestInsertLeasedNotifiesNobody(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	conn, channel := listen(t, db)

	now := time.Now().Truncate(time.Microsecond)
	ds := make([]*store.Delivery, 40)
	for i := range ds {
		ds[i] = storetest.NewDelivery(uuid.New(), now)
		ds[i].LeaseToken = uuid.New()
		ds[i].LeaseExpiresAt = now.Add(time.Hour)
	}
	errs := runConcurrently(len(ds), func(i int) error { return db.Store.InsertLeased(ctx, ds[i]) })
	for i, err := range errs {
		require.NoError(t, err, "InsertLeased %d", i)
	}
	nothingNotified(t, db, conn, channel, "a leased insert must send no notification")
	for _, d := range ds {
		got, err := db.Store.Get(ctx, d.ID)
		require.NoError(t, err)
		assert.Equal(t, d.LeaseToken, got.LeaseToken, "delivery %s keeps its caller's lease", d.ID)
	}
	claimed, err := db.Store.Claim(ctx, now.Add(time.Minute), 100, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, claimed, "nothing inserted leased is due before its lease expires")

	insertOne(t, db.Store)
	assert.Equal(t, "", nextPayload(t, conn), "a plain insert notifies")
}

// The listener connects as the pool does, hooks included: here the pool's
// BeforeConnect supplies the port (as it might a short-lived password or
// the current primary), and its AfterConnect sets up each session.
func TestNotifyListenerUsesThePoolsHooks(t *testing.T) {
	db := newTestDB(t)
	direct, err := pgxpool.ParseConfig(db.DSN)
	require.NoError(t, err)
	port := direct.ConnConfig.Port
	u, err := url.Parse(db.DSN)
	require.NoError(t, err)
	u.Host = u.Hostname() + ":1" // nothing listens there
	cfg, err := pgxpool.ParseConfig(u.String())
	require.NoError(t, err)
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		cc.Port = port
		return nil
	}
	var listenerSetUp atomic.Bool
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		if c.Config().RuntimeParams["application_name"] == postgres.ListenerApplicationName {
			listenerSetUp.Store(true)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := db.NewStore(t, pool, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := st.Notify(ctx)
	listenerPID(t, db, 0)
	assert.True(t, listenerSetUp.Load(), "AfterConnect did not run on the listener's connection")
	insertOne(t, db.Store)
	awaitNotification(t, ch, "the listener connected through the pool's BeforeConnect")
}

// blackhole is a TCP proxy whose connections can go silent: after freeze,
// the bytes of the connections open at that moment are dropped both ways
// and nothing is closed, as when a route or a NAT entry disappears. Later
// connections pass.
type blackhole struct {
	addr   string
	mu     sync.Mutex
	frozen map[net.Conn]bool // client side of each connection
}

func newBlackhole(t *testing.T, target string) *blackhole {
	b := &blackhole{frozen: map[net.Conn]bool{}}
	b.addr = newProxy(t, target, func(c, s net.Conn) {
		b.mu.Lock()
		b.frozen[c] = false
		b.mu.Unlock()
		go b.pipe(c, s, c)
		go b.pipe(c, c, s)
	})
	return b
}

// pipe copies src to dst until either fails, dropping the bytes once the
// connection of client c is frozen.
func (b *blackhole) pipe(c, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		b.mu.Lock()
		frozen := b.frozen[c]
		b.mu.Unlock()
		if !frozen {
			if _, err := dst.Write(buf[:n]); err != nil {
				src.Close()
				return
			}
		}
	}
}

// freeze silences every connection open now.
func (b *blackhole) freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.frozen {
		b.frozen[c] = true
	}
}

// A listener whose connection dies without a word notices it: after a
// while without notifications it pings, gets no answer, and listens again
// on a new connection (signalling once, since notifications may have been
// lost meanwhile).
func TestNotifyListenerNoticesASilentlyDeadConnection(t *testing.T) {
	postgres.SetListenTimes(t, 200*time.Millisecond, 300*time.Millisecond)
	db := newTestDB(t)
	bh := newBlackhole(t, serverAddr(t, db))
	st := db.NewStore(t, newPool(t, viaProxy(t, db, bh.addr), 0), nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := st.Notify(ctx)
	old := listenerPID(t, db, 0)
	time.Sleep(500 * time.Millisecond) // idle long enough to ping and be answered at least once
	drain(ch)
	bh.freeze()
	awaitNotification(t, ch, "the listener did not notice that its connection went silent")
	listenerPID(t, db, old)
	drain(ch)
	insertOne(t, db.Store)
	awaitNotification(t, ch, "the new listener must hear inserts")
}

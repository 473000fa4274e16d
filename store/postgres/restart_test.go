package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
)

// recordWatch is the Postgres Store with every failed Record counted per
// delivery: an attempt whose Record failed may be sent again once its lease
// expires, and only such attempts may reach the receiver twice. Embedding
// keeps Notify, so the Deliverer still listens.
type recordWatch struct {
	*postgres.Store
	mu     sync.Mutex
	failed map[uuid.UUID]int
}

func (w *recordWatch) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	err := w.Store.Record(ctx, token, r)
	if err != nil {
		w.mu.Lock()
		w.failed[r.DeliveryID]++
		w.mu.Unlock()
	}
	return err
}

func (w *recordWatch) failures(id uuid.UUID) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed[id]
}

// The database drops every connection of a running Deliverer (its pool's and
// its Notify listener's) three times, 200 ms apart, while 300 callbacks are
// being enqueued and sent, as a restart of PostgreSQL would: the Deliverer
// reconnects and every delivery ends succeeded with a truthful history. A
// callback may reach the receiver twice only when the Record of its attempt
// failed (the lease then expires and the delivery is attempted again).
//
// Only this test's connections are terminated, chosen by their
// application_name (the pool's) and by their LISTEN on this test's channel
// (the listener's), not every backend of the database: other tests, in other
// packages or processes, share the server and its database.
func TestPostgresRestartMidRun(t *testing.T) {
	const (
		callbacks = 300
		producers = 4
		kills     = 3
	)
	db := newTestDB(t) // db.Pool is the admin connection: never terminated
	appName := "hookline restart test " + db.Schema
	listenQuery := "LISTEN " + pgx.Identifier{"hookline:" + db.Schema}.Sanitize()

	cfg, err := pgxpool.ParseConfig(db.DSN)
	require.NoError(t, err)
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	cfg.ConnConfig.RuntimeParams["application_name"] = appName
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := &recordWatch{Store: db.NewStore(t, pool, nil), failed: map[uuid.UUID]int{}}

	secret := newSecret(t)
	rc := newReceiver(t, 20*time.Millisecond, secret) // attempts are in flight when the connections drop
	var storeErrs sync.Map                            // op -> *atomic.Int64
	d := newDeliverer(t, st, newSigner(t, secret), func(c *delivery.Config) {
		c.PollInterval = 100 * time.Millisecond
		c.Workers, c.MaxPerHost = 16, 16
		c.RetryPolicy = delivery.ExponentialRetryPolicy(100*time.Millisecond, time.Second)
		c.MaxAttempts = 20
		// A Claim or Record lost with its connection leaves the delivery
		// leased: a short lease makes it due again within the test.
		c.AttemptTimeout, c.Lease = 2*time.Second, 4*time.Second
		c.Observer.Error = func(op string, err error) {
			n, _ := storeErrs.LoadOrStore(op, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	})

	ctx := context.Background()
	listenerPID := func() (pid int32) {
		err := db.Pool.QueryRow(ctx, `SELECT coalesce(max(pid), 0) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1 AND query = $2`,
			postgres.ListenerApplicationName, listenQuery).Scan(&pid)
		require.NoError(t, err)
		return pid
	}
	require.Eventually(t, func() bool { return listenerPID() != 0 }, 5*time.Second, 20*time.Millisecond, "the Deliverer's Notify listener never connected")

	// Enqueue over about 1.5 s; the connections drop meanwhile. Deliver is
	// idempotent for a batch, so an enqueue that failed with its connection
	// is retried with the same batch until it is stored (or found stored).
	ids := make([]uuid.UUID, callbacks)
	var next, insertErrs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range producers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= callbacks {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * 5 * time.Millisecond)))
				batch := uuid.New()
				deadline := time.Now().Add(10 * time.Second)
				for {
					rec, err := d.Deliver(ctx, rc.URL, callback(batch))
					if err == nil {
						ids[i] = rec.ID
						break
					}
					insertErrs.Add(1)
					if time.Now().After(deadline) {
						t.Errorf("enqueue %d: still failing after 10 s: %v", i, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}

	// Drop the Deliverer's connections 3 times, 200 ms apart, from 400 ms on.
	var killed, killedListener int
	oldListener := listenerPID()
	time.Sleep(400 * time.Millisecond)
	for k := range kills {
		if k > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		var n, l int
		err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE application_name = $2)
			FROM (SELECT pg_terminate_backend(pid), application_name FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()
				AND (application_name = $1 OR (application_name = $2 AND query = $3))) t`,
			appName, postgres.ListenerApplicationName, listenQuery).Scan(&n, &l)
		require.NoError(t, err)
		_, busy, total := rc.counts()
		t.Logf("drop %d at %s: terminated %d connections (%d listener); receiver busy %d, received %d",
			k+1, time.Since(start).Round(time.Millisecond), n, l, busy, total)
		killed += n
		killedListener += l
	}
	require.Positive(t, killed, "no connection of the Deliverer was terminated: the test proves nothing")
	require.Positive(t, killedListener, "the Notify listener's connection was never terminated")

	wg.Wait()
	require.False(t, t.Failed())
	final := waitTerminal(t, db.Store, ids, 20*time.Second)
	elapsed := time.Since(start)

	// The listener reconnected: a new connection LISTENs on the channel.
	require.Eventually(t, func() bool {
		pid := listenerPID()
		return pid != 0 && pid != oldListener
	}, 10*time.Second, 20*time.Millisecond, "the Notify listener did not reconnect")

	receipts, _, total := rc.counts()
	var dups, recordFailures int
	for _, dl := range final {
		if !assert.Equal(t, store.StatusSucceeded, dl.Status, "delivery %s (%s: %s)", dl.ID, dl.FailureReason, dl.FailureDetail) {
			continue
		}
		assert.Equal(t, len(dl.Attempts), dl.AttemptCount, "delivery %s: attempt_count must equal the attempts recorded", dl.ID)
		if assert.NotEmpty(t, dl.Attempts, "delivery %s", dl.ID) {
			last := dl.Attempts[len(dl.Attempts)-1]
			assert.True(t, last.StatusCode >= 200 && last.StatusCode < 300, "delivery %s succeeded but its last attempt got %d", dl.ID, last.StatusCode)
			for j, a := range dl.Attempts {
				assert.Equal(t, j+1, a.AttemptNumber, "delivery %s: attempts must be numbered 1..n", dl.ID)
			}
		}
		got := receipts[dl.ID.String()]
		assert.GreaterOrEqual(t, got, max(1, dl.AttemptCount), "delivery %s: every recorded attempt must have reached the receiver", dl.ID)
		failed := st.failures(dl.ID)
		recordFailures += failed
		if extra := got - dl.AttemptCount; extra > 0 {
			dups += extra
			assert.LessOrEqual(t, extra, failed, "delivery %s was sent %d times more than recorded, but only %d Record calls failed: a send was duplicated without cause", dl.ID, extra, failed)
		}
	}
	var errs []any
	storeErrs.Range(func(op, n any) bool {
		errs = append(errs, op, n.(*atomic.Int64).Load())
		return true
	})
	t.Logf("%d callbacks in %s; %d requests received, %d duplicate sends, %d failed Record calls, %d failed enqueues; store errors by op: %v",
		callbacks, elapsed.Round(time.Millisecond), total, dups, recordFailures, insertErrs.Load(), errs)
}

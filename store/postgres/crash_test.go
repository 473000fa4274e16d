package postgres_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
)

// The crash test's child process is this test binary, run again with
// -test.run=^TestHelperProcess$ and these variables set.
const (
	crashChildEnv  = "HOOKLINE_CRASH_CHILD" // the schema to work on
	crashSecretEnv = "HOOKLINE_CRASH_SECRET"
	crashIDEnv     = "HOOKLINE_CRASH_SECRET_ID"
)

// Settings of the child's Deliverer: real time, short leases.
const (
	crashWorkers        = 8
	crashLease          = 2 * time.Second
	crashAttemptTimeout = time.Second
	crashReceiverDelay  = 300 * time.Millisecond
)

// A process delivering against a slow receiver is killed with SIGKILL while
// attempts are in flight; a fresh Deliverer on the same schema finishes the
// work once the dead process's leases expire. Every delivery ends succeeded
// with its attempts recorded, and the only callbacks received twice are
// among those the dead process held leases on when it died (at most
// 8×Workers: see the bound below). Uses the system clock: real leases must
// expire.
func TestCrashRecovery(t *testing.T) {
	const callbacks = 40
	db := newTestDB(t)
	ctx := context.Background()
	secret := newSecret(t)
	signer := newSigner(t, secret)
	rc := newReceiver(t, crashReceiverDelay, secret)

	// Enqueue the work through a Deliverer that is not started yet.
	finisher, err := delivery.New(delivery.Config{
		Signer: signer, Store: db.Store, AllowPrivateNetworks: true, Workers: crashWorkers,
		MaxPerHost: crashWorkers, Lease: crashLease, AttemptTimeout: crashAttemptTimeout, PollInterval: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	ids := make([]uuid.UUID, callbacks)
	for i := range ids {
		rec, err := finisher.Deliver(ctx, rc.URL, callback(uuid.New()))
		require.NoError(t, err)
		ids[i] = rec.ID
	}

	child := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v", "-test.timeout=2m")
	out := &lockedBuffer{}
	child.Stdout, child.Stderr = out, out
	child.Env = append(os.Environ(),
		crashChildEnv+"="+db.Schema,
		crashSecretEnv+"="+secretText(t, secret),
		crashIDEnv+"="+secret.ID().String(),
	)
	require.NoError(t, child.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			child.Process.Kill()
			child.Wait()
		}
	})

	// Kill it once it has finished some deliveries and has others in
	// flight at the receiver.
	require.Eventually(t, func() bool {
		_, busy, total := rc.counts()
		return total >= crashWorkers+4 && busy >= 2
	}, 30*time.Second, time.Millisecond, "the child never got going; its output:\n%s", out)
	_, busyAtKill, totalAtKill := rc.counts()
	require.NoError(t, child.Process.Kill()) // SIGKILL
	killed = true
	child.Wait()

	// Once the server has noticed that its backends are gone (a statement
	// of theirs may still commit), the deliveries leased by the dead
	// process are exactly those whose outcome it never recorded.
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", childAppName(db.Schema)).Scan(&n))
		return n == 0
	}, 10*time.Second, 5*time.Millisecond)
	var leased int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".deliveries WHERE lease_token IS NOT NULL").Scan(&leased))
	// A Deliverer holds at most 2×Workers claimed deliveries in attempts or
	// waiting for a worker (4×Workers while a Claim and Deliver's hand-offs
	// overlap), 2×Workers in hosts' queues and, with recorders, up to
	// 2×Workers attempts made and not yet recorded (Config.Workers).
	assert.LessOrEqual(t, leased, 8*crashWorkers, "the dead process held more leases than 8×Workers")

	require.NoError(t, finisher.Start(ctx))
	t.Cleanup(func() { finisher.Stop(context.Background()) })
	final := waitTerminal(t, db.Store, ids, 30*time.Second)

	receipts, _, total := rc.counts()
	duplicates := 0
	for _, d := range final {
		assert.Equal(t, store.StatusSucceeded, d.Status, "delivery %s", d.ID)
		if assert.Len(t, d.Attempts, d.AttemptCount, "delivery %s: every attempt counted must be recorded", d.ID) {
			for i, a := range d.Attempts {
				assert.Equal(t, i+1, a.AttemptNumber, "delivery %s: attempts must be numbered from 1 without gaps", d.ID)
			}
		}
		n := receipts[d.ID.String()]
		assert.GreaterOrEqual(t, n, d.AttemptCount, "delivery %s: each recorded attempt was received", d.ID)
		duplicates += max(0, n-1)
	}
	t.Logf("killed with %d requests in flight after %d received; %d leases left; %d requests in all, %d duplicate receipts (bound: %d leased ≤ 8×%d workers)",
		busyAtKill, totalAtKill, leased, total, duplicates, leased, crashWorkers)
	assert.LessOrEqual(t, duplicates, leased, "a callback may be received twice only if the dead process held its lease")
}

// lockedBuffer collects a child's output; String may be called while the
// child writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func childAppName(schema string) string { return "hookline crash child " + schema }

// secretText recovers the text of a test secret made by newSecret.
func secretText(t *testing.T, s signing.Secret) string {
	t.Helper()
	text, ok := secretTexts.Load(s.ID())
	require.True(t, ok, "secret %s was not made by newSecret", s.ID())
	return text.(string)
}

// TestHelperProcess is the child of TestCrashRecovery: a Deliverer that runs
// until it is killed. Run on its own it does nothing.
func TestHelperProcess(t *testing.T) {
	schema := os.Getenv(crashChildEnv)
	if schema == "" {
		return
	}
	secret, err := signing.NewSecret(uuid.MustParse(os.Getenv(crashIDEnv)), os.Getenv(crashSecretEnv))
	require.NoError(t, err)
	cfg, err := pgxpool.ParseConfig(testDSN(t))
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["application_name"] = childAppName(schema)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	st, err := postgres.New(pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	d, err := delivery.New(delivery.Config{
		Signer: newSigner(t, secret), Store: st, AllowPrivateNetworks: true, Workers: crashWorkers,
		MaxPerHost: crashWorkers, Lease: crashLease, AttemptTimeout: crashAttemptTimeout, PollInterval: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	// Wait to be killed; never outlive a parent that died.
	time.Sleep(time.Minute)
	t.Fatal("the crash child was not killed within a minute")
}

package postgres_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
)

// dsnEnv names the variable that points the tests at a PostgreSQL server.
const dsnEnv = "HOOKLINE_TEST_DATABASE_URL"

// testDSN returns the test database's DSN, or skips t (fails it under
// CI=true) when it is not set.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		testenv.SkipOrFail(t, "set "+dsnEnv+"=postgres://postgres@127.0.0.1:5432/test to run the PostgreSQL tests")
	}
	return dsn
}

// newPool opens a pool of at most maxConns connections (0: pgxpool's
// default) on dsn, checks that the server answers, and closes the pool when
// t ends. In tests its commits do not wait for the disk
// (synchronous_commit off), which changes nothing a test can see short of a
// crash of the server and keeps the many schemas the tests create cheap on
// a busy machine; in benchmarks commits are durable, as in production.
func newPool(t testing.TB, dsn string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err, "%s is not a valid DSN", dsnEnv)
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if _, bench := t.(*testing.B); !bench {
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("PostgreSQL at %s=%s is unreachable (%v); start it, or unset the variable to skip these tests", dsnEnv, dsn, err))
	}
	return pool
}

// testDB is a fresh schema, migrated, of the test database, dropped when
// the test ends: every test works in its own.
type testDB struct {
	DSN    string
	Schema string
	Pool   *pgxpool.Pool
	Store  *postgres.Store
}

// newTestDB makes a fresh schema for t and a Store on it, with a pool of
// its own.
func newTestDB(t testing.TB) *testDB {
	t.Helper()
	dsn := testDSN(t)
	pool := newPool(t, dsn, 0)
	db := &testDB{DSN: dsn, Schema: freshSchema(), Pool: pool}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+db.Schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", db.Schema, err)
		}
	})
	db.Store = db.NewStore(t, pool, nil)
	require.NoError(t, db.Store.Migrate(context.Background()), "migrate a fresh schema")
	return db
}

// NewStore returns another Store on the same schema through pool (a fresh
// pool of its own when pool is nil), as a second replica would have. edit,
// when not nil, changes its Options.
func (db *testDB) NewStore(t testing.TB, pool *pgxpool.Pool, edit func(*postgres.Options)) *postgres.Store {
	t.Helper()
	if pool == nil {
		pool = newPool(t, db.DSN, 0)
	}
	opts := postgres.Options{Schema: db.Schema}
	if edit != nil {
		edit(&opts)
	}
	s, err := postgres.New(pool, opts)
	require.NoError(t, err)
	return s
}

// freshSchema returns an unused schema name.
func freshSchema() string {
	var b [6]byte
	rand.Read(b[:])
	return "hookline_test_" + hex.EncodeToString(b[:])
}

// secretTexts maps the id of each secret newSecret made to its text, for
// handing a secret to a child process.
var secretTexts sync.Map

func newSecret(t testing.TB) signing.Secret {
	t.Helper()
	text := signing.GenerateSecret()
	s, err := signing.NewSecret(uuid.New(), text)
	require.NoError(t, err)
	secretTexts.Store(s.ID(), text)
	return s
}

// newSigner signs with both schemes under the prefix "Test".
func newSigner(t testing.TB, secrets ...signing.Secret) *signing.Signer {
	t.Helper()
	ring, err := signing.NewKeyRing(secrets[0], secrets[1:]...)
	require.NoError(t, err)
	s, err := signing.NewSigner(signing.SignerConfig{Keys: ring, Schemes: signing.SchemeStandard | signing.SchemeHex, Prefix: "Test"})
	require.NoError(t, err)
	return s
}

// newVerifier checks both schemes against the secrets.
func newVerifier(t testing.TB, secrets ...signing.Secret) *signing.Verifier {
	t.Helper()
	v, err := signing.NewVerifier(signing.VerifierConfig{Secrets: secrets, Schemes: signing.SchemeStandard | signing.SchemeHex, Prefix: "Test"})
	require.NoError(t, err)
	return v
}

// receiver is a loopback webhook endpoint for the tests: it verifies every
// request's signatures, counts receipts per Webhook-Id, and fails the test
// when two requests for one delivery overlap. Each request takes delay.
type receiver struct {
	t     testing.TB
	URL   string
	ver   *signing.Verifier
	delay time.Duration

	mu       sync.Mutex
	inflight map[string]int // Webhook-Id -> requests being served
	got      map[string]int // Webhook-Id -> requests received
	busy     int            // requests being served
	total    int
}

func newReceiver(t testing.TB, delay time.Duration, secrets ...signing.Secret) *receiver {
	t.Helper()
	rc := &receiver{t: t, ver: newVerifier(t, secrets...), delay: delay, inflight: map[string]int{}, got: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hooks/batches"
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the sender went away mid-request
	}
	if _, err := rc.ver.Verify(r.Header, body); err != nil {
		rc.t.Errorf("receiver: request for %s does not verify: %v", r.Header.Get(signing.HeaderWebhookID), err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := r.Header.Get(signing.HeaderWebhookID)
	rc.mu.Lock()
	if rc.inflight[id] > 0 {
		rc.t.Errorf("receiver: delivery %s is being attempted twice at once: a lease must keep other workers off it", id)
	}
	rc.inflight[id]++
	rc.got[id]++
	rc.busy++
	rc.total++
	rc.mu.Unlock()
	if rc.delay > 0 {
		select {
		case <-time.After(rc.delay):
		case <-r.Context().Done():
		}
	}
	rc.mu.Lock()
	rc.inflight[id]--
	rc.busy--
	rc.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// counts returns the receipts per Webhook-Id, the requests being served and
// the requests received in all.
func (rc *receiver) counts() (got map[string]int, busy, total int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return maps.Clone(rc.got), rc.busy, rc.total
}

// callback returns a small valid callback for batch.
func callback(batch uuid.UUID) payload.Callback {
	return payload.Callback{
		Event:       payload.EventBatchSucceeded,
		BatchID:     batch,
		Status:      payload.StatusSucceeded,
		Output:      json.RawMessage(`{"items":["é","<b>"],"total":2}`),
		DurationMS:  1500,
		CreatedAt:   time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC),
		CompletedAt: time.Date(2026, 5, 6, 10, 1, 42, 250000000, time.UTC),
		Metadata:    json.RawMessage(`{"customer":"acme"}`),
	}
}

// newDeliverer returns a started Deliverer on st that sends with signer to
// loopback receivers (AllowPrivateNetworks; MaxPerHost = Workers), edited by
// edit, and stops it when t ends.
func newDeliverer(t testing.TB, st store.Store, signer *signing.Signer, edit func(*delivery.Config)) *delivery.Deliverer {
	t.Helper()
	cfg := delivery.Config{Signer: signer, Store: st, PollInterval: 200 * time.Millisecond, AllowPrivateNetworks: true}
	if edit != nil {
		edit(&cfg)
	}
	if cfg.MaxPerHost == 0 {
		// Every test receiver is one host.
		cfg.MaxPerHost = cmp.Or(cfg.Workers, delivery.DefaultWorkers)
	}
	d, err := delivery.New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, d.Stop(ctx), "stop the Deliverer")
	})
	return d
}

// waitTerminal waits until every delivery of ids has ended and returns them.
func waitTerminal(t testing.TB, st store.Store, ids []uuid.UUID, within time.Duration) []*store.Delivery {
	t.Helper()
	out := make([]*store.Delivery, len(ids))
	i := 0
	require.Eventually(t, func() bool {
		for ; i < len(ids); i++ {
			d, err := st.Get(context.Background(), ids[i])
			require.NoError(t, err)
			if !d.Status.Terminal() {
				return false
			}
			out[i] = d
		}
		return true
	}, within, 10*time.Millisecond, "deliveries did not all end within %s", within)
	return out
}

// newPoolNoPing returns a pool that never connects, for tests that need a
// pool but no database.
func newPoolNoPing(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// poolAs opens a pool on db's database that logs in as role, closed when t
// ends.
func poolAs(t *testing.T, db *testDB, role string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.DSN)
	require.NoError(t, err)
	cfg.ConnConfig.User = role
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// newProxy listens on a loopback port and, for each connection it accepts,
// dials target and hands both ends to serve, which must copy between them;
// it returns the listening address. Everything is closed when t ends.
func newProxy(t *testing.T, target string, serve func(client, server net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			serve(c, s)
		}
	}()
	return ln.Addr().String()
}

// viaProxy returns db's DSN with its host replaced by addr, and extra query
// parameters set.
func viaProxy(t *testing.T, db *testDB, addr string, params ...string) string {
	t.Helper()
	u, err := url.Parse(db.DSN)
	require.NoError(t, err)
	u.Host = addr
	q := u.Query()
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// serverAddr is the host:port of db's server.
func serverAddr(t *testing.T, db *testDB) string {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.DSN)
	require.NoError(t, err)
	return net.JoinHostPort(cfg.ConnConfig.Host, fmt.Sprint(cfg.ConnConfig.Port))
}

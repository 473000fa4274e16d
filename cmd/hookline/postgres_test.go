package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
)

// freshSchema returns the test database's URL and a new schema name, dropped
// when the test ends. It skips without HOOKLINE_TEST_DATABASE_URL (fails in
// CI).
func freshSchema(t *testing.T) (dsn, schema string) {
	t.Helper()
	dsn = os.Getenv("HOOKLINE_TEST_DATABASE_URL")
	if dsn == "" {
		testenv.SkipOrFail(t, "HOOKLINE_TEST_DATABASE_URL is not set; set it to a Postgres URL to run the store commands")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema = "hookline_cli_" + hex.EncodeToString(b)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		assert.NoError(t, err)
		pool.Close()
	})
	_, err = pool.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	return dsn, schema
}

func TestPostgresCommands(t *testing.T) {
	t.Parallel()
	dsn, schema := freshSchema(t)
	dbEnv := []string{"HOOKLINE_DATABASE_URL=" + dsn}
	secret := signing.GenerateSecret()
	srv, verified := verifyingReceiver(t, secret)
	batch := uuid.NewString()

	// Before migrate: a clear runtime failure.
	r := hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--allow-private", "--dsn", dsn, "--schema", schema)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "run 'hookline migrate --schema "+schema+"' first")
	r = hookline(t, dbEnv, "history", batch, "--schema", schema)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "run 'hookline migrate --schema "+schema+"' first", "not a raw SQL error")

	r = hookline(t, dbEnv, "migrate", "--schema", schema)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stdout, "migrated from version 0 to")
	r = hookline(t, nil, "migrate", "--dsn", dsn, "--schema", schema, "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	var mig struct {
		Schema  string `json:"schema"`
		Version int    `json:"version"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &mig))
	assert.Equal(t, schema, mig.Schema)
	assert.Equal(t, postgres.SchemaVersion(), mig.Version)

	r = hookline(t, dbEnv, "history", batch, "--schema", schema, "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.JSONEq(t, "[]", r.stdout)
	r = hookline(t, dbEnv, "redeliver", batch, "--schema", schema)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "has no delivery")

	r = hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--allow-private", "--dsn", dsn, "--schema", schema, "--batch-id", batch, "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)

	// Another batch's delivery, due in the same queue: the host's business,
	// not redeliver --wait's.
	var otherCalls atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherCalls.Add(1) }))
	defer other.Close()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	defer pool.Close()
	pg, err := postgres.New(pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	now := time.Now()
	otherRec := &store.Delivery{ID: uuid.Must(uuid.NewV7()), BatchID: uuid.New(), CallbackURL: other.URL, Payload: []byte(`{}`),
		IsAutomatic: true, Status: store.StatusPending, MaxAttempts: 1, NextAttemptAt: now.Add(-time.Minute), CreatedAt: now, UpdatedAt: now}
	require.NoError(t, pg.Insert(context.Background(), otherRec))

	r = hookline(t, append(dbEnv, "HOOKLINE_SECRET="+secret), "redeliver", "--schema", schema, batch, "--wait", "--allow-private", "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	var redelivered map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &redelivered), "stdout: %s", r.stdout)
	assert.Equal(t, "succeeded", redelivered["status_code"])
	assert.Equal(t, false, redelivered["is_automatic"])
	assert.Equal(t, int32(2), verified.Load())
	assert.Equal(t, int32(0), otherCalls.Load(), "redeliver --wait sends its own delivery only")
	got, err := pg.Get(context.Background(), otherRec.ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusPending, got.Status)
	assert.Equal(t, 0, got.AttemptCount)

	r = hookline(t, dbEnv, "history", "--schema", schema, "--json", batch)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	var recs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &recs), "stdout: %s", r.stdout)
	require.Len(t, recs, 2)
	assert.Equal(t, redelivered["id"], recs[0]["id"], "newest first")
	for _, rec := range recs {
		assert.Equal(t, "succeeded", rec["status_code"])
		assert.Equal(t, batch, rec["batch_id"])
		assert.Len(t, rec["attempts"], 1)
	}
	assert.Equal(t, true, recs[1]["is_automatic"])
	assert.Equal(t, recs[0]["payload_bytes"], recs[1]["payload_bytes"], "the exact bytes again")

	// Without --wait it only enqueues (and signs nothing, so a secret in
	// the environment that could not sign is no concern of it); a second
	// one conflicts while pending.
	r = hookline(t, append(dbEnv, "HOOKLINE_SECRET=not-a-whsec-secret "), "redeliver", batch, "--schema", schema)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Regexp(t, `(?m)^status\s+PENDING$`, r.stdout)
	assert.Contains(t, r.stderr, "the host's Deliverer sends it")
	r = hookline(t, dbEnv, "redeliver", batch, "--schema", schema)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "still pending")

	r = hookline(t, dbEnv, "history", batch, "--schema", schema)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4)
	assert.Regexp(t, `^ID\s+AUTOMATIC\s+STATUS\s+ATTEMPTS\s+REASON\s+CREATED$`, lines[0])
	assert.Regexp(t, `\sfalse\s+pending\s+0/8\s+-\s`, lines[1])
	assert.Regexp(t, `\strue\s+succeeded\s+1/1\s+-\s`, lines[3])
	assert.Equal(t, int32(2), verified.Load(), "nothing sent without --wait")
}

func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	r := hookline(t, nil, "history", uuid.NewString(), "--dsn", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "hookline history: connect to the database")
}

// send --dsn again for a batch already delivered: with the same bytes it
// sends nothing and says so; with other bytes it points to redeliver.
func TestSendAgainToAStore(t *testing.T) {
	t.Parallel()
	dsn, schema := freshSchema(t)
	secret := signing.GenerateSecret()
	srv, verified := verifyingReceiver(t, secret)
	r := hookline(t, nil, "migrate", "--dsn", dsn, "--schema", schema)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	batch := uuid.NewString()
	file := filepath.Join(t.TempDir(), "cb.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"batch_id":"`+batch+`","created_at":"2026-05-01T10:00:00+00:00","completed_at":"2026-05-01T10:01:00+00:00"}`), 0o600))
	send := func(args ...string) result {
		return hookline(t, nil, append([]string{"send", "--url", srv.URL, "--secret", secret, "--allow-private", "--dsn", dsn, "--schema", schema}, args...)...)
	}

	r = send("--file", file)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Equal(t, int32(1), verified.Load())

	r = send("--file", file)
	assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stderr, "was already delivered")
	assert.Contains(t, r.stderr, "nothing sent")
	assert.Equal(t, int32(1), verified.Load(), "sent again")

	r = send("--batch-id", batch) // other times, so other bytes
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "hookline redeliver "+batch)
	assert.Equal(t, int32(1), verified.Load())
}

// migratedSchema is freshSchema, migrated, with a Store on it.
func migratedSchema(t *testing.T) (dsn, schema string, pg *postgres.Store) {
	t.Helper()
	dsn, schema = freshSchema(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	pg, err = postgres.New(pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	require.NoError(t, pg.Migrate(context.Background()))
	return dsn, schema, pg
}

// send --dsn makes the first attempt itself, with its own secret, although
// a host's Deliverer works the same schema: it inserted the delivery for
// anyone (a notification woke the host, which sent it with its own secret:
// a 401 at the receiver).
func TestSendWithARunningHost(t *testing.T) {
	t.Parallel()
	dsn, schema, pg := migratedSchema(t)
	secret := signing.GenerateSecret()
	srv, verified := verifyingReceiver(t, secret)

	hostSecret, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	require.NoError(t, err)
	ring, err := signing.NewKeyRing(hostSecret)
	require.NoError(t, err)
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	require.NoError(t, err)
	host, err := delivery.New(delivery.Config{Signer: signer, Store: pg, AllowPrivateNetworks: true, MaxAttempts: 1})
	require.NoError(t, err)
	require.NoError(t, host.Start(context.Background()))
	defer host.Stop(context.Background())

	for range 3 {
		r := hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--allow-private", "--dsn", dsn, "--schema", schema)
		assert.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
	assert.Equal(t, int32(3), verified.Load())
}

// Behind a backlog of other batches' due deliveries (the host is down), send
// --dsn sends its own at once and leaves the others as they were: it claimed
// them 2×Workers at a time, released them and waited a PollInterval, and
// moved every one's due time to "now".
func TestSendBehindABacklog(t *testing.T) {
	t.Parallel()
	dsn, schema, pg := migratedSchema(t)
	secret := signing.GenerateSecret()
	srv, verified := verifyingReceiver(t, secret)
	due := seedBacklog(t, pg, 100)

	start := time.Now()
	r := hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--allow-private", "--dsn", dsn, "--schema", schema)
	took := time.Since(start)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Equal(t, int32(1), verified.Load())
	assert.Less(t, took, 8*time.Second, "100 due deliveries of other batches held it up")
	due.unchanged(t)
}

// backlog is n due deliveries of other batches, each with its due time.
type backlog struct {
	pg  *postgres.Store
	due map[uuid.UUID]time.Time
}

// seedBacklog inserts n deliveries of other batches, due an hour ago, a
// millisecond apart, to a receiver that must never be called.
func seedBacklog(t *testing.T, pg *postgres.Store, n int) *backlog {
	t.Helper()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a delivery of the backlog was sent")
	}))
	t.Cleanup(other.Close)
	b := &backlog{pg: pg, due: map[uuid.UUID]time.Time{}}
	first := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	for i := range n {
		at := first.Add(time.Duration(i) * time.Millisecond)
		d := &store.Delivery{ID: uuid.Must(uuid.NewV7()), BatchID: uuid.New(), CallbackURL: other.URL, Payload: []byte(`{}`),
			IsAutomatic: true, Status: store.StatusPending, MaxAttempts: 8, NextAttemptAt: at, CreatedAt: first, UpdatedAt: first}
		require.NoError(t, pg.Insert(context.Background(), d))
		b.due[d.ID] = at
	}
	return b
}

// unchanged checks that every delivery of the backlog is still due when it was.
func (b *backlog) unchanged(t *testing.T) {
	t.Helper()
	for id, at := range b.due {
		got, err := b.pg.Get(context.Background(), id)
		require.NoError(t, err)
		assert.True(t, got.NextAttemptAt.Equal(at), "delivery %s of the backlog was moved from %s to %s", id, at, got.NextAttemptAt)
	}
}

// A send --dsn interrupted between attempts leaves its delivery pending;
// the same send again (same bytes) gets that delivery back from Deliver and
// must send it. It hung instead: it followed the delivery whose insert had
// conflicted, so it never claimed the pending one.
func TestSendAgainWhileItsDeliveryIsPending(t *testing.T) {
	t.Parallel()
	dsn, schema, _ := migratedSchema(t)
	secret := signing.GenerateSecret()
	var fail atomic.Bool
	fail.Store(true)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "cb.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"batch_id":"`+uuid.NewString()+`","created_at":"2026-05-01T10:00:00+00:00","completed_at":"2026-05-01T10:01:00+00:00"}`), 0o600))
	args := []string{"send", "--url", srv.URL, "--secret", secret, "--allow-private", "--dsn", dsn, "--schema", schema, "--file", file, "--attempts", "5"}

	// One failed attempt, then interrupted while the retry waits.
	first := exec.Command(bin, args...)
	first.Env = cleanEnv()
	require.NoError(t, first.Start())
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // recorded
	require.NoError(t, first.Process.Signal(syscall.SIGINT))
	_ = first.Wait()

	fail.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	again := exec.CommandContext(ctx, bin, args...)
	again.Env = cleanEnv()
	var stderr bytes.Buffer
	again.Stderr = &stderr
	err := again.Run()
	require.NoError(t, ctx.Err(), "the second send hung; stderr: %s", stderr.String())
	assert.NoError(t, err, "stderr: %s", stderr.String())
	assert.GreaterOrEqual(t, calls.Load(), int32(2), "the pending delivery was sent again")
}

// A retry of send --dsn behind a backlog of other batches' due deliveries
// (the host is down) claims its own delivery by id: it used to claim the
// backlog eight at a time, give it back due "now" and wait a PollInterval
// between rounds (13 s for 100 due deliveries).
func TestSendRetryBehindABacklog(t *testing.T) {
	t.Parallel()
	dsn, schema, pg := migratedSchema(t)
	secret := signing.GenerateSecret()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	due := seedBacklog(t, pg, 100)

	start := time.Now()
	r := hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--allow-private", "--dsn", dsn, "--schema", schema, "--attempts", "2")
	took := time.Since(start)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	assert.Equal(t, int32(2), calls.Load())
	assert.Less(t, took, 8*time.Second, "a retry due after about a second waited behind 100 due deliveries")
	due.unchanged(t)
}

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
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/store/postgres"
	"github.com/hookline/hookline/storetest"
)

// TestExample runs the example as a user would, against the test database
// in a schema of its own: exit 0, a succeeded record on stdout, and the
// batch row committed with it.
func TestExample(t *testing.T) {
	dsn, schema, conn := exampleSchema(t)
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-dsn", dsn, "-schema", schema}, &stdout, &stderr)
	require.Equal(t, 0, code, "stderr:\n%s", stderr.String())
	var rec map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rec), "stdout is the record JSON:\n%s", stdout.String())
	assert.Equal(t, "succeeded", rec["status_code"])
	assert.Equal(t, float64(1), rec["attempt_count"])
	assert.Contains(t, stderr.String(), "receiver: verified standard-webhooks signature")

	var status string
	require.NoError(t, conn.QueryRow(ctx, "SELECT status FROM "+schema+".hookline_example_batches WHERE id = $1", rec["batch_id"]).Scan(&status))
	assert.Equal(t, "succeeded", status, "the batch row commits with its callback")
}

// On a schema that holds other due deliveries, the example is one more
// replica: it may send them, but it ends when its own delivery has, and
// does not hang on the others (its Done hook blocked once they had filled a
// channel of one, and Stop then waited for it forever).
func TestExampleOnASharedSchema(t *testing.T) {
	dsn, schema, _ := exampleSchema(t)
	ctx := context.Background()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	pg, err := postgres.New(pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	require.NoError(t, pg.Migrate(ctx))
	for range 5 {
		d := storetest.NewDelivery(uuid.New(), time.Now())
		d.CallbackURL = other.URL + "/other"
		require.NoError(t, pg.Insert(ctx, d))
	}

	var stdout, stderr bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- run([]string{"-dsn", dsn, "-schema", schema, "-timeout", "20s"}, &stdout, &stderr) }()
	select {
	case c := <-code:
		require.Equal(t, 0, c, "stderr:\n%s", stderr.String())
	case <-time.After(40 * time.Second):
		t.Fatal("the example did not return")
	}
}

// exampleSchema returns the test database's DSN, a fresh schema name
// (dropped when t ends) and a connection.
func exampleSchema(t *testing.T) (dsn, schema string, conn *pgx.Conn) {
	dsn = os.Getenv("HOOKLINE_TEST_DATABASE_URL")
	if dsn == "" {
		testenv.SkipOrFail(t, "set HOOKLINE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test to run the PostgreSQL tests")
	}
	var b [6]byte
	rand.Read(b[:])
	schema = "hookline_example_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		testenv.SkipOrFail(t, "PostgreSQL at HOOKLINE_TEST_DATABASE_URL is unreachable: "+err.Error())
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	return dsn, schema, conn
}

func TestExampleWithoutDatabase(t *testing.T) {
	t.Setenv("HOOKLINE_DATABASE_URL", "")
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run(nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-dsn")
}

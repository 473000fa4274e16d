package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/testenv"
)

// TestExample runs the example as a user would, against the test database
// in a schema of its own: exit 0, a succeeded record on stdout, and the
// batch row committed with it.
func TestExample(t *testing.T) {
	dsn := os.Getenv("HOOKLINE_TEST_DATABASE_URL")
	if dsn == "" {
		testenv.SkipOrFail(t, "set HOOKLINE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test to run the PostgreSQL tests")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "hookline_example_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.SkipOrFail(t, "PostgreSQL at HOOKLINE_TEST_DATABASE_URL is unreachable: "+err.Error())
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		conn.Close(context.Background())
	})

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

func TestExampleWithoutDatabase(t *testing.T) {
	t.Setenv("HOOKLINE_DATABASE_URL", "")
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run(nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-dsn")
}

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

// TestQuickstartAsUsersRunIt builds the command and runs it with no flags,
// as the README says: exit 0 and a succeeded delivery record on stdout.
func TestQuickstartAsUsersRunIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "quickstart")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())
	var rec map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rec), "stdout is the record JSON:\n%s", stdout.String())
	assert.Equal(t, "succeeded", rec["status_code"])
	assert.Equal(t, float64(1), rec["attempt_count"])
	assert.Contains(t, stderr.String(), "receiver: verified standard-webhooks signature")
}

func TestURLMode(t *testing.T) {
	secret := signing.GenerateSecret()
	s, err := signing.NewSecret(uuid.Nil, secret)
	require.NoError(t, err)

	t.Run("hex scheme with a prefix, verified by the receiver", func(t *testing.T) {
		v, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{s}, Schemes: signing.SchemeHex, Prefix: "Runflow"})
		require.NoError(t, err)
		srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
		defer srv.Close()
		var stdout, stderr bytes.Buffer
		code := run([]string{"-url", srv.URL, "-secret", secret, "-scheme", "hex", "-prefix", "Runflow", "-allow-private"}, &stdout, &stderr)
		require.Equal(t, 0, code, "stderr:\n%s", stderr.String())
		var rec map[string]any
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &rec))
		assert.Equal(t, "succeeded", rec["status_code"])
	})

	t.Run("a failing endpoint exits 1 after the attempts asked for", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(500)
		}))
		defer srv.Close()
		var stdout, stderr bytes.Buffer
		code := run([]string{"-url", srv.URL, "-secret", secret, "-allow-private"}, &stdout, &stderr)
		assert.Equal(t, 1, code)
		assert.Equal(t, int32(1), calls.Load(), "one attempt unless -attempts asks for more")
		var rec map[string]any
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &rec))
		assert.Equal(t, "failed", rec["status_code"])
		assert.Equal(t, "http_error", rec["failure_reason_code"])
	})

	t.Run("the destination guard stays on without -allow-private", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
		defer srv.Close()
		var stdout, stderr bytes.Buffer
		code := run([]string{"-url", srv.URL, "-secret", secret}, &stdout, &stderr)
		assert.Equal(t, 1, code)
		assert.Zero(t, calls.Load())
		var rec map[string]any
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &rec))
		assert.Equal(t, "blocked_destination", rec["failure_reason_code"])
	})

	for name, args := range map[string][]string{
		"unknown scheme":       {"-scheme", "md5"},
		"url without a secret": {"-url", "https://example.com/"},
		"bad url":              {"-url", "ftp://example.com/", "-secret", secret},
		"zero attempts":        {"-attempts", "0"},
		"unknown flag":         {"-nope"},
		"standard needs whsec": {"-url", "https://example.com/", "-secret", "plain", "-scheme", "standard"},
		"url without -url":     {"https://example.com/", "-secret", secret},
		"argument after flags": {"-attempts", "2", "extra"},
	} {
		t.Run("usage error: "+name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, 2, run(args, &stdout, &stderr))
			assert.Empty(t, stdout.String())
			assert.NotEmpty(t, stderr.String())
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run([]string{"-h"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-url", "the usage lists the flags")
}

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// syncBuffer is a bytes.Buffer safe for the handler's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestListenHandler exercises the receiver in-process (so under -race).
func TestListenHandler(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var out syncBuffer
	h, err := newListenHandler(listenConfig{
		Secrets: []string{signing.GenerateSecret(), secret},
		Schemes: signing.SchemeHex | signing.SchemeStandard,
		JSON:    true,
		Out:     &out,
		Now:     func() time.Time { return now },
	})
	require.NoError(t, err)
	s, err := signing.NewSecret(uuid.New(), secret)
	require.NoError(t, err)
	ring, err := signing.NewKeyRing(s)
	require.NoError(t, err)
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring, Schemes: signing.SchemeStandard})
	require.NoError(t, err)
	body := []byte(`{"hello":"world"}`)

	serve := func(method string, ts time.Time, b []byte) int {
		req := httptest.NewRequest(method, "/x", bytes.NewReader(b))
		require.NoError(t, signer.Sign(req.Header, "msg_1", uuid.New(), ts, body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusUnauthorized {
			assert.Equal(t, "Unauthorized\n", rec.Body.String(), "the answer never says why")
		}
		return rec.Code
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { assert.Equal(t, http.StatusNoContent, serve(http.MethodPost, now, body)) })
	}
	wg.Wait()
	assert.Equal(t, http.StatusUnauthorized, serve(http.MethodPost, now.Add(-time.Hour), body))
	assert.Equal(t, http.StatusUnauthorized, serve(http.MethodPost, now, []byte(`{"hello":"w0rld"}`)))
	assert.Equal(t, http.StatusMethodNotAllowed, serve(http.MethodGet, now, nil))
	assert.Equal(t, http.StatusRequestEntityTooLarge, serve(http.MethodPost, now, bytes.Repeat([]byte("x"), int(signing.DefaultMaxBodyBytes)+1)))

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 12)
	var reps []report
	for _, l := range lines {
		var r report
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		reps = append(reps, r)
	}
	for i, r := range reps[:8] {
		assert.True(t, r.Verified, "report %d", i)
		assert.Equal(t, 2, r.SecretIndex)
		assert.Equal(t, "msg_1", r.MessageID)
		assert.JSONEq(t, string(body), string(r.Body))
	}
	assert.Contains(t, reps[8].Error, "too old")
	assert.Contains(t, reps[9].Error, "no matching signature")
	assert.Equal(t, http.StatusMethodNotAllowed, reps[10].Answer)
	assert.Equal(t, http.StatusRequestEntityTooLarge, reps[11].Answer)
	for i, r := range reps {
		assert.Equal(t, i+1, r.N, "reports are numbered in order")
	}
}

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	c := &cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	fs := newFlagSet("x")
	j := fs.Bool("json", false, "")
	d := fs.String("dsn", "", "")
	rest, err := c.parse(historyCommand, fs, []string{"a", "--json", "b", "--dsn", "d", "--", "--c"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "--c"}, rest)
	assert.True(t, *j)
	assert.Equal(t, "d", *d)
}

// A password in a stored callback URL (a host with AllowURLUserinfo) stays
// out of the summaries printed to terminals and logs.
func TestPrintRecordRedactsThePassword(t *testing.T) {
	var b strings.Builder
	printRecord(&b, &store.Delivery{ID: uuid.New(), BatchID: uuid.New(), CallbackURL: "https://alice:TopSecretPw@example.com/hook",
		Status: store.StatusSucceeded, MaxAttempts: 1})
	assert.NotContains(t, b.String(), "TopSecretPw")
	assert.Contains(t, b.String(), "https://alice:xxxxx@example.com/hook")
}

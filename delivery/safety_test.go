package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

func TestHugeResponseCostsNoMoreThanTheReadLimit(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var written atomic.Int64
	var cutOff atomic.Bool // a write failed: the sender dropped the connection
	handled := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(handled)
		w.WriteHeader(http.StatusOK)
		for range 160 { // 10 MiB
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				cutOff.Store(true)
				return
			}
		}
	}, nil)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := h.deliver(h.srv.URL)
	got := h.waitTerminal(rec.ID)
	runtime.ReadMemStats(&after)

	assert.Equal(t, store.StatusSucceeded, got.Status)
	assert.Len(t, got.Attempts[0].ResponseBody, delivery.DefaultResponseBodyLimit, "a prefix of ResponseBodyLimit bytes is stored")
	// The sender reads ResponseReadLimit (by default ResponseBodyLimit)
	// bytes and drops the connection; the whole process
	// (receiver included) allocates far less than the 10 MiB on offer.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "reading the response allocated too much")
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver is still writing: the sender did not drop the connection")
	}
	assert.True(t, cutOff.Load(), "the receiver wrote all %d bytes: the sender read the whole response instead of dropping the connection", written.Load())
}

func TestReceiverThatNeverAnswersTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		select { // never writes a header
		case <-release:
		case <-r.Context().Done():
		}
	}, func(c *delivery.Config) { c.AttemptTimeout = 200 * time.Millisecond })
	got := h.waitAttempts(h.deliver(h.srv.URL).ID, 1)
	assert.Equal(t, store.ReasonTimeout, got.FailureReason)
	assert.Zero(t, got.Attempts[0].StatusCode)
}

func TestDrippingBodyIsCutOffByTheAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-release:
				return
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}, func(c *delivery.Config) { c.AttemptTimeout = 300 * time.Millisecond })
	got := h.waitTerminal(h.deliver(h.srv.URL).ID)
	a := got.Attempts[0]
	// The status line said 200: the receiver took the callback. The body
	// read was cut off at the timeout and says so.
	assert.Equal(t, store.StatusSucceeded, got.Status)
	assert.Equal(t, 200, a.StatusCode)
	assert.Contains(t, a.ErrorMessage, "reading response body")
	assert.GreaterOrEqual(t, a.ResponseTimeMS, int64(300))
	assert.Less(t, a.ResponseTimeMS, int64(5000))
	assert.NotEmpty(t, a.ResponseBody)
}

// TestOneHangingHostDoesNotStallOthers: with four workers and MaxPerHost 2,
// a receiver that hangs until every attempt times out holds at most two
// workers, and its 30 deliveries leave the dispatcher room to claim others;
// the healthy receiver's deliveries finish while it still hangs.
func TestOneHangingHostDoesNotStallOthers(t *testing.T) {
	release := make(chan struct{})
	var hanging atomic.Int32
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			hanging.Add(1)
			defer hanging.Add(-1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}, func(c *delivery.Config) {
		c.Workers = 4
		c.MaxPerHost = 2
		c.AttemptTimeout = time.Minute
		c.Lease = 2 * time.Minute
	})
	defer close(release)

	// The hanging host's receiver is the same server under another name:
	// 127.0.0.1 and localhost are different hosts to the limit.
	hangURL := strings.Replace(h.srv.URL, "127.0.0.1", "localhost", 1) + "/hang"
	// More than the host's slots, its queue and the deliveries claimed
	// ahead: the rest are given back to the store.
	var slow []uuid.UUID
	for range 30 {
		slow = append(slow, h.deliver(hangURL).ID)
	}
	require.Eventually(t, func() bool { return hanging.Load() == 2 }, 5*time.Second, time.Millisecond)

	var fast []uuid.UUID
	for range 20 {
		fast = append(fast, h.deliver(h.srv.URL+"/ok").ID)
	}
	for _, id := range fast {
		assert.Equal(t, store.StatusSucceeded, h.waitTerminal(id).Status)
	}
	assert.Equal(t, int32(2), hanging.Load(), "the hanging host never had more than MaxPerHost attempts")
	for _, id := range slow {
		got, err := h.st.Get(context.Background(), id)
		require.NoError(t, err)
		assert.Equal(t, store.StatusPending, got.Status)
		assert.Zero(t, got.AttemptCount, "no attempt of the hanging host has ended yet")
	}
}

// TestSecretsNeverLeak formats every value a host might log or return — the
// Config, the Deliverer, records, errors and the Deliverer's own log — and
// looks for the secret in each.
func TestSecretsNeverLeak(t *testing.T) {
	const secretText = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	const keyB64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secret, err := signing.NewSecret(uuid.New(), secretText)
	require.NoError(t, err)
	var logs bytes.Buffer
	var h *harness
	h = newHarness(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, func(c *delivery.Config) {
		c.Signer = newSigner(t, secret)
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.MaxAttempts = 2
		c.Store = &failRecord{Store: c.Store, n: 1}
	})
	rec := h.deliver(h.srv.URL)
	got := h.driveToEnd(rec.ID)
	require.Equal(t, store.StatusFailed, got.Status)
	_, errURL := h.d.Deliver(context.Background(), "https://user:"+secretText+"@example.com/", callback(uuid.New()))
	require.Error(t, errURL)
	cfg := delivery.Config{Signer: newSigner(t, secret), AllowPrivateNetworks: true}
	// Config itself holds funcs and cannot be marshalled; what a host might
	// put in JSON is the key ring and the signer.
	ringJSON, err := json.Marshal(struct {
		Keys   signing.KeyRing
		Secret signing.Secret
		Signer *signing.Signer
	}{cfg.Signer.Keys(), secret, cfg.Signer})
	require.NoError(t, err)
	require.Contains(t, string(ringJSON), secret.ID().String(), "the JSON names the secret by its id")
	recJSON, err := json.Marshal(got)
	require.NoError(t, err)
	// The worker logs after the store shows the delivery failed: stop the
	// Deliverer before reading its log.
	require.NoError(t, h.d.Stop(context.Background()))

	outputs := map[string]string{
		"log":         logs.String(),
		"record JSON": string(recJSON),
		"URL error":   errURL.Error(),
		"keys JSON":   string(ringJSON),
		"secret ID":   secret.ID().String(),
		"record %v":   fmt.Sprintf("%v", got),
		"record %+v":  fmt.Sprintf("%+v", got),
		"record %#v":  fmt.Sprintf("%#v", got),
		"config %v":   fmt.Sprintf("%v", cfg),
		"config %+v":  fmt.Sprintf("%+v", cfg),
		"config %#v":  fmt.Sprintf("%#v", cfg),
		"signer %+v":  fmt.Sprintf("%+v", cfg.Signer),
		"signer %#v":  fmt.Sprintf("%#v", *cfg.Signer),
		"secret %s":   fmt.Sprint(secret),
	}
	require.Contains(t, logs.String(), "hookline: delivery failed", "the failure was logged")
	require.Contains(t, logs.String(), "injected", "the store error was logged")
	for name, out := range outputs {
		for _, needle := range []string{secretText, keyB64, "MfKQ9r8GKYqrTwjUPD8I"} {
			assert.NotContains(t, out, needle, "%s shows the secret", name)
		}
	}
}

// The stored response body is at most ResponseBodyLimit bytes also when it
// is not UTF-8: each stray byte becomes U+FFFD (3 bytes), and the text is
// cut again at a character boundary.
// NUL bytes, which PostgreSQL cannot store as text, too.
func TestStoredBodyKeepsItsLimitWhenNotUTF8(t *testing.T) {
	for _, stray := range []string{"\xff", "\x00"} {
		t.Run(fmt.Sprintf("%q", stray), func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(strings.Repeat("a"+stray, 500)))
			}, func(c *delivery.Config) { c.ResponseBodyLimit = 1000 })
			body := h.waitTerminal(h.deliver(h.srv.URL).ID).Attempts[0].ResponseBody
			assert.LessOrEqual(t, len(body), 1000)
			assert.True(t, utf8.ValidString(body))
			assert.Equal(t, strings.Repeat("a\uFFFD", 250), body, "as many whole characters as fit")
		})
	}
}

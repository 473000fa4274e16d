package delivery_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

func TestSuccessFirstTry(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) }, nil)
	rec := h.deliver(h.srv.URL + "/hook")
	assert.Equal(t, store.StatusPending, rec.Status)
	assert.True(t, rec.IsAutomatic)

	got := h.waitTerminal(rec.ID)
	assert.Equal(t, store.StatusSucceeded, got.Status)
	assert.Equal(t, 1, got.AttemptCount)
	require.Len(t, got.Attempts, 1)
	a := got.Attempts[0]
	assert.Equal(t, 200, a.StatusCode)
	assert.Equal(t, `{"ok":true}`, a.ResponseBody)
	assert.Empty(t, a.ErrorMessage)
	assert.True(t, a.CreatedAt.Equal(t0))
	assert.True(t, got.CompletedAt.Equal(t0))
	assert.True(t, got.NextAttemptAt.IsZero())
	assert.Equal(t, uuid.NullUUID{UUID: h.secret.ID(), Valid: true}, got.SigningSecretID)

	reqs := h.requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, string(rec.Payload), string(r.Body), "the body must be the frozen bytes")
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "hookline/"))
	assert.Equal(t, rec.ID.String(), r.Header.Get("Webhook-Id"))
	assert.Equal(t, a.ID.String(), r.Header.Get("Runflow-Request-Id"))
	_, err := h.ver.VerifyStandard(r.Header, r.Body)
	assert.NoError(t, err)
	_, err = h.ver.VerifyHex(r.Header, r.Body)
	assert.NoError(t, err)
}

func TestRetriesOnScheduleThenSucceeds(t *testing.T) {
	var calls atomic.Int32
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}, nil)
	rec := h.deliver(h.srv.URL)

	// Attempt n+1 is due DefaultSchedule[n-1] after attempt n.
	want := []time.Time{t0}
	for n := 1; n <= 3; n++ {
		got := h.waitAttempts(rec.ID, n)
		require.Equal(t, store.StatusPending, got.Status)
		assert.Equal(t, store.ReasonHTTPError, got.FailureReason)
		next := want[n-1].Add(delivery.DefaultSchedule[n-1])
		assert.True(t, got.NextAttemptAt.Equal(next), "attempt %d: next at %s, want %s", n, got.NextAttemptAt, next)
		want = append(want, next)

		// Nothing is sent a moment before the next attempt is due.
		h.clock.Set(next.Add(-time.Millisecond))
		settle()
		assert.Equal(t, n, len(h.requests()), "attempt %d was sent early", n+1)
		h.clock.Set(next)
	}
	got := h.waitTerminal(rec.ID)
	assert.Equal(t, store.StatusSucceeded, got.Status)
	require.Len(t, got.Attempts, 4)
	for i, a := range got.Attempts {
		assert.Equal(t, i+1, a.AttemptNumber)
		assert.True(t, a.CreatedAt.Equal(want[i]), "attempt %d at %s, want %s", i+1, a.CreatedAt, want[i])
	}
	assert.Equal(t, []int{503, 503, 503, 200}, statusCodes(got))
	assert.Empty(t, got.FailureReason, "a success clears the failure")

	// Every attempt carried the same bytes and the same webhook-id.
	for _, r := range h.requests() {
		assert.Equal(t, string(rec.Payload), string(r.Body))
		assert.Equal(t, rec.ID.String(), r.Header.Get("Webhook-Id"))
	}
}

func statusCodes(d *store.Delivery) []int {
	var out []int
	for _, a := range d.Attempts {
		out = append(out, a.StatusCode)
	}
	return out
}

// driveToEnd advances the clock by each retry delay until the delivery ends.
func (h *harness) driveToEnd(id uuid.UUID) *store.Delivery {
	h.t.Helper()
	for n := 1; ; n++ {
		got := h.waitAttempts(id, n)
		if got.Status.Terminal() {
			return got
		}
		h.clock.Set(got.NextAttemptAt)
	}
}

func TestAlways500FailsAfterMaxAttempts(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, nil)
	rec := h.deliver(h.srv.URL)
	got := h.driveToEnd(rec.ID)
	assert.Equal(t, store.StatusFailed, got.Status)
	assert.Equal(t, store.ReasonHTTPError, got.FailureReason)
	assert.Equal(t, "HTTP 500 Internal Server Error", got.FailureDetail)
	assert.Equal(t, delivery.DefaultMaxAttempts, got.AttemptCount)
	assert.Len(t, got.Attempts, delivery.DefaultMaxAttempts)
	assert.Equal(t, "boom\n", got.Attempts[0].ResponseBody)
	assert.True(t, got.NextAttemptAt.IsZero())
	assert.False(t, got.CompletedAt.IsZero())
	// The whole default schedule spans about 27 hours.
	span := got.Attempts[len(got.Attempts)-1].CreatedAt.Sub(got.Attempts[0].CreatedAt)
	assert.Equal(t, 27*time.Hour+35*time.Minute+5*time.Second, span)
	assert.Len(t, h.requests(), delivery.DefaultMaxAttempts)
}

func TestGoneIsPermanent(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }, nil)
	rec := h.deliver(h.srv.URL)
	got := h.waitTerminal(rec.ID)
	assert.Equal(t, store.StatusFailed, got.Status)
	assert.Equal(t, store.ReasonHTTPError, got.FailureReason)
	assert.Equal(t, 1, got.AttemptCount)
	assert.Equal(t, 410, got.Attempts[0].StatusCode)
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String() + "/hook"
	require.NoError(t, ln.Close())

	h := newHarness(t, nil, nil)
	rec := h.deliver(url)
	got := h.waitAttempts(rec.ID, 1)
	assert.Equal(t, store.StatusPending, got.Status, "a refused connection is retried")
	assert.Equal(t, store.ReasonConnectionError, got.FailureReason)
	assert.Zero(t, got.Attempts[0].StatusCode)
	assert.Contains(t, got.Attempts[0].ErrorMessage, "refused")
	h.clock.Set(got.NextAttemptAt)
	got = h.waitAttempts(rec.ID, 2)
	assert.Equal(t, store.ReasonConnectionError, got.FailureReason)
}

func TestSlowReceiverTimesOut(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}, func(c *delivery.Config) { c.AttemptTimeout = 100 * time.Millisecond })
	defer close(release)
	rec := h.deliver(h.srv.URL)
	got := h.waitAttempts(rec.ID, 1)
	assert.Equal(t, store.StatusPending, got.Status)
	assert.Equal(t, store.ReasonTimeout, got.FailureReason)
	assert.Contains(t, got.Attempts[0].ErrorMessage, "attempt timeout exceeded")
	assert.GreaterOrEqual(t, got.Attempts[0].ResponseTimeMS, int64(100))
}

// A receiver that answers 200 and then stalls its body is cut off by
// AttemptTimeout (the delivery succeeds: the status came; the cut is noted),
// and the same worker's next attempt gets a full timeout of its own (a
// worker reuses its attempt context until a timeout ends it).
func TestAttemptTimeoutBoundsTheBodyAndStartsAfresh(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}, func(c *delivery.Config) {
		c.AttemptTimeout = 100 * time.Millisecond
		c.Workers = 1 // every attempt on one worker
	})
	defer close(release)
	for i := range 2 {
		rec := h.deliver(h.srv.URL)
		got := h.waitTerminal(rec.ID)
		assert.Equal(t, store.StatusSucceeded, got.Status, "delivery %d", i)
		assert.Contains(t, got.Attempts[0].ErrorMessage, "attempt timeout exceeded", "delivery %d", i)
		assert.GreaterOrEqual(t, got.Attempts[0].ResponseTimeMS, int64(100), "delivery %d ran its full timeout", i)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var followed atomic.Bool
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Store(true)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}, nil)
	rec := h.deliver(h.srv.URL + "/hook")
	got := h.waitAttempts(rec.ID, 1)
	assert.Equal(t, store.ReasonRedirect, got.FailureReason)
	assert.Equal(t, 302, got.Attempts[0].StatusCode)
	assert.Contains(t, got.FailureDetail, "/elsewhere")
	assert.Equal(t, store.StatusPending, got.Status, "a redirect is retried, not followed")
	assert.False(t, followed.Load(), "the redirect was followed")
	assert.Len(t, h.requests(), 1)
}

func TestURLUserinfoIsSentAsBasicAuth(t *testing.T) {
	h := newHarness(t, nil, func(c *delivery.Config) { c.AllowURLUserinfo = true })
	rec := h.deliver(strings.Replace(h.srv.URL, "http://", "http://alice:s3cret@", 1) + "/hook")
	got := h.waitAttempts(rec.ID, 1)
	require.Equal(t, store.StatusSucceeded, got.Status)
	reqs := h.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:s3cret")), reqs[0].Header.Get("Authorization"))
}

// A TLS handshake the server refuses with an alert (here: no protocol
// version in common) is a tls_error, not a connection_error.
func TestTLSAlertIsATLSError(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS10}
	srv.StartTLS()
	defer srv.Close()
	h := newHarness(t, nil, nil)
	rec := h.deliver(srv.URL + "/hook")
	got := h.waitAttempts(rec.ID, 1)
	assert.Equal(t, store.ReasonTLSError, got.FailureReason, "detail: %s", got.FailureDetail)
	assert.Contains(t, got.FailureDetail, "protocol version")
}

func TestRetryAfterIsHonoured(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var calls atomic.Int32
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					w.Header().Set("Retry-After", "120")
					w.WriteHeader(code)
				}
			}, nil)
			rec := h.deliver(h.srv.URL)
			got := h.waitAttempts(rec.ID, 1)
			assert.True(t, got.NextAttemptAt.Equal(t0.Add(120*time.Second)), "next attempt at %s, want t0+120s", got.NextAttemptAt)
			h.clock.Set(t0.Add(119 * time.Second))
			settle()
			assert.Len(t, h.requests(), 1, "retried before Retry-After")
			h.clock.Set(t0.Add(120 * time.Second))
			assert.Equal(t, store.StatusSucceeded, h.waitTerminal(rec.ID).Status)
		})
	}
	// A day, and more digits than an int64 holds: both bounded.
	for _, header := range []string{"86400", "99999999999999999999"} {
		t.Run("bounded by MaxRetryAfter: "+header, func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", header)
				w.WriteHeader(http.StatusTooManyRequests)
			}, func(c *delivery.Config) { c.MaxRetryAfter = 10 * time.Minute })
			rec := h.deliver(h.srv.URL)
			got := h.waitAttempts(rec.ID, 1)
			assert.True(t, got.NextAttemptAt.Equal(t0.Add(10*time.Minute)), "next attempt at %s", got.NextAttemptAt)
		})
	}
	t.Run("never earlier than the schedule", func(t *testing.T) {
		h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}, nil)
		rec := h.deliver(h.srv.URL)
		got := h.waitAttempts(rec.ID, 1)
		assert.True(t, got.NextAttemptAt.Equal(t0.Add(5*time.Second)), "next attempt at %s", got.NextAttemptAt)
	})
}

func TestRedeliver(t *testing.T) {
	h := newHarness(t, nil, nil)
	batch := uuid.New()
	first, err := h.d.Deliver(context.Background(), h.srv.URL, callback(batch))
	require.NoError(t, err)
	h.waitTerminal(first.ID)

	// A rotation happens between the two deliveries.
	newer := newSecret(t)
	require.NoError(t, h.d.SetSigner(newSigner(t, newer, h.secret)))

	second, err := h.d.Redeliver(context.Background(), batch)
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, second.ID)
	assert.False(t, second.IsAutomatic)
	assert.Equal(t, store.StatusPending, second.Status)
	got := h.waitTerminal(second.ID)
	assert.Equal(t, uuid.NullUUID{UUID: newer.ID(), Valid: true}, got.SigningSecretID)

	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, reqs[0].Body, reqs[1].Body, "a redelivery sends byte-identical bodies")
	assert.Equal(t, second.ID.String(), reqs[1].Header.Get("Webhook-Id"))

	hist, err := h.d.History(context.Background(), batch)
	require.NoError(t, err)
	require.Len(t, hist, 2)
	assert.Equal(t, second.ID, hist[0].ID, "history is newest first")
	assert.Equal(t, first.ID, hist[1].ID)
}

func TestRedeliverWhileInFlightConflicts(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, nil)
	batch := uuid.New()
	rec, err := h.d.Deliver(context.Background(), h.srv.URL, callback(batch))
	require.NoError(t, err)
	h.waitAttempts(rec.ID, 1)
	_, err = h.d.Redeliver(context.Background(), batch)
	assert.ErrorIs(t, err, delivery.ErrConflict)
}

func TestRedeliverUnknownBatch(t *testing.T) {
	h := newHarness(t, nil, nil)
	_, err := h.d.Redeliver(context.Background(), uuid.New())
	assert.ErrorIs(t, err, delivery.ErrNotFound)
	hist, err := h.d.History(context.Background(), uuid.New())
	assert.NoError(t, err)
	assert.Empty(t, hist)
}

func TestRotationVerifiesWithEitherSecret(t *testing.T) {
	h := newHarness(t, nil, nil)
	newer := newSecret(t)
	require.NoError(t, h.d.SetSigner(newSigner(t, newer, h.secret)))
	rec := h.deliver(h.srv.URL)
	h.waitTerminal(rec.ID)
	r := h.requests()[0]
	for name, s := range map[string]signing.Secret{"old": h.secret, "new": newer} {
		v, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{s}, Now: h.clock.Now})
		require.NoError(t, err)
		_, err = v.VerifyStandard(r.Header, r.Body)
		assert.NoError(t, err, "the %s secret alone must verify a request signed during rotation", name)
	}
}

func TestDeliverIsIdempotentPerBatch(t *testing.T) {
	h := newHarness(t, nil, nil)
	batch := uuid.New()
	first, err := h.d.Deliver(context.Background(), h.srv.URL, callback(batch))
	require.NoError(t, err)
	h.waitTerminal(first.ID)

	again, err := h.d.Deliver(context.Background(), h.srv.URL, callback(batch))
	require.NoError(t, err, "the same callback again is harmless")
	assert.Equal(t, first.ID, again.ID)

	changed := callback(batch)
	changed.DurationMS++
	_, err = h.d.Deliver(context.Background(), h.srv.URL, changed)
	assert.ErrorIs(t, err, delivery.ErrConflict)
	_, err = h.d.Deliver(context.Background(), h.srv.URL+"/other", callback(batch))
	assert.ErrorIs(t, err, delivery.ErrConflict)
	settle()
	assert.Len(t, h.requests(), 1, "nothing new was sent")
}

func TestDeliverRejectsBadInput(t *testing.T) {
	h := newHarness(t, nil, func(c *delivery.Config) { c.MaxPayloadBytes = 1024 })
	ctx := context.Background()
	for _, u := range []string{"", "ftp://example.com/", "example.com/hook", "http:///nohost", "https://user:pw@example.com/",
		"http://example.com/" + strings.Repeat("a", 2048), "http://exa mple.com/", "http://example.com/a b", "http://example.com/?q=a b", "http://example.com:99999/",
		"https://example.com/cb/\xff"} { // not UTF-8: no store could keep it
		_, err := h.d.Deliver(ctx, u, callback(uuid.New()))
		var ue *delivery.URLError
		assert.ErrorAs(t, err, &ue, "URL %q", u)
		assert.ErrorIs(t, err, delivery.ErrInvalidURL, "URL %q", u)
		assert.NotContains(t, err.Error(), "pw", "a password in a URL must not reach an error")
	}
	_, err := h.d.Deliver(ctx, h.srv.URL, payload.Callback{Event: "x", Status: "y"})
	assert.ErrorIs(t, err, payload.ErrNilBatchID)

	big := callback(uuid.New())
	big.Output = strings.Repeat("x", 2000)
	_, err = h.d.Deliver(ctx, h.srv.URL, big)
	assert.ErrorIs(t, err, delivery.ErrPayloadTooLarge)
	settle()
	assert.Empty(t, h.requests())
}

func TestConfigValidationNamesTheField(t *testing.T) {
	signer := newSigner(t, newSecret(t))
	tests := []struct {
		field string
		cfg   delivery.Config
	}{
		{"Signer", delivery.Config{}},
		{"Workers", delivery.Config{Signer: signer, Workers: -1}},
		{"MaxAttempts", delivery.Config{Signer: signer, MaxAttempts: -2}},
		{"AttemptTimeout", delivery.Config{Signer: signer, AttemptTimeout: -time.Second}},
		{"Lease", delivery.Config{Signer: signer, AttemptTimeout: time.Minute, Lease: time.Minute}},
		{"Lease", delivery.Config{Signer: signer, Lease: delivery.MaxLease + 1}},
		{"AttemptTimeout", delivery.Config{Signer: signer, AttemptTimeout: delivery.MaxLease}},
		{"Signer", delivery.Config{Signer: &signing.Signer{}}}, // not made by NewSigner
		{"Workers", delivery.Config{Signer: signer, Workers: delivery.MaxWorkers + 1}},
		{"RetryPolicy", delivery.Config{Signer: signer, RetryPolicy: func() backoff.BackOff { return nil }}},
	}
	if strconv.IntSize == 64 {
		wide := int64(math.MaxInt32) + 1
		tests = append(tests, struct {
			field string
			cfg   delivery.Config
		}{"MaxAttempts", delivery.Config{Signer: signer, MaxAttempts: int(wide)}})
	}
	for _, tt := range tests {
		_, err := delivery.New(tt.cfg)
		assert.ErrorIs(t, err, delivery.ErrInvalidConfig, tt.field)
		if err != nil {
			assert.Contains(t, err.Error(), "Config."+tt.field)
		}
	}
}

// A URLError's message shows at most 100 bytes of the URL, cut at a
// character boundary, so that it stays UTF-8.
func TestURLErrorCutsAtACharacter(t *testing.T) {
	raw := "ftp://" + strings.Repeat("a", 93) + "éé.example.com/" // é straddles byte 100
	err := delivery.ValidateURL(raw, false)
	require.ErrorIs(t, err, delivery.ErrInvalidURL)
	assert.True(t, utf8.ValidString(err.Error()), "%q", err.Error())
	assert.Contains(t, err.Error(), strings.Repeat("a", 93)+"…")
}

// The zero Deliverer is not usable: its methods say so instead of
// panicking. The zero ManualClock works, from the zero time.
func TestZeroValues(t *testing.T) {
	var d delivery.Deliverer
	ctx := context.Background()
	_, err := d.Deliver(ctx, "https://example.com/", callback(uuid.New()))
	assert.ErrorIs(t, err, delivery.ErrInvalidConfig)
	_, err = d.Redeliver(ctx, uuid.New())
	assert.ErrorIs(t, err, delivery.ErrInvalidConfig)
	_, err = d.Get(ctx, uuid.New())
	assert.ErrorIs(t, err, delivery.ErrInvalidConfig)
	_, err = d.History(ctx, uuid.New())
	assert.ErrorIs(t, err, delivery.ErrInvalidConfig)
	assert.ErrorIs(t, d.Start(ctx), delivery.ErrInvalidConfig)
	assert.ErrorIs(t, d.Stop(ctx), delivery.ErrInvalidConfig)
	assert.ErrorIs(t, d.SetSigner(&signing.Signer{}), delivery.ErrInvalidConfig)
	assert.ErrorIs(t, d.SetSigner(newSigner(t, newSecret(t))), delivery.ErrInvalidConfig, "even with a good Signer")
	var nilD *delivery.Deliverer // as left by a failed New
	assert.ErrorIs(t, nilD.Stop(ctx), delivery.ErrInvalidConfig)
	assert.Nil(t, nilD.Store())

	var c delivery.ManualClock
	tm := c.NewTimer(time.Second)
	c.Advance(time.Second)
	select {
	case <-tm.C():
	default:
		t.Fatal("a timer of the zero ManualClock did not fire")
	}
}

func TestStopReleasesLeasesOfAbortedAttempts(t *testing.T) {
	block := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}, nil)
	defer close(block)
	rec := h.deliver(h.srv.URL)
	require.Eventually(t, func() bool { return len(h.requests()) == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := h.d.Stop(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	got, err := h.st.Get(context.Background(), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusPending, got.Status)
	assert.Zero(t, got.AttemptCount, "an aborted attempt is released, not recorded")
	// Released means due again now, for any other worker.
	claimed, err := h.st.Claim(context.Background(), h.clock.Now(), 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	assert.Equal(t, rec.ID, claimed[0].ID)
}

func TestStartTwice(t *testing.T) {
	h := newHarness(t, nil, nil)
	assert.ErrorIs(t, h.d.Start(context.Background()), delivery.ErrStopped)
}

// A Deliver that finds a free worker inserts the delivery leased and hands
// it over without a Claim; Deliver before Start stores it due, for the
// dispatcher. Either way it is attempted once.
func TestDeliverHandsStraightToAFreeWorker(t *testing.T) {
	block := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { <-block }, nil)
	rec := h.deliver(h.srv.URL)
	require.Eventually(t, func() bool { return len(h.requests()) == 1 }, 5*time.Second, time.Millisecond)
	got, err := h.st.Get(context.Background(), rec.ID)
	require.NoError(t, err)
	assert.NotEqual(t, uuid.Nil, got.LeaseToken, "the delivery was inserted leased")
	assert.True(t, got.NextAttemptAt.Equal(h.clock.Now().Add(delivery.DefaultLease)), "a leased delivery is not due before its lease expires")
	assert.True(t, rec.NextAttemptAt.Equal(h.clock.Now()), "Deliver returns the record as due now, not the lease")
	assert.Equal(t, uuid.Nil, rec.LeaseToken, "Deliver's record does not show the lease")
	close(block)
	got = h.waitTerminal(rec.ID)
	assert.Equal(t, store.StatusSucceeded, got.Status)
	assert.Len(t, h.requests(), 1)
}

// Deliver calls racing Stop leave every delivery either attempted or due,
// never leased, once Stop and the calls have returned, and another
// Deliverer then delivers every one exactly once.
func TestDeliverRacingStopLeavesNothingLeased(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("Webhook-Id")]++
		mu.Unlock()
	}))
	defer srv.Close()
	st := store.NewMemory()
	secret := newSecret(t)
	newD := func() *delivery.Deliverer {
		d, err := delivery.New(delivery.Config{Signer: newSigner(t, secret), Store: st, Workers: 4, AllowPrivateNetworks: true})
		require.NoError(t, err)
		require.NoError(t, d.Start(context.Background()))
		return d
	}
	d := newD()
	var ids []uuid.UUID
	var idsMu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				rec, err := d.Deliver(context.Background(), srv.URL, callback(uuid.New()))
				require.NoError(t, err)
				idsMu.Lock()
				ids = append(ids, rec.ID)
				idsMu.Unlock()
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, d.Stop(context.Background()))
	wg.Wait()
	for _, id := range ids {
		rec, err := st.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, uuid.Nil, rec.LeaseToken, "delivery %s is still leased after Stop and Deliver returned", id)
	}
	d2 := newD()
	defer d2.Stop(context.Background())
	for _, id := range ids {
		ok := assert.Eventually(t, func() bool {
			rec, err := st.Get(context.Background(), id)
			return err == nil && rec.Status == store.StatusSucceeded
		}, 10*time.Second, time.Millisecond)
		if !ok {
			rec, err := st.Get(context.Background(), id)
			t.Fatalf("delivery %s did not succeed: %v %+v", id, err, rec)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		assert.Equal(t, 1, got[id.String()], "delivery %s was received %d times", id, got[id.String()])
	}
}

// stuckClaims is a memory store whose Claim waits for its context to end,
// as on a database that stopped answering.
type stuckClaims struct {
	*store.Memory
	waiting chan struct{} // gets a value when a Claim starts waiting
}

func (s *stuckClaims) Claim(ctx context.Context, _ time.Time, _ int, _ time.Duration) ([]*store.Delivery, error) {
	select {
	case s.waiting <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestStopEndsAClaimThatHangs(t *testing.T) {
	st := &stuckClaims{Memory: store.NewMemory(), waiting: make(chan struct{}, 1)}
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)), Store: st})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	select {
	case <-st.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the dispatcher never claimed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop(ctx) }()
	select {
	case err := <-stopped:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return when its context ended: it waits for a Claim that hangs")
	}
}

// slowLeasedInsert is a memory store whose InsertLeased is slow: the new
// delivery's lease runs out before the insert returns, and the Deliverer's
// own dispatcher has claimed it by then. Every Claim and Release of the
// delivery is reported.
type slowLeasedInsert struct {
	*store.Memory
	clock    *delivery.ManualClock
	lease    time.Duration
	claims   chan uuid.UUID
	releases atomic.Int32
}

func (s *slowLeasedInsert) InsertLeased(ctx context.Context, d *store.Delivery) error {
	if err := s.Memory.InsertLeased(ctx, d); err != nil {
		return err
	}
	s.clock.Advance(s.lease + time.Second)
	select {
	case id := <-s.claims:
		if id != d.ID {
			return fmt.Errorf("claimed %s, want %s", id, d.ID)
		}
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the dispatcher did not claim the delivery whose lease ran out")
	}
}

func (s *slowLeasedInsert) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	ds, err := s.Memory.Claim(ctx, now, limit, lease)
	for _, d := range ds {
		s.claims <- d.ID
	}
	return ds, err
}

func (s *slowLeasedInsert) Release(ctx context.Context, id, token uuid.UUID, next time.Time) error {
	defer s.releases.Add(1)
	return s.Memory.Release(ctx, id, token, next)
}

// A delivery whose lease ran out while Deliver was still inserting it, and
// which the dispatcher claimed meanwhile, is still sent by one worker at a
// time: the claim is a newer lease of the same flight, also when that lease
// in turn runs out mid-attempt.
func TestSlowLeasedInsertSendsOnce(t *testing.T) {
	const lease = time.Minute
	var mu sync.Mutex
	requests := 0
	first := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release
		}
	}))
	defer srv.Close()
	clock := delivery.NewManualClock(t0)
	st := &slowLeasedInsert{Memory: store.NewMemory(), clock: clock, lease: lease, claims: make(chan uuid.UUID, 16)}
	d, err := delivery.New(delivery.Config{Signer: newSigner(t, newSecret(t)), Store: st, Clock: clock,
		Lease: lease, AttemptTimeout: 10 * time.Second, AllowPrivateNetworks: true})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	defer d.Stop(context.Background())
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // before Stop, which waits for the attempt

	rec, err := d.Deliver(context.Background(), srv.URL, callback(uuid.New()))
	require.NoError(t, err)
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery was never sent")
	}
	// The worker that got the insert's own, stale lease gives it up (and
	// with it the dispatcher's claim, if that came first). Let it finish,
	// then let the lease of the attempt in flight run out too.
	require.Eventually(t, func() bool { return st.releases.Load() >= 1 }, 10*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	clock.Advance(lease + time.Second)
	select {
	case id := <-st.claims:
		require.Equal(t, rec.ID, id)
	case <-time.After(10 * time.Second):
		t.Fatal("the dispatcher did not claim the delivery again")
	}
	time.Sleep(100 * time.Millisecond) // room for a second worker to send it, which must not happen
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return requests
	}
	require.Equal(t, 1, count(), "a second worker sent the delivery while the first attempt was in flight")
	unblock()
	require.Eventually(t, func() bool {
		got, err := st.Get(context.Background(), rec.ID)
		return err == nil && got.Status == store.StatusSucceeded
	}, 10*time.Second, time.Millisecond)
	got, err := st.Get(context.Background(), rec.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, got.AttemptCount)
	assert.Equal(t, 1, count())
}

func TestDeliverTxRefusesANilInserter(t *testing.T) {
	h := newHarness(t, nil, nil)
	_, err := h.d.DeliverTx(context.Background(), nil, h.srv.URL, callback(uuid.New()))
	assert.ErrorIs(t, err, delivery.ErrInvalidConfig)
}

// A redirect's Location header may hold bytes that are not UTF-8 (net/http
// accepts them); the failure detail quoting it is stored as UTF-8, as a
// response body is, so that every store keeps the same text and the record
// reads back as stored.
func TestRedirectDetailIsUTF8(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Location"] = []string{"/next\xff\xfe"}
		w.WriteHeader(http.StatusFound)
	}, nil)
	rec := h.deliver(h.srv.URL + "/hook")
	got := h.waitAttempts(rec.ID, 1)
	require.Equal(t, store.ReasonRedirect, got.FailureReason)
	assert.True(t, utf8.ValidString(got.FailureDetail), "failure_detail %q is not UTF-8", got.FailureDetail)
	assert.True(t, utf8.ValidString(got.Attempts[0].ErrorMessage), "error_message %q is not UTF-8", got.Attempts[0].ErrorMessage)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	var back store.Delivery
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, got.FailureDetail, back.FailureDetail, "the record does not round-trip the stored failure_detail")
}

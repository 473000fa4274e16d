package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

var t0 = time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)

// received is one request as the test receiver saw it.
type received struct {
	Header http.Header
	Body   []byte
}

// harness is a Deliverer on a manual clock and a memory store, with a
// receiver that records every request and answers with handle.
type harness struct {
	t      *testing.T
	clock  *delivery.ManualClock
	st     store.Store
	d      *delivery.Deliverer
	srv    *httptest.Server
	secret signing.Secret
	ver    *signing.Verifier

	mu   sync.Mutex
	reqs []received
}

// noJitter is the default schedule without jitter, so tests can assert the
// exact attempt times.
func noJitter() backoff.BackOff {
	return &delivery.Schedule{Delays: delivery.DefaultSchedule, RepeatLast: true}
}

func newSecret(t testing.TB) signing.Secret {
	t.Helper()
	s, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	require.NoError(t, err)
	return s
}

func newSigner(t testing.TB, secrets ...signing.Secret) *signing.Signer {
	t.Helper()
	ring, err := signing.NewKeyRing(secrets[0], secrets[1:]...)
	require.NoError(t, err)
	s, err := signing.NewSigner(signing.SignerConfig{Keys: ring, Schemes: signing.SchemeStandard | signing.SchemeHex, Prefix: "Runflow"})
	require.NoError(t, err)
	return s
}

func newHarness(t *testing.T, handle http.HandlerFunc, edit func(*delivery.Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: delivery.NewManualClock(t0), st: store.NewMemory(), secret: newSecret(t)}
	var err error
	h.ver, err = signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{h.secret}, Schemes: signing.SchemeStandard | signing.SchemeHex, Prefix: "Runflow", Now: h.clock.Now})
	require.NoError(t, err)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, received{Header: r.Header.Clone(), Body: body})
		h.mu.Unlock()
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(h.srv.Close)
	cfg := delivery.Config{
		Signer:      newSigner(t, h.secret),
		Store:       h.st,
		Clock:       h.clock,
		RetryPolicy: noJitter,
		// The receiver is an httptest server on loopback, which the
		// destination guard refuses; guard tests turn this back off.
		AllowPrivateNetworks: true,
	}
	if edit != nil {
		edit(&cfg)
	}
	h.d, err = delivery.New(cfg)
	require.NoError(t, err)
	require.NoError(t, h.d.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, h.d.Stop(ctx))
	})
	return h
}

func (h *harness) requests() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.reqs...)
}

func callback(batch uuid.UUID) payload.Callback {
	return payload.Callback{
		Event:       payload.EventBatchSucceeded,
		BatchID:     batch,
		Status:      payload.StatusSucceeded,
		Output:      json.RawMessage(`{"items":["é","<b>"],"total":2}`),
		DurationMS:  1500,
		CreatedAt:   t0.Add(-time.Minute),
		CompletedAt: t0,
		Metadata:    json.RawMessage(`{"customer":"acme"}`),
	}
}

func (h *harness) deliver(url string) *store.Delivery {
	h.t.Helper()
	rec, err := h.d.Deliver(context.Background(), url, callback(uuid.New()))
	require.NoError(h.t, err)
	return rec
}

// waitAttempts waits until the delivery has at least n recorded attempts and
// returns it.
func (h *harness) waitAttempts(id uuid.UUID, n int) *store.Delivery {
	h.t.Helper()
	return h.waitFor(id, func(d *store.Delivery) bool { return d.AttemptCount >= n }, fmt.Sprintf("reached %d attempts", n))
}

// waitTerminal waits until the delivery is succeeded or failed.
func (h *harness) waitTerminal(id uuid.UUID) *store.Delivery {
	h.t.Helper()
	return h.waitFor(id, func(d *store.Delivery) bool { return d.Status.Terminal() }, "ended")
}

// waitFor waits up to 10 s until the stored delivery satisfies done, and
// returns it.
func (h *harness) waitFor(id uuid.UUID, done func(*store.Delivery) bool, what string) *store.Delivery {
	h.t.Helper()
	var rec *store.Delivery
	require.Eventually(h.t, func() bool {
		var err error
		rec, err = h.st.Get(context.Background(), id)
		require.NoError(h.t, err)
		return done(rec)
	}, 10*time.Second, time.Millisecond, "delivery %s never %s", id, what)
	return rec
}

// settle gives the Deliverer a moment with no expected activity, then
// returns; used to show that nothing happens before its time.
func settle() { time.Sleep(50 * time.Millisecond) }

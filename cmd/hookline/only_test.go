package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// lostAnswer: the first Record applies, but its answer is lost (as with
// a PostgreSQL connection cut after the commit).
type lostAnswer struct {
	*store.Memory
	lost atomic.Bool
}

func (s *lostAnswer) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	err := s.Memory.Record(ctx, token, r)
	if err == nil && s.lost.CompareAndSwap(false, true) {
		return errors.New("connection reset after commit")
	}
	return err
}

// The Deliverer counts that attempt as recorded (it finds it in the store)
// and expects the retry in about a second; the onlyStore, which saw only the
// error, must claim it by then. It once kept its own copy of the due time,
// which stayed at the lease's end, a minute away.
// Both ways of claiming: ClaimOne, and, for a Store without it, Get then
// Claim.
func TestOnlyStoreRetriesAfterALostRecordAnswer(t *testing.T) {
	for _, oneClaimer := range []bool{true, false} {
		t.Run(fmt.Sprintf("OneClaimer=%v", oneClaimer), func(t *testing.T) {
			st := &lostAnswer{Memory: store.NewMemory()}
			var under store.Store = struct {
				store.Store
				store.LeasedInserter
			}{st, st.Memory}
			if oneClaimer {
				under = struct {
					store.Store
					store.LeasedInserter
					store.OneClaimer
				}{st, st.Memory, st.Memory}
			}
			retriesAfterALostRecordAnswer(t, st, under)
		})
	}
}

func retriesAfterALostRecordAnswer(t *testing.T, st *lostAnswer, under store.Store) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	sec, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	require.NoError(t, err)
	ring, err := signing.NewKeyRing(sec)
	require.NoError(t, err)
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring, Schemes: signing.SchemeStandard})
	require.NoError(t, err)

	wrapped, only := newOnlyStore(under)
	done := make(chan *store.Delivery, 4)
	d, err := delivery.New(delivery.Config{
		Signer: signer, Store: wrapped, MaxAttempts: 3, AllowPrivateNetworks: true, Workers: 4,
		RetryPolicy: delivery.ExponentialRetryPolicy(time.Second, 30*time.Second),
		Observer:    delivery.Observer{Done: func(rec *store.Delivery) { done <- rec }},
		Logger:      slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, d.Start(ctx))
	defer d.Stop(ctx)
	now := time.Now().UTC()
	rec, err := d.Deliver(ctx, srv.URL, payload.Callback{Event: "batch.succeeded", BatchID: uuid.New(), Status: "succeeded",
		CreatedAt: now, CompletedAt: now})
	require.NoError(t, err)
	only.follow(rec)
	select {
	case got := <-done:
		require.Equal(t, store.StatusSucceeded, got.Status)
	case <-time.After(10 * time.Second):
		g, _ := st.Get(ctx, rec.ID)
		t.Fatalf("the retry, due at %s, was not sent within 10 s (sent %d)", g.NextAttemptAt.Format(time.RFC3339Nano), calls.Load())
	}
}

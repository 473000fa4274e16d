package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// exampleSigner returns a Signer with a fresh Standard Webhooks secret.
func exampleSigner() *signing.Signer {
	secret, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	if err != nil {
		panic(err)
	}
	ring, err := signing.NewKeyRing(secret)
	if err != nil {
		panic(err)
	}
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	if err != nil {
		panic(err)
	}
	return signer
}

// waitFor polls the store until the delivery has n attempts.
func waitFor(st store.Store, id uuid.UUID, n int) *store.Delivery {
	for {
		rec, err := st.Get(context.Background(), id)
		if err != nil {
			panic(err)
		}
		if rec.AttemptCount >= n {
			return rec
		}
		time.Sleep(time.Millisecond)
	}
}

// A receiver that fails twice, then accepts; the manual clock drives the
// retry schedule without waiting for it.
func Example_retryUntilSuccess() {
	var calls atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer receiver.Close()

	start := time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)
	clock := delivery.NewManualClock(start)
	st := store.NewMemory()
	d, err := delivery.New(delivery.Config{
		Signer: exampleSigner(),
		Store:  st,
		Clock:  clock,
		// The default schedule without jitter, so the times below are exact.
		RetryPolicy:          func() backoff.BackOff { return &delivery.Schedule{Delays: delivery.DefaultSchedule} },
		AllowPrivateNetworks: true, // the receiver is on localhost
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	d.Start(ctx)
	defer d.Stop(ctx)

	rec, err := d.Deliver(ctx, receiver.URL, payload.Callback{
		Event: payload.EventBatchSucceeded, BatchID: uuid.New(), Status: payload.StatusSucceeded,
	})
	if err != nil {
		panic(err)
	}
	for n := 1; ; n++ {
		rec = waitFor(st, rec.ID, n)
		a := rec.Attempts[n-1]
		fmt.Printf("attempt %d at +%s: HTTP %d, delivery %s\n", n, a.CreatedAt.Sub(start), a.StatusCode, rec.Status)
		if rec.Status.Terminal() {
			break
		}
		clock.Set(rec.NextAttemptAt) // jump to the next retry
	}
	// Output:
	// attempt 1 at +0s: HTTP 503, delivery pending
	// attempt 2 at +5s: HTTP 503, delivery pending
	// attempt 3 at +5m5s: HTTP 200, delivery succeeded
}

// Redeliver sends the batch's frozen bytes again, as a new manual delivery.
func ExampleDeliverer_Redeliver() {
	var bodies []string
	done := make(chan struct{}, 2)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		done <- struct{}{}
	}))
	defer receiver.Close()

	st := store.NewMemory()
	d, err := delivery.New(delivery.Config{Signer: exampleSigner(), Store: st, Workers: 1, AllowPrivateNetworks: true})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	d.Start(ctx)
	defer d.Stop(ctx)

	batch := uuid.New()
	first, _ := d.Deliver(ctx, receiver.URL, payload.Callback{Event: payload.EventBatchFailed, BatchID: batch, Status: payload.StatusFailed})
	<-done
	waitFor(st, first.ID, 1)

	again, err := d.Redeliver(ctx, batch)
	if err != nil {
		panic(err)
	}
	<-done
	waitFor(st, again.ID, 1)

	history, _ := d.History(ctx, batch)
	fmt.Println("deliveries:", len(history))
	fmt.Println("newest is automatic:", history[0].IsAutomatic)
	fmt.Println("same bytes sent twice:", bodies[0] == bodies[1])

	// A batch without deliveries cannot be redelivered.
	_, err = d.Redeliver(ctx, uuid.New())
	fmt.Println(err != nil && errors.Is(err, delivery.ErrNotFound))
	// Output:
	// deliveries: 2
	// newest is automatic: false
	// same bytes sent twice: true
	// true
}

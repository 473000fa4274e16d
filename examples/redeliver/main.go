// Command redeliver shows how a host service exposes hookline's delivery
// record and manual redelivery behind its own HTTP routes:
//
//	GET  /v1/batches/{batch_id}/callback                 the latest delivery record
//	POST /v1/batches/{batch_id}/callback-redeliveries    send the callback again
//
// Authentication (a bearer token) and tenancy (the X-Organization-Id header
// must own the batch) are the host's job; hookline only delivers. Errors map
// to: malformed batch id 400, missing or wrong token 401, batch of another
// organization or unknown 404, delivery still in flight 422
// {"error_type":"conflict"}.
//
//	go run ./examples/redeliver -addr 127.0.0.1:8080
//
// It seeds one delivered batch and prints curl commands to try.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
)

// Batches is the host's own record of which organization owns which batch.
type Batches struct {
	mu    sync.Mutex
	owner map[uuid.UUID]string
}

// Add records that org owns batch.
func (b *Batches) Add(batch uuid.UUID, org string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.owner == nil {
		b.owner = make(map[uuid.UUID]string)
	}
	b.owner[batch] = org
}

// Owns reports whether org owns batch.
func (b *Batches) Owns(org string, batch uuid.UUID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return org != "" && b.owner[batch] == org
}

// NewHandler returns the host's routes over d. token is the bearer token
// every request must carry.
func NewHandler(d *delivery.Deliverer, batches *Batches, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/batches/{batch_id}/callback", func(w http.ResponseWriter, r *http.Request) {
		batch, ok := authorize(w, r, batches, token)
		if !ok {
			return
		}
		h, err := d.History(r.Context(), batch)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "could not read the delivery history")
			return
		}
		if len(h) == 0 {
			writeError(w, http.StatusNotFound, "not_found", "the batch has no callback delivery")
			return
		}
		writeJSON(w, http.StatusOK, h[0])
	})
	mux.HandleFunc("POST /v1/batches/{batch_id}/callback-redeliveries", func(w http.ResponseWriter, r *http.Request) {
		batch, ok := authorize(w, r, batches, token)
		if !ok {
			return
		}
		rec, err := d.Redeliver(r.Context(), batch)
		switch {
		case errors.Is(err, delivery.ErrNotFound):
			writeError(w, http.StatusNotFound, "not_found", "the batch has no callback delivery to redeliver")
		case errors.Is(err, delivery.ErrConflict):
			writeError(w, http.StatusUnprocessableEntity, "conflict", "a callback delivery for this batch is still in flight")
		case err != nil:
			writeError(w, http.StatusInternalServerError, "internal", "could not start the redelivery")
		default:
			writeJSON(w, http.StatusAccepted, rec)
		}
	})
	return mux
}

// authorize checks the token, the batch id and the organization's ownership,
// answering the request itself when one fails.
func authorize(w http.ResponseWriter, r *http.Request, batches *Batches, token string) (uuid.UUID, bool) {
	// The scheme name is case-insensitive (RFC 9110, section 11.1).
	scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
		return uuid.Nil, false
	}
	// Only the canonical form: uuid.Parse also takes upper case, braces,
	// urn:uuid: and no hyphens, which would make one batch many URLs.
	text := r.PathValue("batch_id")
	batch, err := uuid.Parse(text)
	if err != nil || batch.String() != text {
		writeError(w, http.StatusBadRequest, "invalid_request", "batch_id is not a UUID")
		return uuid.Nil, false
	}
	if !batches.Owns(r.Header.Get("X-Organization-Id"), batch) {
		// Not "forbidden": do not reveal that another organization's batch exists.
		writeError(w, http.StatusNotFound, "not_found", "no such batch")
		return uuid.Nil, false
	}
	return batch, true
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]string{"error_type": typ, "message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "redeliver: unexpected argument %q; every setting is a flag\n", flag.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// A local customer endpoint that accepts every callback.
	customer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("customer endpoint: received %s", r.Header.Get("Webhook-Id"))
	}))
	defer customer.Close()

	secret, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	if err != nil {
		log.Fatal(err)
	}
	ring, err := signing.NewKeyRing(secret)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	if err != nil {
		log.Fatal(err)
	}
	// The demo's customer endpoint is on loopback, which the destination
	// guard refuses; a real host leaves AllowPrivateNetworks false.
	d, err := delivery.New(delivery.Config{Signer: signer, AllowPrivateNetworks: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer d.Stop(context.Background())

	batches := &Batches{}
	batch := uuid.Must(uuid.NewV7())
	batches.Add(batch, "org_demo")
	if _, err := d.Deliver(ctx, customer.URL, payload.Callback{
		Event: payload.EventBatchSucceeded, BatchID: batch, Status: payload.StatusSucceeded,
		CompletedAt: time.Now(),
	}); err != nil {
		log.Fatal(err)
	}

	const token = "demo-token"
	srv := &http.Server{Addr: *addr, Handler: NewHandler(d, batches, token), ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Printf("try:\n  curl -H 'Authorization: Bearer %s' -H 'X-Organization-Id: org_demo' http://%s/v1/batches/%s/callback\n", token, *addr, batch)
	fmt.Printf("  curl -X POST -H 'Authorization: Bearer %s' -H 'X-Organization-Id: org_demo' http://%s/v1/batches/%s/callback-redeliveries\n", token, *addr, batch)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

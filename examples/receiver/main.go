// Command receiver is a webhook receiver of the kind your customers run: it
// verifies every callback with hookline's signing middleware and processes
// each delivery once, however often it arrives.
//
// hookline delivers at least once: a retry after a lost answer, a crash of
// the sender, or a manual redelivery can bring the same delivery again. The
// webhook-id header (the delivery id, the same on every retry) tells them
// apart, so the receiver remembers the ids it has processed and answers a
// repeat with 200 without doing the work again. A manual redelivery has a new
// id, on purpose: it is a request to process the batch again.
//
//	HOOKLINE_SECRETS=whsec_... go run ./examples/receiver -addr 127.0.0.1:8080
//
// HOOKLINE_SECRETS holds one or more secrets, comma-separated (old and new
// during a rotation).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
)

// Receiver processes verified callbacks once per webhook-id.
type Receiver struct {
	// Process does the work for one callback; it runs once per delivery id.
	Process func(id string, cb payload.Callback) error

	mu   sync.Mutex
	seen map[string]time.Time // delivery id -> when it was processed
}

// Handler returns the receiver's HTTP handler, behind v's middleware.
func (rc *Receiver) Handler(v *signing.Verifier) http.Handler {
	return v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body) // exactly the verified bytes
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		cb, err := payload.Parse(body)
		if err != nil {
			http.Error(w, "processing failed", http.StatusInternalServerError)
			return
		}
		verified, _ := signing.VerifiedFromContext(r.Context())
		id := verified.MessageID // webhook-id: the same on every retry
		if id == "" {
			// The hex scheme sends no delivery id (its Request-Id header
			// changes on every attempt): fall back to the batch, which
			// also drops a manual redelivery of it.
			id = "batch " + cb.BatchID.String()
		}
		if !rc.claim(id) {
			w.WriteHeader(http.StatusOK) // a repeat: already done
			return
		}
		if err := rc.Process(id, cb); err != nil {
			rc.forget(id) // let the sender's retry try again
			http.Error(w, "processing failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// claim records id as processed, reporting false when it already was.
func (rc *Receiver) claim(id string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen == nil {
		rc.seen = make(map[string]time.Time)
	}
	if _, dup := rc.seen[id]; dup {
		return false
	}
	// A real receiver keeps ids in its database, in the same transaction as
	// the work, for longer than the sender retries (hookline: about 27 h).
	rc.seen[id] = time.Now()
	return true
}

func (rc *Receiver) forget(id string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.seen, id)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	prefix := flag.String("prefix", signing.DefaultPrefix, "header prefix of the hex scheme (<prefix>-Signature)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "receiver: unexpected argument %q; the secrets come from HOOKLINE_SECRETS\n", flag.Arg(0))
		os.Exit(2)
	}
	var secrets []signing.Secret
	for _, s := range strings.Split(os.Getenv("HOOKLINE_SECRETS"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		secret, err := signing.NewSecret(uuid.Nil, s)
		if err != nil {
			log.Fatalf("HOOKLINE_SECRETS: %v", err)
		}
		secrets = append(secrets, secret)
	}
	if len(secrets) == 0 {
		log.Fatal("set HOOKLINE_SECRETS to the signing secret(s), comma-separated")
	}
	// Both schemes when every secret is a whsec_ secret, so that a sender
	// set to either (hookline send --scheme hex, say) is accepted, else the
	// hex scheme alone, which takes any secret; the hex scheme is what the
	// fallback to the batch below is for.
	schemes := signing.SchemeStandard | signing.SchemeHex
	for _, s := range strings.Split(os.Getenv("HOOKLINE_SECRETS"), ",") {
		if s = strings.TrimSpace(s); s != "" && !strings.HasPrefix(s, signing.StandardSecretPrefix) {
			schemes = signing.SchemeHex
		}
	}
	v, err := signing.NewVerifier(signing.VerifierConfig{Secrets: secrets, Schemes: schemes, Prefix: *prefix})
	if err != nil {
		log.Fatal(err)
	}
	rc := &Receiver{Process: func(id string, cb payload.Callback) error {
		out, _ := json.Marshal(map[string]any{"delivery": id, "event": cb.Event, "batch_id": cb.BatchID, "status": cb.Status})
		log.Printf("processed %s", out)
		return nil
	}}
	log.Printf("listening on http://%s", *addr)
	srv := &http.Server{Addr: *addr, Handler: rc.Handler(v), ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

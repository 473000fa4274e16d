// Command quickstart delivers one signed batch callback through an in-memory
// hookline Deliverer and prints the delivery record as JSON.
//
// With no flags it starts its own local receiver, which verifies the
// signature with the signing package:
//
//	go run ./examples/quickstart
//
// With -url it sends the callback to your receiver instead, so you can test
// your endpoint; it makes one attempt unless -attempts asks for more, and
// exits non-zero when the delivery does not succeed. The destination guard
// stays on, as in production: a receiver on localhost or a private network
// is refused (reason blocked_destination) unless -allow-private is given:
//
//	go run ./examples/quickstart -url https://example.com/hooks -secret whsec_... -scheme standard
//	go run ./examples/quickstart -url http://localhost:8080/hook -allow-private -secret s3cret -scheme hex -prefix Runflow
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "send to this receiver instead of the built-in one")
	secretFlag := fs.String("secret", "", "signing secret (whsec_... for -scheme standard); required with -url")
	scheme := fs.String("scheme", "standard", "signature scheme: hex, standard or both")
	prefix := fs.String("prefix", signing.DefaultPrefix, "header prefix of the hex scheme (<prefix>-Signature)")
	attempts := fs.Int("attempts", 1, "attempts to make with -url (retries about 1 s, 2 s, 4 s, … apart, ±20%, at most 30 s; a Retry-After on 429 or 503 is honoured up to 30 s)")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of each attempt")
	allowPrivate := fs.Bool("allow-private", false, "with -url, let the callback reach loopback and private addresses (turns the destination guard off; never do this in production)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	logger := log.New(stderr, "", 0)
	usage := func(format string, a ...any) int {
		logger.Printf("quickstart: "+format, a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q: every setting is a flag (the receiver's URL is -url URL)", fs.Arg(0))
	}

	schemes, ok := map[string]signing.Scheme{
		"hex":      signing.SchemeHex,
		"standard": signing.SchemeStandard,
		"both":     signing.SchemeHex | signing.SchemeStandard,
	}[*scheme]
	if !ok {
		return usage("-scheme must be hex, standard or both, not %q", *scheme)
	}
	if *attempts < 1 {
		return usage("-attempts must be at least 1")
	}
	secretText := *secretFlag
	target := *url
	if target == "" {
		if secretText == "" {
			secretText = signing.GenerateSecret()
		}
	} else if secretText == "" {
		return usage("-secret is required with -url: your receiver must know it")
	}
	secretID := uuid.New()
	secret, err := signing.NewSecret(secretID, secretText)
	if err != nil {
		// The error names the secret by its id, which means nothing here.
		return usage("-secret: %s", strings.TrimPrefix(err.Error(), "new secret "+secretID.String()+": "))
	}
	ring, err := signing.NewKeyRing(secret)
	if err != nil {
		return usage("%v", err)
	}
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring, Schemes: schemes, Prefix: *prefix})
	if errors.Is(err, signing.ErrNotStandardSecret) {
		return usage("-secret is not a whsec_ secret, which -scheme %s needs: use one (signing.GenerateSecret makes them) or -scheme hex", *scheme)
	}
	if err != nil {
		return usage("%v", err)
	}

	if target == "" {
		// The built-in receiver: verify, then answer 204.
		verifier, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{secret}, Schemes: schemes, Prefix: *prefix})
		if err != nil {
			return usage("%v", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			logger.Printf("quickstart: start receiver: %v", err)
			return 1
		}
		srv := &http.Server{Handler: verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			v, _ := signing.VerifiedFromContext(r.Context())
			logger.Printf("receiver: verified %s signature (secret %s) on %d bytes", v.Scheme, v.SecretID, len(body))
			w.WriteHeader(http.StatusNoContent)
		}))}
		go srv.Serve(ln)
		defer srv.Close()
		target = "http://" + ln.Addr().String() + "/hooks/batches"
		*attempts = 1
		*allowPrivate = true // the built-in receiver is on loopback
	}

	done := make(chan *store.Delivery, 1)
	d, err := delivery.New(delivery.Config{
		Signer:         signer,
		MaxAttempts:    *attempts,
		RetryPolicy:    delivery.ExponentialRetryPolicy(time.Second, 30*time.Second),
		MaxRetryAfter:  30 * time.Second, // as the policy: no hour-long silent wait
		AttemptTimeout: *timeout,
		// Off only for the built-in receiver or when -allow-private asks.
		AllowPrivateNetworks: *allowPrivate,
		Observer: delivery.Observer{
			Attempt: func(rec *store.Delivery, a store.Attempt) {
				msg := a.ErrorMessage
				if msg == "" {
					msg = http.StatusText(a.StatusCode)
				}
				logger.Printf("attempt %d: %s (%d ms)", a.AttemptNumber, msg, a.ResponseTimeMS)
			},
			Done: func(rec *store.Delivery) { done <- rec },
		},
	})
	if err != nil {
		return usage("%v", err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		logger.Printf("quickstart: %v", err)
		return 1
	}
	defer d.Stop(ctx)

	now := time.Now()
	rec, err := d.Deliver(ctx, target, payload.Callback{
		Event:       payload.EventBatchSucceeded,
		BatchID:     uuid.Must(uuid.NewV7()),
		Status:      payload.StatusSucceeded,
		Output:      payload.Output{Items: []map[string]any{{"id": "item-1", "status": "succeeded"}}, Succeeded: 1, Total: 1},
		DurationMS:  1234,
		CreatedAt:   now.Add(-1234 * time.Millisecond),
		CompletedAt: now,
		Metadata:    map[string]any{"source": "hookline quickstart"},
	})
	if errors.Is(err, delivery.ErrInvalidURL) {
		return usage("%v", err)
	}
	if err != nil {
		logger.Printf("quickstart: %v", err)
		return 1
	}
	logger.Printf("delivering batch %s to %s", rec.BatchID, target)

	<-done
	final, err := d.Get(ctx, rec.ID)
	if err != nil {
		logger.Printf("quickstart: %v", err)
		return 1
	}
	out, _ := json.MarshalIndent(final, "", "  ")
	fmt.Fprintln(stdout, string(out))
	if final.Status != store.StatusSucceeded {
		logger.Printf("quickstart: delivery %s: %s", final.Status, final.FailureDetail)
		if final.FailureReason == store.ReasonBlockedDestination {
			logger.Printf("quickstart: the destination guard refused a loopback or private address; pass -allow-private to test a local receiver")
		}
		return 1
	}
	return 0
}

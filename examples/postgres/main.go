// Command postgres is the quickstart on PostgreSQL: it enqueues one signed
// batch callback in the same transaction that marks the batch done (the
// outbox pattern), lets a Deliverer on the Postgres store send it to a local
// receiver that verifies the signature, and prints the delivery record as
// JSON.
//
//	go run ./examples/postgres -dsn postgres://postgres@127.0.0.1:5432/test
//	HOOKLINE_DATABASE_URL=postgres://... go run ./examples/postgres
//
// It creates (or migrates) hookline's tables in the schema named by -schema
// (default "hookline_example", not the "hookline" that services use by
// default) and a table of its own, hookline_example_batches, in the same
// schema. Its Deliverer is a replica like any other: on a schema that holds
// other deliveries it sends those that are due too, signed with its own
// throwaway secret and with the destination guard off, so give it a schema
// of its own.
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
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("postgres", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", os.Getenv("HOOKLINE_DATABASE_URL"), "PostgreSQL connection string (default $HOOKLINE_DATABASE_URL)")
	schema := fs.String("schema", "hookline_example", "schema for hookline's tables (one of the example's own)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the delivery to end")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	logger := log.New(stderr, "", 0)
	if fs.NArg() > 0 {
		logger.Printf("postgres example: unexpected argument %q; the connection string is -dsn DSN", fs.Arg(0))
		return 2
	}
	fail := func(format string, a ...any) int {
		logger.Printf("postgres example: "+format, a...)
		return 1
	}
	if *dsn == "" {
		logger.Print("postgres example: give a database with -dsn or HOOKLINE_DATABASE_URL, e.g. -dsn postgres://postgres@127.0.0.1:5432/test")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	// The store: a pool, a schema, and its tables.
	pool, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		return fail("%v", err)
	}
	defer pool.Close()
	pg, err := postgres.New(pool, postgres.Options{Schema: *schema})
	if err != nil {
		return fail("%v", err)
	}
	if err := pg.Migrate(ctx); err != nil {
		return fail("%v", err)
	}
	batches := pgx.Identifier{*schema, "hookline_example_batches"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+batches+" (id uuid PRIMARY KEY, status text NOT NULL, finished_at timestamptz NOT NULL)"); err != nil {
		return fail("create the example's batches table: %v", err)
	}

	// The receiver: verify, then answer 204.
	secret, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	if err != nil {
		return fail("%v", err)
	}
	ring, err := signing.NewKeyRing(secret)
	if err != nil {
		return fail("%v", err)
	}
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring, Schemes: signing.SchemeStandard})
	if err != nil {
		return fail("%v", err)
	}
	verifier, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{secret}, Schemes: signing.SchemeStandard})
	if err != nil {
		return fail("%v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("start receiver: %v", err)
	}
	srv := &http.Server{Handler: verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v, _ := signing.VerifiedFromContext(r.Context())
		logger.Printf("receiver: verified %s signature (secret %s) on %d bytes", v.Scheme, v.SecretID, len(body))
		w.WriteHeader(http.StatusNoContent)
	}))}
	go srv.Serve(ln)
	defer srv.Close()
	target := "http://" + ln.Addr().String() + "/hooks/batches"

	// The Deliverer on the Postgres store. Every replica of a service runs
	// one like it; they share the work through the database.
	// Done runs for every delivery this Deliverer ends, which on a shared
	// schema includes other replicas' deliveries: note each and never block.
	var mu sync.Mutex
	ended := map[uuid.UUID]bool{}
	endedOne := make(chan struct{}, 1)
	d, err := delivery.New(delivery.Config{
		Signer:               signer,
		Store:                pg,
		AllowPrivateNetworks: true, // the receiver is on 127.0.0.1; never in production
		Observer: delivery.Observer{
			Done: func(rec *store.Delivery) {
				mu.Lock()
				ended[rec.ID] = true
				mu.Unlock()
				select {
				case endedOne <- struct{}{}:
				default:
				}
			},
		},
	})
	if err != nil {
		return fail("%v", err)
	}
	if err := d.Start(ctx); err != nil {
		return fail("%v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
	}()

	// The outbox: the batch's new state and its callback commit together,
	// or neither does.
	batchID := uuid.Must(uuid.NewV7())
	now := time.Now()
	var rec *store.Delivery
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+batches+" (id, status, finished_at) VALUES ($1, 'succeeded', $2)", batchID, now); err != nil {
			return err
		}
		var err error
		rec, err = d.DeliverTx(ctx, pg.Tx(tx), target, payload.Callback{
			Event:       payload.EventBatchSucceeded,
			BatchID:     batchID,
			Status:      payload.StatusSucceeded,
			Output:      payload.Output{Items: []map[string]any{{"id": "item-1", "status": "succeeded"}}, Succeeded: 1, Total: 1},
			DurationMS:  1234,
			CreatedAt:   now.Add(-1234 * time.Millisecond),
			CompletedAt: now,
			Metadata:    map[string]any{"source": "hookline postgres example"},
		})
		return err
	})
	if err != nil {
		return fail("finish batch %s: %v", batchID, err)
	}
	logger.Printf("batch %s marked succeeded and its callback enqueued in one transaction", batchID)

	for {
		mu.Lock()
		ours := ended[rec.ID]
		mu.Unlock()
		if ours {
			break
		}
		select {
		case <-endedOne:
		case <-ctx.Done():
			return fail("delivery %s did not end within %s", rec.ID, *timeout)
		}
	}
	final, err := d.Get(ctx, rec.ID)
	if err != nil {
		return fail("%v", err)
	}
	out, _ := json.MarshalIndent(final, "", "  ")
	fmt.Fprintln(stdout, string(out))
	if final.Status != store.StatusSucceeded {
		return fail("delivery %s: %s", final.Status, final.FailureDetail)
	}
	return 0
}

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

const dbFlagsUsage = `  --dsn DSN            Postgres connection string (default $HOOKLINE_DATABASE_URL)
  --schema S           schema of the hookline tables (default hookline)
`

var historyCommand = &command{
	name:    "history",
	summary: "list a batch's deliveries from the Postgres store",
	usage: `Usage: hookline history BATCH_ID [--dsn DSN] [--schema S] [--json]

Lists the deliveries of a batch, newest first: id, whether it was the
automatic delivery or a manual redelivery, status, attempts made, failure
reason and creation time. With --json it prints the delivery records, each
with its attempts, as a JSON array (empty for an unknown batch).

Flags:
` + dbFlagsUsage + `  --json               print the records as a JSON array
  -h, --help           print this help
`,
}

var redeliverCommand = &command{
	name:    "redeliver",
	summary: "enqueue a new delivery of a batch's callback in the Postgres store",
	usage: `Usage: hookline redeliver BATCH_ID [--dsn DSN] [--schema S] [--wait --secret S] [--json]

Enqueues a new, manual delivery of the batch's callback: the exact bytes and
URL of its latest delivery, a new id. It prints the new record (pending)
and exits 0. It fails while the batch's latest delivery is still pending,
and for a batch with no delivery.

redeliver only enqueues. The Deliverer of the service that uses the store
(the host) sends the new delivery, signed with the host's own secrets, at
once when it listens for notifications, else at its next poll.

With --wait, hookline also runs a Deliverer itself, signing with --secret,
until the new delivery has succeeded or failed, and then prints the final
record; it exits 1 when the delivery failed. It sends that delivery only,
and makes its first attempt itself (the delivery is stored leased to it,
so a running host does not take it); a retry goes to whichever Deliverer
claims it first, and --wait then waits for the host's result. Any other
delivery of the queue it happens to claim while its own is due is released
at once for the host's workers.

Flags:
` + dbFlagsUsage + `  --wait               run a Deliverer until the new delivery ends
  --secret S           with --wait: the signing secret (default $HOOKLINE_SECRET)
  --secret-id UUID     with --wait: id recorded as the signing secret's
  --scheme SCHEME      with --wait: standard (default), hex or both
  --prefix P           with --wait: header prefix of the hex scheme (default Hookline)
  --attempts N         attempts the new delivery gets (default 8)
  --timeout D          with --wait: timeout of each attempt (default 10s)
  --allow-private      with --wait: let attempts reach loopback and private
                       addresses (local testing only)
  --json               print the record as JSON
  -h, --help           print this help
`,
}

var migrateCommand = &command{
	name:    "migrate",
	summary: "create or update the Postgres store's tables",
	usage: `Usage: hookline migrate [--dsn DSN] [--schema S] [--json]

Creates the schema and the tables of the Postgres store, or applies the
migrations it lacks, in one transaction, and prints the schema version.
Running it again is harmless. Services that call postgres.Store.Migrate on
start do not need it.

Flags:
` + dbFlagsUsage + `  --json               print {"schema": ..., "previous_version": N, "version": N}
  -h, --help           print this help
`,
}

func init() {
	historyCommand.run = runHistory
	redeliverCommand.run = runRedeliver
	migrateCommand.run = runMigrate
}

func runHistory(c *cli, args []string) int {
	cmd := historyCommand
	fs := newFlagSet(cmd.name)
	var db dbFlags
	db.register(fs, true)
	asJSON := fs.Bool("json", false, "")
	rest, err := c.parse(cmd, fs, args)
	if err != nil {
		return exitFor(err)
	}
	batchID, err := parseBatchID(rest)
	if err != nil {
		return c.usageError(cmd, "%v", err)
	}
	if err := db.resolve(); err != nil {
		return c.usageError(cmd, "%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	pool, st, err := db.open(ctx)
	if err != nil {
		return c.failure(cmd, "%v", err)
	}
	defer pool.Close()
	if err := checkMigrated(ctx, st); err != nil {
		return c.failure(cmd, "%v", err)
	}
	recs, err := st.History(ctx, batchID)
	if err != nil {
		return c.failure(cmd, "%v", err)
	}
	if *asJSON {
		if recs == nil {
			recs = []*store.Delivery{}
		}
		if err := writeJSON(c.stdout, recs); err != nil {
			return c.failure(cmd, "%v", err)
		}
		return 0
	}
	if len(recs) == 0 {
		fmt.Fprintf(c.stderr, "no deliveries for batch %s in schema %s\n", batchID, db.schema)
		return 0
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAUTOMATIC\tSTATUS\tATTEMPTS\tREASON\tCREATED")
	for _, r := range recs {
		reason := string(r.FailureReason)
		if reason == "" {
			reason = "-"
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\t%d/%d\t%s\t%s\n", r.ID, r.IsAutomatic, r.Status, r.AttemptCount, r.MaxAttempts, reason,
			r.CreatedAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
	return 0
}

func runRedeliver(c *cli, args []string) int {
	cmd := redeliverCommand
	fs := newFlagSet(cmd.name)
	var db dbFlags
	db.register(fs, true)
	var sf signerFlags
	sf.register(fs)
	wait := fs.Bool("wait", false, "")
	attempts := fs.Int("attempts", delivery.DefaultMaxAttempts, "")
	timeout := fs.Duration("timeout", 10*time.Second, "")
	allowPrivate := fs.Bool("allow-private", false, "")
	asJSON := fs.Bool("json", false, "")
	rest, err := c.parse(cmd, fs, args)
	if err != nil {
		return exitFor(err)
	}
	batchID, err := parseBatchID(rest)
	if err != nil {
		return c.usageError(cmd, "%v", err)
	}
	if err := db.resolve(); err != nil {
		return c.usageError(cmd, "%v", err)
	}
	if *attempts < 1 {
		return c.usageError(cmd, "--attempts must be at least 1")
	}
	if *timeout <= 0 {
		return c.usageError(cmd, "--timeout must be positive")
	}
	// Without --wait nothing is signed here (the host signs when it sends),
	// so the Deliverer gets a throwaway secret, whatever --secret,
	// HOOKLINE_SECRET or --scheme say.
	if !*wait {
		sf = signerFlags{secret: signing.GenerateSecret(), scheme: "standard"}
	}
	signer, err := sf.signer(*wait)
	if err != nil {
		return c.usageError(cmd, "%v", err)
	}

	ctx, stop := signalContext()
	defer stop()
	pool, st, err := db.open(ctx)
	if err != nil {
		return c.failure(cmd, "%v", err)
	}
	defer pool.Close()
	if err := checkMigrated(ctx, st); err != nil {
		return c.failure(cmd, "%v", err)
	}
	w := &waiter{cli: c, cmd: cmd}
	wrapped, only := newOnlyStore(st)
	d, err := delivery.New(delivery.Config{
		Signer:               signer,
		Store:                wrapped,
		MaxAttempts:          *attempts,
		AttemptTimeout:       *timeout,
		AllowPrivateNetworks: *allowPrivate,
		Workers:              4,
		Observer:             w.observer(),
		Logger:               slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return c.usageError(cmd, "%v", err)
	}
	if *wait {
		// Started first, so that the delivery goes straight to this
		// process's worker (see onlyStore). Without --wait nothing is
		// started: the delivery is inserted for the host's Deliverers.
		if code, ok := w.start(ctx, d); !ok {
			return code
		}
		defer w.stop(ctx, d, *timeout)
	}
	rec, err := d.Redeliver(ctx, batchID)
	switch {
	case errors.Is(err, delivery.ErrNotFound):
		return c.failure(cmd, "batch %s has no delivery in schema %s", batchID, db.schema)
	case errors.Is(err, delivery.ErrConflict):
		return c.failure(cmd, "%v (wait until it has succeeded or failed)", err)
	case err != nil:
		return c.failure(cmd, "%v", err)
	}
	if !*wait {
		fmt.Fprintf(c.stderr, "enqueued delivery %s of batch %s; the host's Deliverer sends it (to send a redelivery from here instead, run redeliver with --wait in place of, not after, this)\n", rec.ID, batchID)
		if *asJSON {
			if err := writeJSON(c.stdout, rec); err != nil {
				return c.failure(cmd, "%v", err)
			}
		} else {
			printRecord(c.stdout, rec)
		}
		return 0
	}
	fmt.Fprintf(c.stderr, "enqueued delivery %s of batch %s; delivering to %s\n", rec.ID, batchID, redactedURL(rec.CallbackURL))
	only.follow(rec)
	final, code := w.wait(ctx, d, rec.ID)
	if final == nil {
		return code
	}
	return c.printOutcome(cmd, final, *asJSON)
}

func runMigrate(c *cli, args []string) int {
	cmd := migrateCommand
	fs := newFlagSet(cmd.name)
	var db dbFlags
	db.register(fs, true)
	asJSON := fs.Bool("json", false, "")
	rest, err := c.parse(cmd, fs, args)
	if err != nil {
		return exitFor(err)
	}
	if len(rest) > 0 {
		return c.usageError(cmd, "unexpected argument %q", rest[0])
	}
	if err := db.resolve(); err != nil {
		return c.usageError(cmd, "%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	pool, st, err := db.open(ctx)
	if err != nil {
		return c.failure(cmd, "%v", err)
	}
	defer pool.Close()
	before, err := st.Version(ctx)
	if err != nil {
		return c.failure(cmd, "read the schema version: %v", err)
	}
	if err := st.Migrate(ctx); err != nil {
		return c.failure(cmd, "%v", err)
	}
	after, err := st.Version(ctx)
	if err != nil {
		return c.failure(cmd, "read the schema version: %v", err)
	}
	if *asJSON {
		if err := writeJSON(c.stdout, map[string]any{"schema": db.schema, "version": after, "previous_version": before}); err != nil {
			return c.failure(cmd, "%v", err)
		}
		return 0
	}
	if before == after {
		fmt.Fprintf(c.stdout, "schema %s is up to date at version %d\n", db.schema, after)
	} else {
		fmt.Fprintf(c.stdout, "schema %s migrated from version %d to %d\n", db.schema, before, after)
	}
	return 0
}

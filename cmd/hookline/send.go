package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/store"
)

var sendCommand = &command{
	name:    "send",
	summary: "fire a signed test callback at a URL and print the delivery record",
	usage: `Usage: hookline send --url URL --secret S [flags]

Freezes a batch callback, signs it and delivers it to URL through a
Deliverer of its own, then prints the delivery record: a summary, or the
record's JSON with --json. Each attempt is reported on stderr. Exit status 0
when the delivery succeeded, 1 when it did not, 2 for a usage error.

The payload comes from the flags, or from a JSON file (--file, "-" for
stdin) holding any of event, batch_id, status, output, metadata,
duration_ms, created_at and completed_at; flags given explicitly override
the file. A missing batch id is a new UUIDv7.

The destination guard is on, as in production: a receiver on loopback or a
private network is refused (reason blocked_destination) unless
--allow-private is given, which is for local testing only.

The delivery is kept in memory unless --dsn names a Postgres store, where
'hookline history' and 'hookline redeliver' find it; the schema must have
been migrated. send sends only its own delivery, and makes its first
attempt itself (the delivery is stored leased to it, so a running host
does not take it); a retry goes to whichever Deliverer claims it first.
Any other delivery of the queue it happens to claim while its own is due
is released at once for the host's workers.

Flags:
  --url URL            the receiver (required)
  --secret S           signing secret, whsec_... for the standard scheme
                       (default $HOOKLINE_SECRET; required)
  --secret-id UUID     id recorded as the signing secret's (default nil UUID)
  --scheme SCHEME      standard (Standard Webhooks, default), hex or both
  --prefix P           header prefix of the hex scheme, <P>-Signature
                       (default Hookline)
  --event E            event name (default batch.succeeded)
  --batch-id UUID      batch id (default a new UUIDv7)
  --status S           batch status (default succeeded)
  --output JSON        output value (default a one-item output envelope)
  --metadata JSON      metadata object or null (default {"source":"hookline send"})
  --duration-ms N      batch duration in milliseconds (default 1234)
  --file FILE          read the payload fields from a JSON file ("-": stdin)
  --attempts N         attempts to make, about 1 s, 2 s, 4 s, ... apart
                       (±20%, at most 30 s; a Retry-After on 429 or 503 is
                       honoured up to 30 s) (default 1)
  --timeout D          timeout of each attempt (default 10s)
  --allow-private      let the callback reach loopback and private addresses
                       (turns the destination guard off; never in production)
  --dsn DSN            keep the delivery in this Postgres store, not memory
                       (HOOKLINE_DATABASE_URL is not read by send)
  --schema S           schema of the hookline tables with --dsn (default hookline)
  --json               print the delivery record as JSON
  -h, --help           print this help

Examples:
  hookline send --url https://example.com/hooks --secret whsec_...
  hookline send --url http://localhost:8080/hook --allow-private \
      --secret s3cret --scheme hex --prefix Runflow --event batch.failed --status failed
  hookline send --url http://localhost:8080/hook --allow-private --file callback.json --json
`,
}

// maxDurationMS is the largest duration_ms whose time.Duration does not
// overflow.
const maxDurationMS = math.MaxInt64 / int64(time.Millisecond)

func init() { sendCommand.run = runSend }

// defaultOutput is the sample output of a test callback.
const defaultOutput = `{"items":[{"id":"item-1","status":"succeeded"}],"succeeded":1,"failed":0,"cancelled":0,"total":1}`

// fileCallback is the lenient form of --file: every field optional.
type fileCallback struct {
	Event       *string         `json:"event"`
	BatchID     *string         `json:"batch_id"`
	Status      *string         `json:"status"`
	Output      json.RawMessage `json:"output"`
	Metadata    json.RawMessage `json:"metadata"`
	DurationMS  *int64          `json:"duration_ms"`
	CreatedAt   *string         `json:"created_at"`
	CompletedAt *string         `json:"completed_at"`
}

// decodeFile reads raw, which must be one JSON object whose fields are
// fileCallback's: a misspelt field ("evnt") would otherwise send the
// default silently.
func decodeFile(raw []byte, fc *fileCallback) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return errors.New("want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(fc); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

func runSend(c *cli, args []string) int {
	cmd := sendCommand
	fs := newFlagSet(cmd.name)
	var sf signerFlags
	sf.register(fs)
	var db dbFlags
	db.register(fs, false)
	url := fs.String("url", "", "")
	event := fs.String("event", payload.EventBatchSucceeded, "")
	batchFlag := fs.String("batch-id", "", "")
	status := fs.String("status", payload.StatusSucceeded, "")
	output := fs.String("output", defaultOutput, "")
	metadata := fs.String("metadata", `{"source":"hookline send"}`, "")
	durationMS := fs.Int64("duration-ms", 1234, "")
	file := fs.String("file", "", "")
	attempts := fs.Int("attempts", 1, "")
	timeout := fs.Duration("timeout", 10*time.Second, "")
	allowPrivate := fs.Bool("allow-private", false, "")
	asJSON := fs.Bool("json", false, "")
	rest, err := c.parse(cmd, fs, args)
	if err != nil {
		return exitFor(err)
	}
	if len(rest) > 0 {
		return c.usageError(cmd, "unexpected argument %q", rest[0])
	}
	if *url == "" {
		return c.usageError(cmd, "--url is required")
	}
	if *attempts < 1 {
		return c.usageError(cmd, "--attempts must be at least 1")
	}
	if *timeout <= 0 {
		return c.usageError(cmd, "--timeout must be positive")
	}
	signer, err := sf.signer(true)
	if err != nil {
		return c.usageError(cmd, "%v", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// The payload: defaults, then the file, then the flags given.
	cb := payload.Callback{
		Event:       *event,
		Status:      *status,
		Output:      json.RawMessage(*output),
		Metadata:    json.RawMessage(*metadata),
		DurationMS:  *durationMS,
		CompletedAt: time.Now().UTC(),
	}
	createdGiven := false
	batchText := *batchFlag
	if *file != "" {
		var fc fileCallback
		var raw []byte
		if *file == "-" {
			raw, err = io.ReadAll(c.stdin)
		} else {
			raw, err = os.ReadFile(*file)
		}
		if err != nil {
			return c.usageError(cmd, "read --file: %v", err)
		}
		if err := decodeFile(raw, &fc); err != nil {
			return c.usageError(cmd, "--file %s: not a JSON object of callback fields: %v", *file, err)
		}
		if fc.Event != nil && !set["event"] {
			cb.Event = *fc.Event
		}
		if fc.Status != nil && !set["status"] {
			cb.Status = *fc.Status
		}
		if fc.BatchID != nil && !set["batch-id"] {
			batchText = *fc.BatchID
		}
		if fc.Output != nil && !set["output"] {
			cb.Output = fc.Output
		}
		if fc.Metadata != nil && !set["metadata"] {
			cb.Metadata = fc.Metadata
		}
		if fc.DurationMS != nil && !set["duration-ms"] {
			cb.DurationMS = *fc.DurationMS
		}
		for _, tf := range []struct {
			name string
			v    *string
			dst  *time.Time
		}{{"created_at", fc.CreatedAt, &cb.CreatedAt}, {"completed_at", fc.CompletedAt, &cb.CompletedAt}} {
			if tf.v == nil {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, *tf.v)
			if err != nil {
				return c.usageError(cmd, "--file %s: %s: %v", *file, tf.name, err)
			}
			*tf.dst = t
			createdGiven = createdGiven || tf.name == "created_at"
		}
	}
	if cb.DurationMS < 0 || cb.DurationMS > maxDurationMS {
		return c.usageError(cmd, "duration_ms %d is out of range: 0 to %d", cb.DurationMS, int64(maxDurationMS))
	}
	if !createdGiven {
		cb.CreatedAt = cb.CompletedAt.Add(-time.Duration(cb.DurationMS) * time.Millisecond)
	}
	if batchText == "" {
		cb.BatchID = uuid.Must(uuid.NewV7())
	} else if cb.BatchID, err = uuid.Parse(batchText); err != nil {
		return c.usageError(cmd, "batch id %q is not a UUID", batchText)
	}
	for name, v := range map[string]*any{"output": &cb.Output, "metadata": &cb.Metadata} {
		if raw := (*v).(json.RawMessage); !json.Valid(raw) {
			return c.usageError(cmd, "%s is not valid JSON: %s", name, raw)
		}
	}
	if _, err := payload.Freeze(cb); err != nil {
		return c.usageError(cmd, "%v", err)
	}
	if db.dsn != "" {
		if err := db.check(); err != nil {
			return c.usageError(cmd, "%v", err)
		}
	}

	ctx, stop := signalContext()
	defer stop()
	var st store.Store = store.NewMemory()
	if db.dsn != "" {
		pool, pg, err := db.open(ctx)
		if err != nil {
			return c.failure(cmd, "%v", err)
		}
		defer pool.Close()
		if err := checkMigrated(ctx, pg); err != nil {
			return c.failure(cmd, "%v", err)
		}
		st = pg
	}
	w := &waiter{cli: c, cmd: cmd}
	wrapped, only := newOnlyStore(st)
	d, err := delivery.New(delivery.Config{
		Signer:               signer,
		Store:                wrapped,
		MaxAttempts:          *attempts,
		RetryPolicy:          delivery.ExponentialRetryPolicy(time.Second, 30*time.Second),
		MaxRetryAfter:        30 * time.Second, // as the policy: no hour-long silent wait
		AttemptTimeout:       *timeout,
		AllowPrivateNetworks: *allowPrivate,
		Workers:              4,
		Observer:             w.observer(),
		Logger:               slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return c.usageError(cmd, "%v", err)
	}
	// Started first, so that the delivery goes straight to this process's
	// worker (see onlyStore).
	if code, ok := w.start(ctx, d); !ok {
		return code
	}
	defer w.stop(ctx, d, *timeout)
	rec, err := d.Deliver(ctx, *url, cb)
	if errors.Is(err, delivery.ErrInvalidURL) {
		return c.usageError(cmd, "--url: %v", err)
	}
	if errors.Is(err, store.ErrConflict) {
		return c.failure(cmd, "%v (the batch already has a delivery of other bytes or to another URL; 'hookline redeliver %s' sends its latest again)", err, cb.BatchID)
	}
	if err != nil {
		return c.failure(cmd, "%v", err)
	}
	if rec.Status.Terminal() {
		// Deliver handed back the batch's earlier delivery: same bytes.
		fmt.Fprintf(c.stderr, "batch %s was already delivered (delivery %s): nothing sent; 'hookline redeliver %s' sends it again\n", rec.BatchID, rec.ID, rec.BatchID)
		return c.printOutcome(cmd, rec, *asJSON)
	}
	fmt.Fprintf(c.stderr, "delivering batch %s to %s (delivery %s)\n", rec.BatchID, *url, rec.ID)
	only.follow(rec)
	final, code := w.wait(ctx, d, rec.ID)
	if final == nil {
		return code
	}
	return c.printOutcome(cmd, final, *asJSON)
}

// printOutcome prints a terminal delivery and returns 0 when it succeeded.
func (c *cli) printOutcome(cmd *command, final *store.Delivery, asJSON bool) int {
	if asJSON {
		if err := writeJSON(c.stdout, final); err != nil {
			return c.failure(cmd, "%v", err)
		}
	} else {
		printRecord(c.stdout, final)
	}
	if final.Status != store.StatusSucceeded {
		fmt.Fprintf(c.stderr, "hookline %s: delivery %s %s: %s: %s\n", cmd.name, final.ID, final.Status, final.FailureReason, final.FailureDetail)
		if final.FailureReason == store.ReasonBlockedDestination {
			fmt.Fprintf(c.stderr, "hookline %s: the destination guard refused a loopback or private address; pass --allow-private to test a local receiver\n", cmd.name)
		}
		return 1
	}
	return 0
}

// waiter runs a Deliverer until one delivery is terminal, reporting each of
// its attempts on stderr.
type waiter struct {
	cli  *cli
	cmd  *command
	done chan *store.Delivery
}

func (w *waiter) observer() delivery.Observer {
	w.done = make(chan *store.Delivery, 64)
	return delivery.Observer{
		Attempt: func(rec *store.Delivery, a store.Attempt) {
			msg := a.ErrorMessage
			if msg == "" {
				msg = fmt.Sprintf("%d %s", a.StatusCode, http.StatusText(a.StatusCode))
			}
			fmt.Fprintf(w.cli.stderr, "delivery %s attempt %d: %s (%d ms)\n", rec.ID, a.AttemptNumber, msg, a.ResponseTimeMS)
		},
		Done: func(rec *store.Delivery) {
			select {
			case w.done <- rec:
			default: // the poll below finds it
			}
		},
	}
}

// start starts d; when it cannot, it reports why and returns the exit
// status and false.
func (w *waiter) start(ctx context.Context, d *delivery.Deliverer) (int, bool) {
	if err := d.Start(ctx); err != nil {
		return w.cli.failure(w.cmd, "%v", err), false
	}
	return 0, true
}

// stop stops d, giving an attempt in flight its time; when ctx (the
// command's) has ended, the attempts were aborted with it and only their
// leases are being given back, which gets a second (then Stop's own 2 s
// grace for a Store that does not answer; a second Ctrl-C ends the wait).
func (w *waiter) stop(ctx context.Context, d *delivery.Deliverer, attemptTimeout time.Duration) {
	wait := attemptTimeout + 5*time.Second
	if ctx.Err() != nil {
		wait = time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	d.Stop(sctx)
}

// wait waits until delivery id is terminal (sent by d, or by another worker
// of a shared store). It returns the final record, or nil and an exit status
// when interrupted or the store fails.
func (w *waiter) wait(ctx context.Context, d *delivery.Deliverer, id uuid.UUID) (*store.Delivery, int) {
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, w.cli.failure(w.cmd, "interrupted before delivery %s ended; in a Postgres store it stays pending for any running Deliverer (at once, or when its lease expires if it could not be given back; in memory it is gone)", id)
		case rec := <-w.done:
			if rec.ID != id {
				continue
			}
		case <-poll.C:
		}
		rec, err := d.Get(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return nil, w.cli.failure(w.cmd, "read delivery %s: %v", id, err)
		}
		if rec.Status.Terminal() {
			return rec, 0
		}
	}
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// redactedURL hides a password in a callback URL (a host with
// AllowURLUserinfo may store one), for summaries that end up in terminals
// and CI logs. The JSON record (--json) shows the URL as stored.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// printRecord prints a human summary of a delivery record.
func printRecord(w io.Writer, rec *store.Delivery) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	kind := "automatic"
	if !rec.IsAutomatic {
		kind = "manual redelivery"
	}
	fmt.Fprintf(tw, "delivery\t%s\n", rec.ID)
	fmt.Fprintf(tw, "batch\t%s\n", rec.BatchID)
	fmt.Fprintf(tw, "url\t%s\n", redactedURL(rec.CallbackURL))
	fmt.Fprintf(tw, "kind\t%s\n", kind)
	fmt.Fprintf(tw, "status\t%s\n", strings.ToUpper(string(rec.Status)))
	if rec.FailureReason != "" {
		fmt.Fprintf(tw, "reason\t%s: %s\n", rec.FailureReason, rec.FailureDetail)
	}
	fmt.Fprintf(tw, "attempts\t%d of %d\n", rec.AttemptCount, rec.MaxAttempts)
	if rec.SigningSecretID.Valid && rec.SigningSecretID.UUID != uuid.Nil {
		fmt.Fprintf(tw, "secret id\t%s\n", rec.SigningSecretID.UUID)
	}
	fmt.Fprintf(tw, "created\t%s\n", payload.FormatTime(rec.CreatedAt))
	if !rec.CompletedAt.IsZero() {
		fmt.Fprintf(tw, "completed\t%s\n", payload.FormatTime(rec.CompletedAt))
	} else if !rec.NextAttemptAt.IsZero() {
		fmt.Fprintf(tw, "next attempt\t%s\n", payload.FormatTime(rec.NextAttemptAt))
	}
	for _, a := range rec.Attempts {
		res := a.ErrorMessage
		if a.StatusCode != 0 {
			res = fmt.Sprintf("%d %s", a.StatusCode, http.StatusText(a.StatusCode))
			if a.ErrorMessage != "" && a.FailureReason != store.ReasonHTTPError { // that one says the status again
				res += ": " + a.ErrorMessage
			}
		}
		fmt.Fprintf(tw, "attempt %d\t%s  %s (%d ms)\n", a.AttemptNumber, payload.FormatTime(a.CreatedAt), res, a.ResponseTimeMS)
	}
	tw.Flush()
}

package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"

	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// Version is hookline's version, sent in the User-Agent header.
const Version = "0.1.0"

// UserAgent is the User-Agent header of every attempt.
const UserAgent = "hookline/" + Version + " (+https://github.com/hookline/hookline)"

// storeRetries are the pauses between tries of a Record or Release that
// failed: the attempt has happened, so its outcome is worth a few tries
// before the lease is left to expire (the delivery is then attempted again).
var storeRetries = []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 800 * time.Millisecond, 2 * time.Second}

var (
	contentTypeJSON = []string{"application/json"}
	userAgent       = []string{UserAgent}
)

// worker is one worker goroutine's own state, kept between attempts.
type worker struct {
	// Attempts run under ctx, a child of the run context that lasts from
	// attempt to attempt: timer cancels it, with errAttemptTimeout as the
	// cause, when an attempt outlasts AttemptTimeout, and only then is a
	// new one made. This spares each attempt a context, a timer and a
	// channel of its own.
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	body   bytes.Buffer     // response bodies are read into it, kept between attempts
	limit  io.LimitedReader // caps each read at ResponseReadLimit
}

// errAttemptTimeout is the cause with which an attempt's context ends when
// the attempt outlasts Config.AttemptTimeout.
var errAttemptTimeout = errors.New("attempt timeout exceeded")

// begin returns the context for an attempt, which ends after timeout.
func (w *worker) begin(parent context.Context, timeout time.Duration) context.Context {
	if w.ctx == nil {
		ctx, cancel := context.WithCancelCause(parent)
		w.ctx, w.cancel = ctx, cancel
		w.timer = time.AfterFunc(timeout, func() { cancel(errAttemptTimeout) })
		return ctx
	}
	w.timer.Reset(timeout)
	return w.ctx
}

// end disarms the attempt's timer. A context the timer has ended, or is
// ending, is not used again.
func (w *worker) end() {
	if !w.timer.Stop() {
		w.ctx = nil // the timer's function cancels it
	}
}

// close releases the worker's context when the worker stops.
func (w *worker) close() {
	if w.ctx != nil {
		w.timer.Stop()
		w.cancel(nil)
	}
}

// readBody reads r to its end or to limit bytes into w.body and returns
// them; the slice is valid until the next call.
func (w *worker) readBody(r io.Reader, limit int) ([]byte, error) {
	w.body.Reset()
	w.limit = io.LimitedReader{R: r, N: int64(limit)}
	_, err := w.body.ReadFrom(&w.limit)
	w.limit.R = nil // keep no reference to the response
	return w.body.Bytes(), err
}

// work makes one attempt of a claimed delivery and records it, then any
// newer claim of the same delivery that arrived meanwhile (see claimed). A
// delivery whose host already has MaxPerHost attempts in flight waits in the
// host's queue instead, without a worker; the worker that frees a slot of the
// host takes it next. A queued delivery is counted out of busy while it
// waits (see admit), so hosts that hang leave idle workers room to claim.
func (d *Deliverer) work(w *worker, rec *store.Delivery) {
	if d.stopping() {
		// Claimed ahead and not started: give it back at once, for this
		// or another process.
		d.releaseChain(rec, d.cfg.Clock.Now())
		d.finishedOne()
		return
	}
	host := hostKey(rec.CallbackURL)
	switch adm, wait := d.admit(host, rec); adm {
	case queued:
		return
	case full:
		// The host's queue is full too: give the delivery back until the
		// host is likely to have room. The attempt is not counted; only
		// its time moves.
		d.releaseChain(rec, d.cfg.Clock.Now().Add(wait))
		d.finishedOne()
		return
	}
	for rec != nil { // holding one of the host's slots
		t0 := time.Now() // real time, as attempts take
		switch {
		case d.stopping():
			d.releaseChain(rec, d.cfg.Clock.Now())
		case d.cfg.Clock.Now().Add(d.cfg.AttemptTimeout).After(rec.LeaseExpiresAt):
			// Waited (for a worker, or in the host's queue) until the
			// lease could run out mid-attempt: let any worker take it
			// again at once.
			d.releaseChain(rec, d.cfg.Clock.Now())
		default:
			d.workChain(w, rec)
		}
		d.finishedOne()
		rec = d.nextForHost(host, time.Since(t0))
	}
}

// releaseChain releases rec and any newer claim of it, due at next.
func (d *Deliverer) releaseChain(rec *store.Delivery, next time.Time) {
	for r := rec; r != nil; r = d.finished(r.ID) {
		d.release(r, next)
	}
}

// release gives a leased delivery back, due at next, without an attempt,
// and makes sure the dispatcher looks for it then.
func (d *Deliverer) release(rec *store.Delivery, next time.Time) {
	ctx := d.storeCtx
	if d.releaseCap.Load() {
		// Stop's context has ended, or Stop has returned (a Deliver giving
		// back what it inserted after that, say): a Store that does not
		// answer holds this goroutine no longer than stopGrace.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, stopGrace)
		defer cancel()
	}
	if d.leased(rec, "release", func(token uuid.UUID) error { return d.cfg.Store.Release(ctx, rec.ID, token, next) }, nil) == nil {
		d.expectDue(next)
	}
}

// workChain attempts rec, then any newer claim of it that arrived meanwhile
// (see claimed). With recorders (see Start) the worker hands each attempt's
// outcome to them and returns; a recorder then takes up the chain.
func (d *Deliverer) workChain(w *worker, rec *store.Delivery) {
	for r := rec; r != nil; r = d.finished(r.ID) {
		res, aborted := d.attempt(w, r)
		if aborted {
			d.release(r, d.cfg.Clock.Now())
			continue
		}
		if d.records != nil {
			d.records <- recordJob{r, res}
			return
		}
		d.record(r, res)
	}
}

// recordJob is an attempt made, waiting for a recorder.
type recordJob struct {
	rec *store.Delivery
	res store.Result
}

// recordLoop is a recorder: it records attempts the workers made, then
// passes on any newer claim of the delivery to a worker (or, when none can
// take it at once, back to the Store, due now).
func (d *Deliverer) recordLoop() {
	for j := range d.records {
		d.record(j.rec, j.res)
		if newer := d.finished(j.rec.ID); newer != nil {
			d.sendMu.RLock()
			sent := false
			if d.open.Load() && d.takeOne() {
				d.jobs <- newer // never blocks: see Start
				sent = true
			}
			d.sendMu.RUnlock()
			if !sent {
				d.releaseChain(newer, d.cfg.Clock.Now())
			}
		}
	}
}

// record stores the outcome of an attempt of rec under its lease, then
// reports it.
func (d *Deliverer) record(rec *store.Delivery, res store.Result) {
	// Store calls outlive an abort: the lease must be recorded or released.
	ctx := d.storeCtx
	err := d.leased(rec, "record", func(token uuid.UUID) error { return d.cfg.Store.Record(ctx, token, res) },
		func() bool { return d.recorded(ctx, rec.ID, res.Attempt.ID) })
	if err != nil {
		return
	}
	rec.AttemptCount = res.Attempt.AttemptNumber
	rec.Status, rec.FailureReason, rec.FailureDetail = res.Status, res.FailureReason, res.FailureDetail
	rec.SigningSecretID, rec.NextAttemptAt = res.SigningSecretID, res.NextAttemptAt
	rec.UpdatedAt, rec.CompletedAt = res.UpdatedAt, res.CompletedAt
	rec.LeaseToken, rec.LeaseExpiresAt = uuid.Nil, time.Time{}
	if rec.Status == store.StatusPending {
		d.expectDue(rec.NextAttemptAt)
	}
	d.report(rec, res.Attempt)
}

// recorded reports whether delivery id holds the attempt attemptID. A
// Record whose answer was lost (the connection cut after the commit) may
// have applied before a retry found the lease ended by it.
func (d *Deliverer) recorded(ctx context.Context, id, attemptID uuid.UUID) bool {
	got, err := d.cfg.Store.Get(ctx, id)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(got.Attempts, func(a store.Attempt) bool { return a.ID == attemptID })
}

// leased runs a Record or Release under rec's lease. When the lease is
// lost, applied (if not nil) says whether an earlier try applied after all
// (its answer lost): then the call is done, and a newer claim, if any, is
// left for finished to hand on. Else, if the lease was lost because this
// Deliverer's own dispatcher claimed the delivery again while the attempt
// ran (its lease ran out under it), the call is made again under the newer
// lease, which this worker takes over: the attempt already made is recorded
// instead of being sent a second time.
func (d *Deliverer) leased(rec *store.Delivery, op string, call func(token uuid.UUID) error, applied func() bool) error {
	err := d.retryStore(op, func() error { return call(rec.LeaseToken) })
	// The dispatcher may have claimed the delivery again meanwhile, more
	// than once if the clock jumped past a lease again: follow each claim.
	for errors.Is(err, store.ErrLeaseLost) {
		if applied != nil && applied() {
			return nil
		}
		newer := d.takeNewer(rec.ID)
		if newer == nil {
			break
		}
		rec.LeaseToken, rec.LeaseExpiresAt = newer.LeaseToken, newer.LeaseExpiresAt
		err = d.retryStore(op, func() error { return call(rec.LeaseToken) })
	}
	return err
}

// retryStore runs call until it succeeds, fails with ErrLeaseLost,
// ErrNotFound or ErrInvalidArgument (which no retry mends), the retries run
// out, or the Deliverer is aborted (Stop's context ended).
func (d *Deliverer) retryStore(op string, call func() error) error {
	var err error
	for i := 0; ; i++ {
		if err = call(); err == nil {
			return nil
		}
		if errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrNotFound) {
			d.cfg.Logger.Warn("hookline: lease lost; another worker owns the delivery", "op", op, "error", err)
			return err
		}
		d.storeError(op, err)
		if i == len(storeRetries) || d.runCtx.Err() != nil || errors.Is(err, store.ErrInvalidArgument) {
			return err // a refused argument: no retry mends it
		}
		// Once Stop's context has ended (or Start's), no more tries: Stop
		// is not to wait for a failing Store, and the lease will expire.
		t := time.NewTimer(storeRetries[i])
		select {
		case <-t.C:
		case <-d.runCtx.Done():
			t.Stop()
			return err
		}
	}
}

func (d *Deliverer) report(rec *store.Delivery, a store.Attempt) {
	log := d.cfg.Logger
	ctx := d.runCtx
	switch {
	case rec.Status == store.StatusSucceeded:
		if log.Enabled(ctx, slog.LevelDebug) {
			log.DebugContext(ctx, "hookline: delivered", "delivery_id", rec.ID, "batch_id", rec.BatchID, "attempt", a.AttemptNumber, "status", a.StatusCode)
		}
	case rec.Status == store.StatusFailed:
		log.WarnContext(ctx, "hookline: delivery failed", "delivery_id", rec.ID, "batch_id", rec.BatchID, "attempts", a.AttemptNumber,
			"reason", rec.FailureReason, "detail", rec.FailureDetail)
	default:
		if log.Enabled(ctx, slog.LevelInfo) {
			log.InfoContext(ctx, "hookline: attempt failed; will retry", "delivery_id", rec.ID, "batch_id", rec.BatchID, "attempt", a.AttemptNumber,
				"reason", rec.FailureReason, "detail", rec.FailureDetail, "next_attempt_at", rec.NextAttemptAt)
		}
	}
	if f := d.cfg.Observer.Attempt; f != nil {
		f(rec, a)
	}
	if f := d.cfg.Observer.Done; f != nil && rec.Status.Terminal() {
		f(rec)
	}
}

// attempt sends one request for rec and returns what to record. aborted is
// true when the Deliverer was stopped mid-attempt; nothing should be
// recorded then.
func (d *Deliverer) attempt(w *worker, rec *store.Delivery) (res store.Result, aborted bool) {
	signer := d.signer.Load()
	start := d.cfg.Clock.Now()
	a := store.Attempt{
		ID:            uuid.Must(uuid.NewV7()),
		DeliveryID:    rec.ID,
		AttemptNumber: rec.AttemptCount + 1,
		CreatedAt:     start,
	}
	res = store.Result{DeliveryID: rec.ID, SigningSecretID: uuid.NullUUID{UUID: signer.Keys().Primary().ID(), Valid: true}}

	// Real time, read before the timer is armed: an attempt cut off by the
	// timeout records at least AttemptTimeout.
	t0 := time.Now()
	ctx := w.begin(d.runCtx, d.cfg.AttemptTimeout)
	status, body, header, reason, detail, elapsed := d.send(ctx, w, rec, a.ID, start, t0, signer)
	w.end()
	if d.runCtx.Err() != nil && status == 0 {
		return res, true
	}
	a.StatusCode, a.ResponseBody, a.ResponseTimeMS = status, body, elapsed.Milliseconds()

	now := d.cfg.Clock.Now()
	res.UpdatedAt = now
	detail = store.StorableText(detail) // it may quote a header (Location) or an error
	if reason == "" {
		res.Status = store.StatusSucceeded
		res.CompletedAt = now
		a.ErrorMessage = detail // e.g. a body that could not be read to the end
		res.Attempt = a
		return res, false
	}
	a.ErrorMessage, a.FailureReason = detail, reason
	res.Attempt, res.FailureReason, res.FailureDetail = a, reason, detail

	permanent := reason == store.ReasonBlockedDestination || reason == store.ReasonInvalidURL || status == http.StatusGone
	delay := backoff.Stop
	if !permanent && a.AttemptNumber < rec.MaxAttempts {
		delay = delayAfter(d.cfg.RetryPolicy, a.AttemptNumber)
	}
	if delay == backoff.Stop {
		res.Status, res.CompletedAt = store.StatusFailed, now
		return res, false
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if ra, ok := retryAfter(header.Get("Retry-After"), now); ok {
			delay = max(delay, min(ra, d.cfg.MaxRetryAfter))
		}
	}
	next := now.Add(delay)
	if store.CheckTimes("retry", next, d.cfg.Lease) != nil {
		// No Store keeps a retry that late (with its lease, past year
		// MaxYear): the delivery ends here, recorded, rather than its
		// Record being refused and the attempt made again unrecorded.
		res.Status, res.CompletedAt = store.StatusFailed, now
		res.FailureDetail += fmt.Sprintf("; not retried: the next attempt would fall after year %d", store.MaxYear)
		return res, false
	}
	res.Status, res.NextAttemptAt = store.StatusPending, next
	return res, false
}

// send POSTs the frozen bytes and reads the response under the body limit;
// elapsed is the real time since t0. reason is empty for a 2xx.
func (d *Deliverer) send(ctx context.Context, w *worker, rec *store.Delivery, requestID uuid.UUID, now, t0 time.Time, signer *signing.Signer) (status int, body string, header http.Header, reason store.FailureReason, detail string, elapsed time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rec.CallbackURL, bytes.NewReader(rec.Payload))
	if err != nil {
		return 0, "", nil, store.ReasonInvalidURL, "cannot build request: " + err.Error(), 0
	}
	// Shared, capacity-limited values: nothing writes them, and an append
	// would copy.
	req.Header["Content-Type"] = contentTypeJSON[:1:1]
	req.Header["User-Agent"] = userAgent[:1:1]
	if u := req.URL.User; u != nil {
		// As http.Client does; the default client's transport is called
		// directly (see New), which would drop the credentials.
		password, _ := u.Password()
		req.SetBasicAuth(u.Username(), password)
	}
	if err := signer.Sign(req.Header, rec.ID.String(), requestID, now, rec.Payload); err != nil {
		// A Signer that cannot sign is a configuration error; retrying may
		// meet a fixed Signer (SetSigner).
		return 0, "", nil, store.ReasonConnectionError, "not sent: signing failed: " + err.Error(), 0
	}

	resp, err := d.do(req)
	if err != nil {
		reason, detail := classify(ctx, err)
		return 0, "", nil, reason, detail, time.Since(t0)
	}
	defer resp.Body.Close()
	var b []byte
	var readErr error
	if resp.StatusCode >= 200 {
		b, readErr = w.readBody(resp.Body, d.cfg.ResponseReadLimit)
	}
	// else a 101 Switching Protocols, whose body is the connection itself:
	// the attempt's context cannot interrupt a read of it, so a receiver
	// that keeps it open would hold the worker; it is not read.
	elapsed = time.Since(t0)
	status, header = resp.StatusCode, resp.Header
	if status < 100 || status > 999 {
		// net/http takes any three digits over HTTP/1 ("050") and any
		// number over HTTP/2 (":status 1000"); a status is 100 to 999, as
		// a malformed status line is a transport error.
		return 0, "", nil, store.ReasonConnectionError, fmt.Sprintf("malformed HTTP response: status code %03d", status), elapsed
	}
	body = responseText(b, d.cfg.ResponseBodyLimit)
	if readErr != nil {
		_, msg := classify(ctx, readErr)
		detail = "reading response body: " + msg
	}
	switch {
	case status >= 200 && status < 300:
		return status, body, header, "", detail, elapsed
	case status >= 300 && status < 400:
		detail = fmt.Sprintf("HTTP %d %s (redirects are not followed)", status, http.StatusText(status))
		if loc := resp.Header.Get("Location"); loc != "" {
			detail += " to " + quote(redactURL(loc))
		}
		return status, body, header, store.ReasonRedirect, detail, elapsed
	default:
		return status, body, header, store.ReasonHTTPError, fmt.Sprintf("HTTP %d %s", status, http.StatusText(status)), elapsed
	}
}

// responseText is the text stored of a response body: at most limit bytes,
// with bytes that are not UTF-8 (a prefix may also cut a character in two),
// and NUL bytes, which PostgreSQL cannot store in text, replaced by U+FFFD,
// so that every store keeps the same text. A replacement is 3 bytes, so it
// is cut again, at a character boundary.
func responseText(b []byte, limit int) string {
	return cutAt(store.StorableText(string(b[:min(len(b), limit)])), limit)
}

// cutAt returns s cut to at most n bytes, at a character boundary.
func cutAt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// tlsHandshakeError reports a TLS failure that crypto/tls gives no type to:
// an alert from the server over TCP (a *net.OpError whose Op is "remote
// error", wrapping an unexported alert), or a check of its own during the
// handshake (an error whose text starts with "tls: ", such as a protocol
// version the client does not accept).
func tlsHandshakeError(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if op, ok := e.(*net.OpError); ok && op.Op == "remote error" {
			return true
		}
		if strings.HasPrefix(e.Error(), "tls: ") {
			return true
		}
	}
	return false
}

// classify maps a transport error to a failure reason and a message. A
// refusal of the destination guard comes first: it is final whatever else
// happened, and its message (the refused address and range) is the detail.
func classify(ctx context.Context, err error) (store.FailureReason, string) {
	var (
		blocked  *BlockedError
		badURL   *URLError
		dnsErr   *net.DNSError
		certErr  *tls.CertificateVerificationError
		unknownA x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		netErr   net.Error
	)
	msg := err.Error()
	switch {
	case errors.As(err, &blocked):
		return store.ReasonBlockedDestination, blocked.Error()
	case errors.Is(err, ErrBlockedDestination):
		return store.ReasonBlockedDestination, msg
	case errors.As(err, &badURL): // a host the guard's dialer will not resolve
		return store.ReasonInvalidURL, badURL.Error()
	case errors.Is(err, errAttemptTimeout) || context.Cause(ctx) == errAttemptTimeout ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return store.ReasonTimeout, msg
	case errors.As(err, &dnsErr):
		return store.ReasonDNSError, msg
	case errors.As(err, &certErr), errors.As(err, &unknownA), errors.As(err, &hostErr),
		errors.As(err, &invalid), errors.As(err, &recErr), errors.As(err, &alertErr), tlsHandshakeError(err):
		return store.ReasonTLSError, msg
	case errors.As(err, &netErr) && netErr.Timeout():
		return store.ReasonTimeout, msg
	default:
		// Refused, reset, closed early (EOF) and every other failure to
		// get a response.
		return store.ReasonConnectionError, msg
	}
}

// Package delivery sends batch callbacks: it freezes a payload once, stores
// the delivery, signs and POSTs it, retries on a schedule, and records every
// attempt.
//
// # Sending
//
// Build one Deliverer for the process and start it:
//
//	d, err := delivery.New(delivery.Config{Signer: signer}) // memory store, system clock
//	if err != nil { ... }
//	if err := d.Start(ctx); err != nil { ... }
//	defer d.Stop(shutdownCtx) // waits for attempts in flight, releases the rest
//
// When a batch ends, hand its callback over; Deliver returns the stored record
// at once and a worker sends it:
//
//	rec, err := d.Deliver(ctx, callbackURL, payload.Callback{...})
//
// Deliver refuses bad input with typed errors: *URLError (ErrInvalidURL),
// *payload.FieldError (payload.ErrInvalid), ErrPayloadTooLarge, and
// ErrConflict for a second, different callback of one batch. With the
// PostgreSQL store, DeliverTx enqueues inside the host's own transaction.
//
// # Attempts and retries
//
// A 2xx ends a delivery as succeeded. 410 Gone, a refused destination and an
// invalid URL end it as failed at once; any other failure is retried on the
// RetryPolicy (by default DefaultSchedule: at once, 5 s, 5 min, 30 min, 2 h,
// 5 h, 10 h, 10 h, with ±20% jitter) until MaxAttempts. Retry-After on 429 and
// 503 is honoured up to MaxRetryAfter. Redirects are never followed.
//
// # Safety
//
// The default HTTP client checks the address of every connection after DNS
// resolution and refuses loopback, private, link-local (cloud metadata) and
// other special ranges (see BlockedRanges and CheckDestination), reads at most
// ResponseReadLimit bytes of a response, and bounds each attempt by
// AttemptTimeout. MaxPerHost keeps one slow endpoint from occupying every
// worker. Set AllowPrivateNetworks only in development and tests.
//
// # Redelivery and history
//
// Redeliver sends a batch's latest frozen bytes again under a new delivery id;
// History and Get return records whose JSON is hookline's delivery record, for
// the host's own routes.
//
// # Time
//
// Every decision that depends on time reads the Config's Clock. A
// ManualClock lets a test run a day of retry schedule in milliseconds:
// Advance or Set moves it and fires the retries that came due. Real time
// bounds and measures real I/O only (see Clock).
//
// # Stores and many processes
//
// The Store decides where deliveries live: store.NewMemory (the default) in
// the process, store/postgres in PostgreSQL, where any number of Deliverers in
// any number of processes share the work. Workers claim due deliveries under
// a lease (Deliver inserts a delivery already leased when the workers have room)
// and record each attempt only under their current lease token, so a delivery is
// never attempted by two workers at once, and a crash repeats at most the
// attempts that were in flight or not yet recorded.
package delivery

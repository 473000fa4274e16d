package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookline/hookline/store"
)

// Insert adds a new pending delivery in its own transaction and notifies
// the schema's listeners when it commits (see Store.Insert and Notify).
// Besides store.ErrConflict it returns a descriptive error, inserting
// nothing, when d is not a valid new delivery (see store.CheckNew) or its ID
// is already stored. The lease fields of d are ignored. Insert
// is safe for concurrent use.
func (s *Store) Insert(ctx context.Context, d *store.Delivery) error {
	if err := s.made(); err != nil {
		return err
	}
	if err := store.CheckContext(ctx, "insert delivery"); err != nil {
		return err
	}
	if err := store.CheckNew(d); err != nil {
		return err
	}
	return s.insert(ctx, unleased(d))
}

// InsertLeased adds a new pending delivery already leased with d.LeaseToken
// until d.LeaseExpiresAt (see store.LeasedInserter), in its own transaction.
// Nobody else may claim it before the lease expires, so no listener is
// notified. It refuses what Insert refuses, and a nil LeaseToken or a
// LeaseExpiresAt not after NextAttemptAt. It is safe for concurrent use.
func (s *Store) InsertLeased(ctx context.Context, d *store.Delivery) error {
	if err := s.made(); err != nil {
		return err
	}
	if err := store.CheckContext(ctx, "insert leased delivery"); err != nil {
		return err
	}
	if err := store.CheckLeased(d); err != nil {
		return err
	}
	c := *d
	c.NextAttemptAt = d.LeaseExpiresAt // as after a Claim
	return s.insert(ctx, &c)
}

// insert writes the valid new delivery d, a copy the caller no longer
// touches, leased when its LeaseToken is set.
func (s *Store) insert(ctx context.Context, d *store.Delivery) error {
	if s.inserts == nil {
		return s.insertOwn(ctx, d)
	}
	d.Payload = bytes.Clone(d.Payload)
	return s.inserts.do(ctx, d.ID, d)
}

// unleased returns a copy of d without lease fields.
func unleased(d *store.Delivery) *store.Delivery {
	c := *d
	c.LeaseToken, c.LeaseExpiresAt = uuid.Nil, time.Time{}
	return &c
}

// Tx returns an Inserter that adds deliveries inside tx, the caller's own
// transaction, so that a delivery commits or rolls back together with the
// caller's other writes: the outbox pattern. Pass it to
// delivery.Deliverer.DeliverTx:
//
//	tx, err := pool.Begin(ctx)
//	// ... mark the batch done in the same tx ...
//	_, err = deliverer.DeliverTx(ctx, pg.Tx(tx), url, callback)
//	err = tx.Commit(ctx)
//
// The listeners of the schema are notified when tx commits; a rolled-back
// delivery is never seen by anyone. A conflict (store.ErrConflict) does not
// abort tx, with one exception that PostgreSQL makes: at REPEATABLE READ or
// SERIALIZABLE, a conflicting delivery committed after tx's snapshot was
// taken is a serialization failure (SQLSTATE 40001), which aborts tx like
// any other; retry the transaction, as for any such failure. Until tx ends,
// an Insert of the same batch elsewhere waits for it (to learn whether it
// conflicts), up to a minute, after which that Insert fails, inserting
// nothing (with Options.DisableGroupCommit, as long as its context allows);
// other Inserts do not wait. tx must be a
// transaction on the Store's database; the Inserter is valid as long as tx
// is, and like tx it must not be used concurrently.
func (s *Store) Tx(tx pgx.Tx) store.Inserter {
	return txInserter{s: s, tx: tx}
}

type txInserter struct {
	s  *Store
	tx pgx.Tx
}

// Insert adds a new pending delivery within the transaction; see Store.Tx
// and Store.Insert.
func (t txInserter) Insert(ctx context.Context, d *store.Delivery) error {
	if t.tx == nil {
		return errors.New("postgres: insert delivery: Tx was given a nil transaction")
	}
	if err := store.CheckContext(ctx, "insert delivery"); err != nil {
		return err
	}
	if err := store.CheckNew(d); err != nil {
		return err
	}
	return t.s.insertOne(ctx, t.tx, unleased(d))
}

// insertOwn inserts the valid new delivery d in a transaction of its own
// (see write), then, when it inserted nothing, says why.
func (s *Store) insertOwn(ctx context.Context, d *store.Delivery) error {
	inserted, err := s.writeOne(ctx, s.sql.insert, insertArgs(d, s.channel))
	if err != nil {
		return execError("insert delivery", d.ID, err)
	}
	if inserted {
		return nil
	}
	return s.insertConflict(ctx, s.pool, d)
}

// insertOne inserts the valid new delivery d through q, the host's
// transaction (see Tx).
func (s *Store) insertOne(ctx context.Context, q querier, d *store.Delivery) error {
	tag, err := q.Exec(ctx, s.sql.insert, insertArgs(d, s.channel)...)
	if err != nil {
		return fmt.Errorf("postgres: insert delivery %s: %w", d.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return s.insertConflict(ctx, q, d)
}

// writeInserts is the group writer of Insert: one statement for the whole
// group, then the reason of each call that inserted nothing. When the
// server refuses the statement (an ERROR, so nothing was inserted), each call is
// written on its own, so that one bad delivery fails alone: concurrently,
// each within its caller's context and answered when its own write ends,
// while the flusher goes on with the next group. The statement waits at
// most groupLockTimeout for a row lock, so a call that must wait for another
// transaction (an uncommitted insert of the same batch) waits alone, not
// holding up every Insert behind it.
func (s *Store) writeInserts(ctx context.Context, calls []*groupCall[*store.Delivery]) {
	n := len(calls)
	var (
		ids, batches = make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		urls         = make([]string, n)
		payloads     = make([][]byte, n)
		secrets      = make([]pgtype.UUID, n)
		automatic    = make([]bool, n)
		maxAttempts  = make([]int32, n)
		next, ctd    = make([]time.Time, n), make([]time.Time, n)
		upd          = make([]time.Time, n)
		ords         = make([]int32, n)
		tokens       = make([]pgtype.UUID, n)
		expires      = make([]pgtype.Timestamptz, n)
	)
	for i, c := range calls {
		d := c.v
		ids[i], batches[i], urls[i], payloads[i] = pgUUID(d.ID), pgUUID(d.BatchID), d.CallbackURL, d.Payload
		secrets[i] = pgNullUUID(d.SigningSecretID)
		automatic[i], maxAttempts[i] = d.IsAutomatic, int32(d.MaxAttempts)
		next[i], ctd[i], upd[i], ords[i] = d.NextAttemptAt, d.CreatedAt, d.UpdatedAt, int32(i)
		tokens[i], expires[i] = pgNullUUID(leaseToken(d)), pgTime(d.LeaseExpiresAt)
	}
	inserted := make(map[[16]byte]bool, n)
	rows, err := s.pool.Query(ctx, s.sql.insertGroup, ids, batches, urls, payloads, secrets, automatic,
		maxAttempts, next, ctd, upd, ords, s.channel, tokens, expires, groupLockTimeout.String())
	if err == nil {
		var id [16]byte
		_, err = pgx.ForEachRow(rows, []any{&id, nil}, func() error { inserted[id] = true; return nil })
	}
	if err != nil {
		if serverRefused(err) {
			for _, c := range calls {
				c.answerLater()
				go func() {
					// The caller's context: a caller that gave up (and was
					// told the outcome is unknown) holds no connection.
					ctx, cancel := context.WithTimeout(c.ctx, groupTimeout)
					defer cancel()
					c.answer(s.insertOwn(ctx, c.v))
				}()
			}
			return
		}
		for _, c := range calls {
			c.err = errUnknownOutcome("insert delivery", c.v.ID, err)
		}
		return
	}
	for _, c := range calls {
		if !inserted[c.v.ID] {
			c.err = s.insertConflict(ctx, s.pool, c.v)
		}
	}
}

// serverRefused reports whether err is the server's refusal of a statement,
// an ERROR, which therefore changed nothing; as opposed to, say, a
// connection lost while the outcome was unknown. A FATAL error ends the
// session and may come after the statement's transaction committed (a
// backend terminated while it waited for a synchronous standby, say), so it
// says nothing about the outcome.
func serverRefused(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return false
	}
	severity := pgErr.SeverityUnlocalized // from PostgreSQL 9.6
	if severity == "" {
		severity = pgErr.Severity
	}
	return severity == "ERROR"
}

// execError is the error of a write statement of the Store's own (in its own
// transaction) that failed on verb of id: when the server refused it, or it
// was never sent (no connection, or pgx sent nothing), nothing applied; otherwise (a connection lost, a FATAL
// error after the commit) the write may have applied, and the error says so.
func execError(verb string, id uuid.UUID, err error) error {
	var we *writeError
	if errors.As(err, &we) && !we.sent || serverRefused(err) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("postgres: %s %s: %w", verb, id, err)
	}
	return errUnknownOutcome(verb, id, err)
}

// errUnknownOutcome wraps err, the failure of a group statement that the
// server did not refuse, for each of its calls: the write may have applied.
func errUnknownOutcome(verb string, id uuid.UUID, err error) error {
	return fmt.Errorf("postgres: %s %s: the outcome is unknown (the write may have applied): %w", verb, id, err)
}

func insertArgs(d *store.Delivery, channel string) []any {
	return []any{pgUUID(d.ID), pgUUID(d.BatchID), d.CallbackURL, d.Payload, pgNullUUID(d.SigningSecretID), d.IsAutomatic,
		d.MaxAttempts, d.NextAttemptAt, d.CreatedAt, d.UpdatedAt, channel, pgNullUUID(leaseToken(d)), pgTime(d.LeaseExpiresAt)}
}

// leaseToken is d's lease token as a nullable UUID: NULL when d is not
// leased.
func leaseToken(d *store.Delivery) uuid.NullUUID {
	return uuid.NullUUID{UUID: d.LeaseToken, Valid: d.LeaseToken != uuid.Nil}
}

// insertConflict says why the insert of d did nothing: its id exists, or its
// batch has a pending or an automatic delivery.
func (s *Store) insertConflict(ctx context.Context, q querier, d *store.Delivery) error {
	var dup bool
	var pending, automatic pgtype.UUID
	if err := q.QueryRow(ctx, s.sql.insertConflict, s.replanFor(q), pgUUID(d.ID), pgUUID(d.BatchID)).Scan(&dup, &pending, &automatic); err != nil {
		return fmt.Errorf("postgres: insert delivery %s: conflict, and reading why failed: %v: %w", d.ID, err, store.ErrConflict)
	}
	switch {
	case dup:
		return fmt.Errorf("postgres: insert delivery %s: a delivery with this id already exists", d.ID)
	case pending.Valid:
		return fmt.Errorf("insert delivery %s: batch %s has pending delivery %s: %w", d.ID, d.BatchID, uuid.UUID(pending.Bytes), store.ErrConflict)
	case d.IsAutomatic && automatic.Valid:
		return fmt.Errorf("insert delivery %s: batch %s already has automatic delivery %s: %w", d.ID, d.BatchID, uuid.UUID(automatic.Bytes), store.ErrConflict)
	default:
		// The conflicting row has changed since the insert saw it. (At
		// REPEATABLE READ or SERIALIZABLE, a conflicting row the
		// transaction's snapshot cannot see makes the insert itself fail
		// with a serialization failure; see Tx.)
		return fmt.Errorf("insert delivery %s: batch %s has a conflicting delivery: %w", d.ID, d.BatchID, store.ErrConflict)
	}
}

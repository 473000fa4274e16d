package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookline/hookline/store"
)

// Claim leases up to limit due deliveries, earliest NextAttemptAt first and,
// at equal times, lowest id first (see Store.Claim), in one statement:
// concurrent claimers, in this process or others, skip the rows another has
// locked and never receive the same delivery under a valid lease. Each
// claimed delivery gets a random lease token; its NextAttemptAt moves to the
// lease expiry. Times are stored to the microsecond, so now and now+lease
// are truncated to it. It returns an error when limit is not positive or
// lease is not a positive duration. Claim is safe for concurrent use.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	if err := store.CheckContext(ctx, "claim"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("postgres: claim: limit is %d, want at least 1: %w", limit, store.ErrInvalidArgument)
	}
	if lease <= 0 {
		return nil, fmt.Errorf("postgres: claim: lease is %v, want a positive duration: %w", lease, store.ErrInvalidArgument)
	}
	if err := store.CheckTimes("claim", now, lease); err != nil {
		return nil, err
	}
	got, err := s.claim(ctx, now, limit, lease)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim: %w", err)
	}
	// RETURNING does not keep the order of the subquery.
	slices.SortFunc(got, func(a, b claimed) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return bytes.Compare(a.d.ID[:], b.d.ID[:])
	})
	out := make([]*store.Delivery, len(got))
	for i, c := range got {
		out[i] = c.d
	}
	return out, nil
}

// ClaimOne leases delivery id when it is pending and due at now (see
// store.OneClaimer); like Claim, it commits without waiting for the disk.
// It is safe for concurrent use, also with Claim in other processes.
func (s *Store) ClaimOne(ctx context.Context, id uuid.UUID, now time.Time, lease time.Duration) (*store.Delivery, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	if err := store.CheckContext(ctx, "claim delivery"); err != nil {
		return nil, err
	}
	if lease <= 0 {
		return nil, fmt.Errorf("postgres: claim delivery %s: lease is %v, want a positive duration: %w", id, lease, store.ErrInvalidArgument)
	}
	if err := store.CheckTimes("claim delivery "+id.String(), now, lease); err != nil {
		return nil, err
	}
	var x deliveryScan
	err := s.write(ctx, func(q querier) error {
		return q.QueryRow(ctx, s.sql.claimOne, pgUUID(id), now, now.Add(lease)).Scan(x.dest()...)
	})
	switch {
	case errNoRows(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("postgres: claim delivery %s: %w", id, err)
	}
	return x.delivery(), nil
}

// claimed is one delivery Claim leased, and when it was due.
type claimed struct {
	due time.Time
	d   *store.Delivery
}

// claim runs the claim statement, whose transaction commits without waiting
// for its WAL to reach the disk (synchronous_commit off, set by the statement
// itself). A lease need not survive a crash of the database server: if the
// server loses it, the delivery is due again as before the claim, and the
// lost token can record nothing, so at worst the attempt is repeated, as
// when a worker dies. Record, whose outcome must survive, commits durably,
// and by doing so makes the claim before it durable too.
func (s *Store) claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]claimed, error) {
	var got []claimed
	err := s.write(ctx, func(q querier) error {
		got = got[:0]
		rows, err := q.Query(ctx, s.sql.claim, now, now.Add(lease), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var x deliveryScan
			var due time.Time
			if err := rows.Scan(append([]any{&due}, x.dest()...)...); err != nil {
				return err
			}
			got = append(got, claimed{due, x.delivery()})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

// Record stores an attempt and the delivery's new state in one statement,
// only while leaseToken is the delivery's current lease and the attempt is
// the next one (see Store.Record). Like the memory store it is fenced by the
// token alone: an expired lease still records until another Claim replaces
// it. Text that PostgreSQL cannot store (NUL bytes, invalid UTF-8) in the
// response body, error message or failure detail is kept with U+FFFD in its
// place. Besides store.ErrNotFound and store.ErrLeaseLost it returns a
// descriptive error, changing nothing, when r is inconsistent: an
// Attempt.DeliveryID other than r.DeliveryID, an AttemptNumber other than
// AttemptCount+1, an unknown status, or times that do not fit the status.
// Record is safe for concurrent use.
func (s *Store) Record(ctx context.Context, leaseToken uuid.UUID, r store.Result) error {
	if err := s.made(); err != nil {
		return err
	}
	if err := store.CheckContext(ctx, "record attempt"); err != nil {
		return err
	}
	if err := store.CheckResult(&r); err != nil {
		return err
	}
	if s.records == nil {
		return s.recordOne(ctx, leaseToken, &r)
	}
	return s.records.do(ctx, r.DeliveryID, recordCall{token: leaseToken, r: r})
}

// recordCall is one Record waiting in a group.
type recordCall struct {
	token uuid.UUID
	r     store.Result
}

// recordOne records the valid result r in its own statement.
func (s *Store) recordOne(ctx context.Context, leaseToken uuid.UUID, r *store.Result) error {
	applied, err := s.writeOne(ctx, s.sql.record, recordArgs(leaseToken, r))
	if err != nil {
		return execError("record attempt on delivery", r.DeliveryID, err)
	}
	if applied {
		return nil
	}
	return s.fenceError(ctx, "record attempt", r.DeliveryID, leaseToken, r.Attempt.AttemptNumber)
}

// writeOne runs the write statement sql, which changes at most one row, in
// its own transaction (see write), and reports whether it changed one.
func (s *Store) writeOne(ctx context.Context, sql string, args []any) (applied bool, err error) {
	err = s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, sql, args...)
		applied = err == nil && tag.RowsAffected() == 1
		return err
	})
	return applied, err
}

// writeRecords is the group writer of Record: one statement for the whole
// group, each row fenced on its own, then the reason of each call that did
// not apply. When the server refuses the statement (an ERROR, so nothing
// applied), each call is written on its own, so that one bad result fails
// alone; any other failure leaves the outcome unknown, and says so.
func (s *Store) writeRecords(ctx context.Context, calls []*groupCall[recordCall]) {
	if len(calls) == 1 {
		calls[0].err = s.recordOne(ctx, calls[0].v.token, &calls[0].v.r)
		return
	}
	n := len(calls)
	var (
		ords, numbers, codes     = make([]int32, n), make([]int32, n), make([]pgtype.Int4, n)
		ids, tokens, attemptIDs  = make([]pgtype.UUID, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		statuses                 = make([]string, n)
		reasons, details, bodies = make([]pgtype.Text, n), make([]pgtype.Text, n), make([]pgtype.Text, n)
		errMsgs, attemptReasons  = make([]pgtype.Text, n), make([]pgtype.Text, n)
		secrets                  = make([]pgtype.UUID, n)
		next, completed          = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		updated, attemptAt       = make([]time.Time, n), make([]time.Time, n)
		elapsed                  = make([]int64, n)
	)
	for i, c := range calls {
		r, a := &c.v.r, &c.v.r.Attempt
		ords[i], ids[i], tokens[i], statuses[i] = int32(i), pgUUID(r.DeliveryID), pgUUID(c.v.token), string(r.Status)
		reasons[i], details[i] = pgText(string(r.FailureReason)), pgText(r.FailureDetail)
		secrets[i] = pgNullUUID(r.SigningSecretID)
		numbers[i], next[i], updated[i], completed[i] = int32(a.AttemptNumber), pgTime(r.NextAttemptAt), r.UpdatedAt, pgTime(r.CompletedAt)
		attemptIDs[i], codes[i], bodies[i] = pgUUID(a.ID), attemptStatus(a), attemptBody(a)
		elapsed[i], errMsgs[i], attemptReasons[i], attemptAt[i] = a.ResponseTimeMS, pgText(a.ErrorMessage), pgText(string(a.FailureReason)), a.CreatedAt
	}
	// One round trip and one transaction: indexLookups, then the group.
	// PostgreSQL may keep a generic plan for the group statement after five
	// runs; made while the table of a new schema is tiny, that plan would
	// read the whole table (a hash join over a sequential scan) and go on
	// doing so as the table grows, until autovacuum next runs ANALYZE.
	// Planned with sequential scans off, every plan looks the group's ids
	// up in the primary key, and can be kept (planning the statement at
	// each run cost about as much as executing it).
	b := &pgx.Batch{}
	b.Queue(s.sql.indexLookups)
	b.Queue(s.sql.recordGroup, ords, ids, tokens, statuses, reasons, details,
		secrets, numbers, next, updated, completed,
		attemptIDs, codes, bodies, elapsed, errMsgs, attemptReasons, attemptAt)
	applied := make([]bool, n)
	br := s.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			var ord int32
			_, err = pgx.ForEachRow(rows, []any{&ord}, func() error { applied[ord] = true; return nil })
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if serverRefused(err) {
			for _, c := range calls {
				c.err = s.recordOne(ctx, c.v.token, &c.v.r)
			}
			return
		}
		for _, c := range calls {
			c.err = errUnknownOutcome("record attempt on delivery", c.v.r.DeliveryID, err)
		}
		return
	}
	for i, c := range calls {
		if !applied[i] {
			c.err = s.fenceError(ctx, "record attempt", c.v.r.DeliveryID, c.v.token, c.v.r.Attempt.AttemptNumber)
		}
	}
}

// attemptStatus is the attempt's HTTP status for the database: NULL when no
// response arrived.
func attemptStatus(a *store.Attempt) pgtype.Int4 {
	return pgtype.Int4{Int32: int32(a.StatusCode), Valid: a.StatusCode != 0}
}

// attemptBody is the attempt's response body for the database: NULL when
// there was neither a response nor a body, as in the JSON record.
func attemptBody(a *store.Attempt) pgtype.Text {
	if a.StatusCode == 0 && a.ResponseBody == "" {
		return pgtype.Text{}
	}
	return pgtype.Text{String: store.StorableText(a.ResponseBody), Valid: true}
}

func recordArgs(token uuid.UUID, r *store.Result) []any {
	a := &r.Attempt
	return []any{
		pgUUID(r.DeliveryID), pgUUID(token), string(r.Status), pgText(string(r.FailureReason)), pgText(r.FailureDetail),
		pgNullUUID(r.SigningSecretID), a.AttemptNumber, pgTime(r.NextAttemptAt), r.UpdatedAt, pgTime(r.CompletedAt),
		pgUUID(a.ID), attemptStatus(a), attemptBody(a), a.ResponseTimeMS, pgText(a.ErrorMessage), pgText(string(a.FailureReason)), a.CreatedAt,
	}
}

// Release gives a leased delivery back, due again at next, without an
// attempt (see Store.Release). Like Record it is fenced by the token alone.
// It returns a descriptive error, changing nothing, when next is zero.
// Release is safe for concurrent use.
func (s *Store) Release(ctx context.Context, id, leaseToken uuid.UUID, next time.Time) error {
	if err := s.made(); err != nil {
		return err
	}
	if err := store.CheckContext(ctx, "release"); err != nil {
		return err
	}
	if next.IsZero() {
		return fmt.Errorf("postgres: release delivery %s: next is zero; pass when it is due again: %w", id, store.ErrInvalidArgument)
	}
	if err := store.CheckTimes("release delivery "+id.String(), next, 0); err != nil {
		return err
	}
	applied, err := s.writeOne(ctx, s.sql.release, []any{pgUUID(id), pgUUID(leaseToken), next})
	if err != nil {
		return execError("release delivery", id, err)
	}
	if applied {
		return nil
	}
	return s.fenceError(ctx, "release", id, leaseToken, 0)
}

// fenceError says why a fenced write of delivery id matched no row: the
// delivery does not exist (store.ErrNotFound), token is not its lease
// (store.ErrLeaseLost), or attempt (when not 0) is not its next attempt
// number.
func (s *Store) fenceError(ctx context.Context, verb string, id, token uuid.UUID, attempt int) error {
	var cur pgtype.UUID
	var count int
	err := s.pool.QueryRow(ctx, s.sql.leaseState, pgUUID(id)).Scan(&cur, &count)
	switch {
	case errNoRows(err):
		return fmt.Errorf("%s %s: %w", verb, id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: %s %s: it did not apply, and reading why failed: %w", verb, id, err)
	case token == uuid.Nil || !cur.Valid || cur.Bytes != token:
		return fmt.Errorf("%s %s: %w", verb, id, store.ErrLeaseLost)
	case attempt != 0 && attempt != count+1:
		return fmt.Errorf("postgres: %s %s: Attempt.AttemptNumber is %d, want %d (AttemptCount+1): %w", verb, id, attempt, count+1, store.ErrInvalidArgument)
	default:
		// The lease changed between the write and this read.
		return fmt.Errorf("%s %s: %w", verb, id, store.ErrLeaseLost)
	}
}

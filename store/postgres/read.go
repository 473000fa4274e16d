package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookline/hookline/store"
)

// deliveryScan receives the columns of deliveryColumns.
type deliveryScan struct {
	d          store.Delivery
	status     string
	reason     string
	secret     pgtype.UUID
	next       *time.Time
	completed  *time.Time
	leaseToken pgtype.UUID
	leaseUntil *time.Time
}

// dest returns the scan destinations in the order of deliveryColumns.
func (x *deliveryScan) dest() []any {
	d := &x.d
	// UUIDs are scanned as [16]byte: a *uuid.UUID would be scanned as text
	// through sql.Scanner.
	return []any{(*[16]byte)(&d.ID), (*[16]byte)(&d.BatchID), &d.CallbackURL, &d.Payload, &x.secret, &d.IsAutomatic,
		&x.status, &x.reason, &d.FailureDetail, &d.AttemptCount, &d.MaxAttempts,
		&x.next, &d.CreatedAt, &d.UpdatedAt, &x.completed, &x.leaseToken, &x.leaseUntil}
}

// delivery returns the scanned delivery, times in UTC.
func (x *deliveryScan) delivery() *store.Delivery {
	d := x.d
	d.Status = store.Status(x.status)
	d.FailureReason = store.FailureReason(x.reason)
	d.NextAttemptAt = utc(x.next)
	d.CreatedAt = d.CreatedAt.UTC()
	d.UpdatedAt = d.UpdatedAt.UTC()
	d.CompletedAt = utc(x.completed)
	d.SigningSecretID = uuid.NullUUID{UUID: x.secret.Bytes, Valid: x.secret.Valid}
	if x.leaseToken.Valid {
		d.LeaseToken = x.leaseToken.Bytes
	}
	d.LeaseExpiresAt = utc(x.leaseUntil)
	if d.Payload == nil {
		d.Payload = []byte{}
	}
	return &d
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// scanAttempts reads rows of attemptColumns.
func scanAttempts(rows pgx.Rows) ([]store.Attempt, error) {
	defer rows.Close()
	var out []store.Attempt
	for rows.Next() {
		var a store.Attempt
		var reason string
		if err := rows.Scan((*[16]byte)(&a.ID), (*[16]byte)(&a.DeliveryID), &a.AttemptNumber, &a.StatusCode, &a.ResponseBody,
			&a.ResponseTimeMS, &a.ErrorMessage, &reason, &a.CreatedAt); err != nil {
			return nil, err
		}
		a.FailureReason = store.FailureReason(reason)
		a.CreatedAt = a.CreatedAt.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// readSnapshot runs the two queries of a read (deliveries, then their
// attempts) in one round trip and one REPEATABLE READ snapshot, so a
// delivery's AttemptCount always matches its attempts.
func (s *Store) readSnapshot(ctx context.Context, deliveries, attempts string, arg any) ([]*store.Delivery, []store.Attempt, error) {
	if err := store.CheckContext(ctx, "read"); err != nil {
		return nil, nil, err
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	b.Queue(deliveries, arg)
	b.Queue(attempts, arg)
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, err
	}
	var ds []*store.Delivery
	for rows.Next() {
		var x deliveryScan
		if err := rows.Scan(x.dest()...); err != nil {
			rows.Close()
			return nil, nil, err
		}
		ds = append(ds, x.delivery())
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows, err = br.Query()
	if err != nil {
		return nil, nil, err
	}
	as, err := scanAttempts(rows)
	if err != nil {
		return nil, nil, err
	}
	if _, err := br.Exec(); err != nil {
		return nil, nil, err
	}
	return ds, as, br.Close()
}

// attach hands the attempts (ordered by delivery, then number) to their
// deliveries.
func attach(ds []*store.Delivery, as []store.Attempt) {
	byID := make(map[uuid.UUID]*store.Delivery, len(ds))
	for _, d := range ds {
		byID[d.ID] = d
	}
	for _, a := range as {
		if d := byID[a.DeliveryID]; d != nil {
			d.Attempts = append(d.Attempts, a)
		}
	}
}

// Get returns one delivery with its attempts, oldest first, or
// store.ErrNotFound. Times are in UTC, to the microsecond. It is safe for
// concurrent use.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*store.Delivery, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	ds, as, err := s.readSnapshot(ctx, s.sql.getDelivery, s.sql.getAttempts, pgUUID(id))
	if err != nil {
		return nil, fmt.Errorf("postgres: get delivery %s: %w", id, err)
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("get delivery %s: %w", id, store.ErrNotFound)
	}
	attach(ds, as)
	return ds[0], nil
}

// Latest returns the batch's newest delivery (latest CreatedAt, then
// greatest id) with its attempts, or store.ErrNotFound. It is safe for
// concurrent use.
func (s *Store) Latest(ctx context.Context, batchID uuid.UUID) (*store.Delivery, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	ds, as, err := s.readSnapshot(ctx, s.sql.latestDelivery, s.sql.latestAttempts, pgUUID(batchID))
	if err != nil {
		return nil, fmt.Errorf("postgres: latest delivery of batch %s: %w", batchID, err)
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("latest delivery of batch %s: %w", batchID, store.ErrNotFound)
	}
	attach(ds, as)
	return ds[0], nil
}

// History returns every delivery of the batch, newest first (CreatedAt
// descending, then id descending), each with its attempts oldest first; an
// empty slice when the batch has none. It reads the deliveries and all their
// attempts with two queries in one round trip, whatever their number. It is
// safe for concurrent use.
func (s *Store) History(ctx context.Context, batchID uuid.UUID) ([]*store.Delivery, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	ds, as, err := s.readSnapshot(ctx, s.sql.historyDeliv, s.sql.historyAttempt, pgUUID(batchID))
	if err != nil {
		return nil, fmt.Errorf("postgres: history of batch %s: %w", batchID, err)
	}
	if ds == nil {
		ds = []*store.Delivery{}
	}
	attach(ds, as)
	return ds, nil
}

// errNoRows reports whether err is pgx's "no rows".
func errNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

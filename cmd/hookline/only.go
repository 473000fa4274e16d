package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/store"
)

// onlyStore is a Store through which a Deliverer sends one delivery and no
// other: the one inserted through it. Without it, send --dsn and redeliver
// --wait would be one more worker of a shared queue, sending other
// customers' callbacks with the secret and destination guard setting given
// on the command line.
//
// Started before its one Deliver or Redeliver, the Deliverer hands that
// delivery straight to its own worker through InsertLeased (see
// newOnlyStore), so the first attempt is this process's: a running host
// neither hears of it (no notification) nor can claim it before the lease
// expires. Claim asks the Store only once that delivery is due (a retry)
// and still due in the Store, and then claims that one delivery
// (store.OneClaimer; with a Store without it, it claims as usual and
// releases, due at once, the deliveries of other batches it gets besides);
// a retry is sent by whichever Deliverer claims it first.
type onlyStore struct {
	store.Store
	mu  sync.Mutex
	id  uuid.UUID // the delivery inserted through it; nil until then
	due time.Time // when that delivery is next due here; zero when it is not
}

// newOnlyStore wraps st, keeping its optional LeasedInserter: the Store to
// give the Deliverer, and the onlyStore to follow the delivery.
func newOnlyStore(st store.Store) (store.Store, *onlyStore) {
	s := &onlyStore{Store: st}
	if li, ok := st.(store.LeasedInserter); ok {
		return onlyLeased{s, li}, s
	}
	return s, s
}

// adopt makes id, just inserted and due at due, the delivery this store
// sends, unless another already is.
func (s *onlyStore) adopt(id uuid.UUID, due time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == uuid.Nil {
		s.id, s.due = id, due
	}
}

// follow makes rec, which Deliver or Redeliver returned, the delivery this
// store sends. It is the one inserted, or, when Deliver found the batch's
// delivery of the same bytes still pending (an earlier send interrupted
// between attempts, say), that one, which nothing inserted here.
func (s *onlyStore) follow(rec *store.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.ID != s.id {
		s.id, s.due = rec.ID, rec.NextAttemptAt
	}
}

// dueAt notes when delivery id, if it is this store's, is next due (zero:
// never again).
func (s *onlyStore) dueAt(id uuid.UUID, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == s.id {
		s.due = t
	}
}

func (s *onlyStore) Insert(ctx context.Context, d *store.Delivery) error {
	err := s.Store.Insert(ctx, d)
	if err == nil {
		s.adopt(d.ID, d.NextAttemptAt)
	}
	return err
}

func (s *onlyStore) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	s.mu.Lock()
	id, due := s.id, s.due
	s.mu.Unlock()
	if due.IsZero() || due.After(now) {
		return nil, ctx.Err() // nothing of its own is due: leave the queue alone
	}
	// Due here; still due in the store? Another Deliverer may have claimed
	// it (then it is due at that lease's end) or ended it.
	cur, err := s.Store.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.dueAt(id, time.Time{})
		return nil, nil
	case err != nil:
		return nil, err
	case cur.Status.Terminal():
		s.dueAt(id, time.Time{})
		return nil, nil
	case cur.NextAttemptAt.After(now):
		s.dueAt(id, cur.NextAttemptAt)
		return nil, nil
	}
	if oc, ok := s.Store.(store.OneClaimer); ok {
		d, err := oc.ClaimOne(ctx, id, now, lease)
		if d == nil {
			return nil, err
		}
		s.dueAt(id, d.NextAttemptAt) // the lease's end
		return []*store.Delivery{d}, nil
	}
	// A Store without ClaimOne: claim, and give back what is not ours.
	got, err := s.Store.Claim(ctx, now, limit, lease)
	var mine []*store.Delivery
	for _, d := range got {
		if d.ID == id {
			s.dueAt(id, d.NextAttemptAt) // the lease's end
			mine = append(mine, d)
			continue
		}
		// Due again at once (Claim moved its due time to the lease's
		// end); a failed release only means the lease expires first, as
		// when a worker dies.
		s.Store.Release(context.WithoutCancel(ctx), d.ID, d.LeaseToken, now)
	}
	return mine, err
}

func (s *onlyStore) Record(ctx context.Context, leaseToken uuid.UUID, r store.Result) error {
	err := s.Store.Record(ctx, leaseToken, r)
	switch {
	case err == nil:
		s.dueAt(r.DeliveryID, r.NextAttemptAt) // zero once terminal
	case !r.NextAttemptAt.IsZero():
		// It may have applied all the same (an answer lost): look by the
		// retry's time at the latest. Claim checks with Get first.
		s.mu.Lock()
		if r.DeliveryID == s.id && (s.due.IsZero() || r.NextAttemptAt.Before(s.due)) {
			s.due = r.NextAttemptAt
		}
		s.mu.Unlock()
	}
	return err
}

func (s *onlyStore) Release(ctx context.Context, id, leaseToken uuid.UUID, next time.Time) error {
	err := s.Store.Release(ctx, id, leaseToken, next)
	if err == nil {
		s.dueAt(id, next)
	}
	return err
}

// Notify passes the Store's notifications on, when it has any.
func (s *onlyStore) Notify(ctx context.Context) <-chan struct{} {
	if n, ok := s.Store.(store.Notifier); ok {
		return n.Notify(ctx)
	}
	return nil
}

// onlyLeased is an onlyStore over a store.LeasedInserter.
type onlyLeased struct {
	*onlyStore
	li store.LeasedInserter
}

func (s onlyLeased) InsertLeased(ctx context.Context, d *store.Delivery) error {
	// Adopted once inserted, before the Deliverer hands it to a worker.
	err := s.li.InsertLeased(ctx, d)
	if err == nil {
		s.adopt(d.ID, d.LeaseExpiresAt)
	}
	return err
}

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
// expires. Claim then claims that one delivery when it is due in the Store
// (store.OneClaimer), and nothing else; a retry is sent by whichever
// Deliverer claims it first. With a Store without ClaimOne, Claim looks the
// delivery up, claims as usual only when it is due, and releases, due at
// once, the deliveries of other batches it gets besides.
type onlyStore struct {
	store.Store
	mu sync.Mutex
	id uuid.UUID // the delivery this store sends; nil until one is inserted
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

// adopt makes id, just inserted, the delivery this store sends, unless
// another already is.
func (s *onlyStore) adopt(id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == uuid.Nil {
		s.id = id
	}
}

// follow makes rec, which Deliver or Redeliver returned, the delivery this
// store sends. It is the one inserted, or, when Deliver found the batch's
// delivery of the same bytes still pending (an earlier send interrupted
// between attempts, say), that one, which nothing inserted here.
func (s *onlyStore) follow(rec *store.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id = rec.ID
}

func (s *onlyStore) Insert(ctx context.Context, d *store.Delivery) error {
	err := s.Store.Insert(ctx, d)
	if err == nil {
		s.adopt(d.ID)
	}
	return err
}

func (s *onlyStore) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	if id == uuid.Nil {
		return nil, ctx.Err()
	}
	if oc, ok := s.Store.(store.OneClaimer); ok {
		d, err := oc.ClaimOne(ctx, id, now, lease)
		if d == nil {
			return nil, err
		}
		return []*store.Delivery{d}, nil
	}
	// A Store without ClaimOne: claim only when the delivery is due (not
	// leased, by this process or another, nor ended), and give back what
	// is not ours.
	cur, err := s.Store.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case cur.Status.Terminal() || cur.NextAttemptAt.After(now):
		return nil, nil
	}
	got, err := s.Store.Claim(ctx, now, limit, lease)
	var mine []*store.Delivery
	for _, d := range got {
		if d.ID == id {
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
		s.adopt(d.ID)
	}
	return err
}

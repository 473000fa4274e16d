package main

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/store"
)

// onlyStore is a Store through which a Deliverer sends one delivery and no
// other: deliveries of a shared queue that Claim hands it besides that one
// are released at once, due again for the host's own workers. Without it,
// send --dsn and redeliver --wait would be one more worker of the whole
// queue, sending other customers' callbacks with the secret and destination
// guard setting given on the command line.
type onlyStore struct {
	store.Store
	id uuid.UUID
}

func (s *onlyStore) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*store.Delivery, error) {
	got, err := s.Store.Claim(ctx, now, limit, lease)
	var mine []*store.Delivery
	for _, d := range got {
		if d.ID == s.id {
			mine = append(mine, d)
			continue
		}
		// Due again at once; a failed release only means the lease
		// expires first, as when a worker dies.
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

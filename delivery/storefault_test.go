package delivery_test

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/hookline/hookline/store"
)

// failingStore fails the first failRecord calls of Record with an injected
// error (before touching the store).
type failingStore struct {
	store.Store
	failRecord int32
	records    atomic.Int32
}

func (s *failingStore) Record(ctx context.Context, token uuid.UUID, r store.Result) error {
	if s.records.Add(1) <= s.failRecord {
		return errors.New("injected store failure")
	}
	return s.Store.Record(ctx, token, r)
}

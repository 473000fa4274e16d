package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/hookline/hookline/store"
)

// RecordGroup writes rs, recorded with tokens, as one group, as concurrent
// Record calls that queued behind a group in flight would be, and returns
// each call's error.
func (s *Store) RecordGroup(ctx context.Context, tokens []uuid.UUID, rs []store.Result) []error {
	calls := make([]*groupCall[recordCall], len(rs))
	for i, r := range rs {
		calls[i] = &groupCall[recordCall]{v: recordCall{token: tokens[i], r: r}, key: r.DeliveryID, done: make(chan struct{})}
	}
	s.writeRecords(ctx, calls)
	errs := make([]error, len(calls))
	for i, c := range calls {
		errs[i] = c.err
	}
	return errs
}

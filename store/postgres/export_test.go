package postgres

import (
	"context"
	"time"

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

// SetListenTimes shortens how long a Notify listener waits before it pings
// its connection, and how long it waits for the answer, until the test ends.
func SetListenTimes(t interface{ Cleanup(func()) }, idle, ping time.Duration) {
	oldIdle, oldPing := listenIdle.get(), listenPingTimeout.get()
	listenIdle.set(idle)
	listenPingTimeout.set(ping)
	t.Cleanup(func() { listenIdle.set(oldIdle); listenPingTimeout.set(oldPing) })
}

package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotFound is returned when no delivery matches the id or batch asked for.
var ErrNotFound = errors.New("store: delivery not found")

// ErrConflict is returned by Store.Insert when the batch already has a
// delivery in flight (pending), or when an automatic delivery is inserted for
// a batch that already has one. The existing delivery is left untouched.
var ErrConflict = errors.New("store: conflicting delivery for the batch")

// ErrLeaseLost is returned by Store.Record and Store.Release when the caller's
// lease token is no longer the delivery's current one: another worker claimed
// it after the lease expired, or the outcome was already recorded. Nothing is
// changed.
var ErrLeaseLost = errors.New("store: lease lost")

// ErrInvalidArgument is matched by the error of a call refused for its
// arguments, which no retry mends: a nil context, a delivery that CheckNew
// or CheckLeased refuses, a Result that CheckResult refuses or whose
// AttemptNumber is not the delivery's AttemptCount+1, a time outside what
// CheckTimes accepts, a limit below 1, a lease that is not positive, or a
// zero next time for Release. Nothing is changed.
var ErrInvalidArgument = errors.New("store: invalid argument")

// CheckContext returns an error naming op and matching ErrInvalidArgument
// when ctx is nil, else ctx's error if it has ended. hookline's stores call
// it first; a custom Store may too.
func CheckContext(ctx context.Context, op string) error {
	if ctx == nil {
		return fmt.Errorf("store: %s: nil Context: %w", op, ErrInvalidArgument)
	}
	return ctx.Err()
}

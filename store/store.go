package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store keeps deliveries and their attempts. hookline ships two: NewMemory,
// the embedded default, and the PostgreSQL store in store/postgres, which lets
// many processes share one queue. A custom Store proves itself by passing
// storetest.Run.
//
// Every method is atomic and safe for concurrent use. A Store never reads a
// clock: "now" is always a parameter, so tests drive time. Times are kept to
// the microsecond at least. Deliveries passed in and returned are copies; a
// Store keeps no reference to the caller's values. A method called with a
// context that has already ended returns the context's error and changes
// nothing. A call refused for its arguments (a nil context, what the Check
// functions refuse, a limit below 1, a lease that is not positive, a Result
// whose AttemptNumber is not the delivery's AttemptCount+1, a zero next for
// Release) returns an error matching ErrInvalidArgument and changes nothing;
// what can be checked without the stored delivery (all but the AttemptNumber)
// is checked first, so such a call fails so whatever its token or id is.
type Store interface {
	// Insert adds a new pending delivery (its ID, BatchID, CallbackURL,
	// Payload, IsAutomatic, MaxAttempts, NextAttemptAt, CreatedAt and
	// UpdatedAt are set by the caller; Status must be StatusPending and
	// AttemptCount zero). It stores no lease, whatever d's lease fields say
	// (LeasedInserter is the leased insert), and refuses, inserting nothing,
	// what CheckNew refuses (a CallbackURL that is not UTF-8, times outside
	// years MinYear to MaxYear, ...), and a delivery whose ID is already
	// stored (an error that is not ErrConflict). It returns ErrConflict, inserting
	// nothing, when the batch already has a pending delivery, or when
	// d.IsAutomatic and the batch already has an automatic delivery in any
	// state.
	Insert(ctx context.Context, d *Delivery) error

	// Claim leases up to limit pending deliveries whose NextAttemptAt is at
	// or before now, earliest NextAttemptAt first. Each claimed delivery gets
	// a fresh LeaseToken, LeaseExpiresAt = now + lease, and NextAttemptAt
	// moved to LeaseExpiresAt, so it is not due again until the lease expires;
	// a worker that dies holding it therefore loses it at that time. The
	// returned deliveries carry no Attempts; Get shows the current lease.
	// Claim returns an empty slice, not an error, when nothing is due; limit
	// must be at least 1, lease positive, and now and now+lease within what
	// CheckTimes accepts.
	Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*Delivery, error)

	// Record stores one attempt and the delivery's new state in one step,
	// only while leaseToken is still the delivery's current lease; otherwise
	// it returns ErrLeaseLost and changes nothing. On success the lease is
	// ended. ErrNotFound when the delivery does not exist. It refuses,
	// changing nothing, a Result that CheckResult refuses, and an attempt
	// whose AttemptNumber is not the delivery's AttemptCount+1.
	Record(ctx context.Context, leaseToken uuid.UUID, r Result) error

	// Release gives a leased delivery back without recording an attempt, due
	// again at next (a worker stopping before it sent anything). ErrLeaseLost
	// when leaseToken is no longer current, ErrNotFound when the delivery
	// does not exist; a next that CheckTimes refuses is refused.
	Release(ctx context.Context, id, leaseToken uuid.UUID, next time.Time) error

	// Get returns one delivery with its attempts (oldest first, in the
	// order recorded) and its current lease, or ErrNotFound.
	Get(ctx context.Context, id uuid.UUID) (*Delivery, error)

	// Latest returns the batch's newest delivery (by CreatedAt: History's
	// first) as Get does, or ErrNotFound when the batch has none.
	Latest(ctx context.Context, batchID uuid.UUID) (*Delivery, error)

	// History returns every delivery of the batch, newest first (by
	// CreatedAt), each as Get does. A batch without deliveries gives an
	// empty slice and no error.
	History(ctx context.Context, batchID uuid.UUID) ([]*Delivery, error)
}

// Result is what Store.Record writes: the attempt just made and the state the
// delivery moves to.
type Result struct {
	// DeliveryID names the delivery; Attempt.DeliveryID must equal it.
	DeliveryID uuid.UUID
	// Attempt is appended to the delivery's attempts; its AttemptNumber
	// becomes the delivery's AttemptCount.
	Attempt Attempt
	// Status is the delivery's new status.
	Status Status
	// FailureReason and FailureDetail describe the last failure; empty on
	// success.
	FailureReason FailureReason
	FailureDetail string
	// SigningSecretID is the primary secret that signed this attempt.
	SigningSecretID uuid.NullUUID
	// NextAttemptAt is when a pending delivery is due again; zero when the
	// new status is terminal.
	NextAttemptAt time.Time
	// UpdatedAt is the time of the change; CompletedAt is set (equal to it)
	// when the new status is terminal, else zero. A pending Result needs a
	// NextAttemptAt and no CompletedAt; a terminal one the reverse. A Store
	// may refuse a Result that breaks these rules.
	UpdatedAt   time.Time
	CompletedAt time.Time
}

// Inserter is the part of a Store that adds deliveries. A Store may offer
// Inserters bound to a caller's transaction (the Postgres store's Tx), so a
// delivery commits or rolls back with the host's own writes; see
// delivery.Deliverer.DeliverTx.
type Inserter interface {
	// Insert adds a new pending delivery, as Store.Insert does.
	Insert(ctx context.Context, d *Delivery) error
}

// LeasedInserter is implemented by Stores that can insert a delivery already
// leased to the caller, as Insert followed by a Claim of just that delivery
// would leave it, in one step. A Deliverer that has a free worker uses it to
// hand a new delivery straight to that worker: the Store is written once
// instead of twice, and no other process is told of work it could not
// claim. Both stores of hookline implement it; a Store that does not is used
// through Insert and Claim alone.
type LeasedInserter interface {
	// InsertLeased adds d as Insert does, but leased: d.LeaseToken (not the
	// nil UUID) and d.LeaseExpiresAt (after d.NextAttemptAt) are stored,
	// and the stored NextAttemptAt is d.LeaseExpiresAt, as after a Claim.
	// The caller records or releases with d.LeaseToken; if it does
	// neither, the delivery is due again when the lease expires.
	// Conflicts and invalid deliveries are refused as by Insert, and a
	// missing or inconsistent lease with a descriptive error; either way
	// nothing is inserted.
	InsertLeased(ctx context.Context, d *Delivery) error
}

// OneClaimer is implemented by Stores that can claim one delivery by its id.
// A Deliverer that is to send one delivery only (hookline send, or
// redeliver --wait, beside the host's own Deliverers) claims it with
// ClaimOne, without taking, and handing back, the deliveries of other
// batches due before it. Both stores of hookline implement it.
type OneClaimer interface {
	// ClaimOne leases delivery id as Claim would (a fresh LeaseToken,
	// LeaseExpiresAt = now + lease, NextAttemptAt moved to it) when it is
	// pending and due at now, and returns it. It returns nil and no error,
	// changing nothing, when the delivery is not pending, not yet due
	// (leased until after now included), or unknown.
	// lease must be positive.
	ClaimOne(ctx context.Context, id uuid.UUID, now time.Time, lease time.Duration) (*Delivery, error)
}

// Notifier is implemented by Stores that can tell a Deliverer that
// deliveries may have become due because of another process (the Postgres
// store uses LISTEN/NOTIFY). A Deliverer still polls; notifications only make
// it react sooner.
type Notifier interface {
	// Notify returns a channel that receives a value whenever new work may
	// be due, until ctx ends. Values may be coalesced or spurious.
	Notify(ctx context.Context) <-chan struct{}
}

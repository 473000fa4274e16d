package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
)

// base is the suite's "now": every time it uses is base plus whole
// microseconds.
var base = time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)

// at returns base+d truncated to microseconds.
func at(d time.Duration) time.Time { return base.Add(d).Truncate(time.Microsecond) }

const lease = 30 * time.Second

// NewDelivery returns a valid new delivery of batchID, ready for
// Store.Insert: a fresh UUIDv7 id, status pending, automatic, five attempts
// allowed, a small JSON payload, an https callback URL, and CreatedAt,
// UpdatedAt and NextAttemptAt all equal to at truncated to microseconds.
// Change what a test needs before inserting it.
func NewDelivery(batchID uuid.UUID, at time.Time) *store.Delivery {
	at = at.Truncate(time.Microsecond)
	id := uuid.Must(uuid.NewV7())
	return &store.Delivery{
		ID:            id,
		BatchID:       batchID,
		CallbackURL:   "https://hooks.example.com/callbacks/" + batchID.String(),
		Payload:       fmt.Appendf(nil, `{"event":"batch.succeeded","batch_id":"%s","status":"succeeded","output":null,"duration_ms":1,"created_at":null,"completed_at":null,"metadata":null}`, batchID),
		IsAutomatic:   true,
		Status:        store.StatusPending,
		MaxAttempts:   5,
		NextAttemptAt: at,
		CreatedAt:     at,
		UpdatedAt:     at,
	}
}

// Run runs the conformance suite against the Store that newStore returns.
// newStore is called once inside each subtest and must return an empty store
// that no other subtest uses. Subtests do not run in parallel with each
// other.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	require.NotNil(t, newStore, "storetest.Run needs a function that makes a fresh Store")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("rule: %s", c.rule)
			s := newStore(t)
			require.NotNil(t, s, "newStore must return a Store")
			c.run(&harness{t: t, s: s, ctx: t.Context()})
		})
	}
}

type testCase struct {
	name string
	rule string // what the Store must do; logged, so a failure states it
	run  func(h *harness)
}

var cases = []testCase{
	{
		name: "InsertedDeliveryReadsBack",
		rule: "Get, Latest and History return every field Insert was given, with status pending, no attempts and no lease",
		run:  testInsertedDeliveryReadsBack,
	},
	{
		name: "PayloadBytesRoundTripByteForByte",
		rule: "the frozen payload is the body of every attempt: Insert, Get, Latest, History and Claim keep it byte for byte (non-ASCII text, escapes, whitespace, key order, 1 MiB)",
		run:  testPayloadBytesRoundTrip,
	},
	{
		name: "InsertCopiesTheCallersDelivery",
		rule: "a Store keeps no reference to the caller's values: changing a Delivery or its Payload after Insert does not change what is stored",
		run:  testInsertCopies,
	},
	{
		name: "ReturnedDeliveriesAreCopies",
		rule: "Get, Latest, History and Claim return the caller's own copies: changing them does not change the store",
		run:  testReturnedCopies,
	},
	{
		name: "InsertRejectsDuplicateID",
		rule: "Insert of a delivery whose ID is already stored fails, with an error that is not ErrConflict, and leaves the stored delivery unchanged",
		run:  testInsertDuplicateID,
	},
	{
		name: "ConcurrentInsertsAdmitOnePendingDeliveryPerBatch",
		rule: "a batch has at most one pending delivery, atomically: of 50 concurrent Inserts of pending manual deliveries for one batch exactly one succeeds and the others return ErrConflict",
		run:  testConcurrentInserts,
	},
	{
		name: "InsertConflictsWhileBatchHasPendingDelivery",
		rule: "while a batch has a pending delivery (leased or not), Insert of another one, automatic or manual, returns ErrConflict and inserts nothing; other batches are unaffected",
		run:  testInsertConflictsWhilePending,
	},
	{
		name: "SecondAutomaticDeliveryConflictsEvenAfterFirstEnds",
		rule: "a batch has at most one automatic delivery in any state: a second automatic Insert returns ErrConflict even after the first is terminal, while a manual (IsAutomatic=false) delivery is accepted once none is pending",
		run:  testSecondAutomaticConflicts,
	},
	{
		name: "ClaimReturnsOnlyDueDeliveriesEarliestFirst",
		rule: "Claim returns only pending deliveries whose NextAttemptAt is at or before now (one due exactly at now included), earliest NextAttemptAt first, and leaves the others untouched",
		run:  testClaimDueOrder,
	},
	{
		name: "ClaimRespectsLimit",
		rule: "Claim returns at most limit deliveries, the earliest due ones; the rest stay due for the next Claim",
		run:  testClaimLimit,
	},
	{
		name: "ClaimLeasesEachDelivery",
		rule: "each claimed delivery gets a fresh non-nil LeaseToken (distinct per delivery), LeaseExpiresAt = now+lease and NextAttemptAt = LeaseExpiresAt, carries its fields but no Attempts, and Get shows the same lease",
		run:  testClaimLeases,
	},
	{
		name: "ClaimWithNothingDueReturnsEmpty",
		rule: "Claim returns no deliveries and no error when nothing is due, on an empty store too",
		run:  testClaimNothingDue,
	},
	{
		name: "LeasedDeliveryIsNotClaimableUntilLeaseExpires",
		rule: "a claimed delivery is not due again until its lease expires; from the expiry on, Claim hands it out again with a different token",
		run:  testLeaseExpiry,
	},
	{
		name: "ConcurrentClaimersNeverShareADelivery",
		rule: "Claim is atomic: 8 concurrent claimers looping over 200 due deliveries receive each delivery exactly once while the leases are valid",
		run:  testConcurrentClaimers,
	},
	{
		name: "RecordRetryKeepsDeliveryPendingUntilNextAttempt",
		rule: "Record with a pending result stores the attempt, AttemptCount, failure, secret id, UpdatedAt and the new NextAttemptAt, ends the lease, and the delivery is claimable from NextAttemptAt on and not before, whether that is before or after the old lease expiry",
		run:  testRecordRetry,
	},
	{
		name: "RecordSucceededEndsDelivery",
		rule: "Record with a succeeded result makes the delivery terminal: status succeeded, CompletedAt set, NextAttemptAt zero, lease ended, never claimed again",
		run:  func(h *harness) { testRecordTerminal(h, store.StatusSucceeded) },
	},
	{
		name: "RecordFailedEndsDelivery",
		rule: "Record with a failed result makes the delivery terminal: status failed with its reason and detail, CompletedAt set, NextAttemptAt zero, lease ended, never claimed again",
		run:  func(h *harness) { testRecordTerminal(h, store.StatusFailed) },
	},
	{
		name: "AttemptsAccumulateOldestFirstWithEveryField",
		rule: "each Record appends its attempt: Get returns them oldest first with every field as recorded (id, delivery id, number, HTTP status or 0, response body with non-ASCII text, response time, error message, failure reason, CreatedAt to the microsecond), and the delivery's SigningSecretID is the last Result's, null included",
		run:  testAttemptsAccumulate,
	},
	{
		name: "RecordWithStaleLeaseFailsAndChangesNothing",
		rule: "once another Claim has replaced an expired lease, Record with the old token returns ErrLeaseLost and changes nothing, as does Record with another delivery's token; an invalid Result (or a zero next for Release) is refused with ErrInvalidArgument whatever the token; the new holder can still record",
		run:  testRecordStaleLease,
	},
	{
		name: "RecordTwiceWithOneLeaseFails",
		rule: "Record ends the lease, so an attempt is recorded at most once: a second Record with the same token returns ErrLeaseLost and adds nothing",
		run:  testRecordTwice,
	},
	{
		name: "RecordWithNilTokenFails",
		rule: "uuid.Nil is never a lease: Record and Release with it return ErrLeaseLost, on a delivery never claimed and on one currently claimed",
		run:  testNilToken,
	},
	{
		name: "ExpiredLeaseRecordsUntilReclaimed",
		rule: "fencing is by token (a Store reads no clock): after the lease expires, Record with its token still succeeds as long as no other Claim replaced it",
		run:  testExpiredLeaseStillRecords,
	},
	{
		name: "RecordRejectsInconsistentResult",
		rule: "Record fails and changes nothing when Attempt.DeliveryID differs from DeliveryID, AttemptNumber is not AttemptCount+1 (also when it equals it in its low 32 bits), Status is not a delivery status, or the rest of what store.CheckResult refuses (a StatusCode that is not an HTTP status, times that do not fit the status); the lease stays usable",
		run:  testRecordRejectsInconsistent,
	},
	{
		name: "ReleaseMakesDeliveryDueAtNext",
		rule: "Release ends the lease without an attempt: the delivery stays pending with the same AttemptCount and no lease, NextAttemptAt = next, and it is claimable from next on and not before, whether next is before or after the old lease expiry",
		run:  testRelease,
	},
	{
		name: "ReleaseWithStaleTokenFails",
		rule: "Release with a token that is not the delivery's current lease (replaced by another Claim, already ended by Record or Release, or another delivery's) returns ErrLeaseLost and changes nothing",
		run:  testReleaseStale,
	},
	{
		name: "HistoryIsNewestFirstWithAttemptsOldestFirst",
		rule: "History returns every delivery of the batch and no other, newest CreatedAt first, each with its attempts oldest first; Latest returns the newest",
		run:  testHistoryOrder,
	},
	{
		name: "UnknownDeliveryIsNotFound",
		rule: "Get of an unknown id, Latest of a batch without deliveries, and Record or Release on an unknown delivery return ErrNotFound; History of a batch without deliveries is empty with no error",
		run:  testNotFound,
	},
	{
		name: "CanceledContextFailsAndChangesNothing",
		rule: "a method called with a canceled context returns an error and changes nothing",
		run:  testCanceledContext,
	},
	{
		name: "NilContextIsRefusedAndChangesNothing",
		rule: "every method that returns an error, those of store.LeasedInserter and store.OneClaimer included, called with a nil context returns an error matching store.ErrInvalidArgument (store.CheckContext gives one), without panicking, and changes nothing",
		run:  testNilContext,
	},
	{
		name: "InsertAndRecordRefuseWhatNoStoreKeeps",
		rule: "Insert refuses, inserting nothing, a CallbackURL that is empty, not UTF-8 or holds a NUL byte, and a time outside years store.MinYear to store.MaxYear; Record, Release and Claim refuse such a time (for Claim, a lease expiring past it) and change nothing",
		run:  testUnstorable,
	},
	{
		name: "LatestAndHistoryMatchGet",
		rule: "Latest and History return each delivery as Get does: with its attempts oldest first and, while it is claimed, its current lease",
		run:  testReadsAgree,
	},
	{
		name: "LatestIsNewestByCreatedAt",
		rule: "Latest returns the delivery with the newest CreatedAt, not the last inserted one, and is always History[0], also when CreatedAt ties",
		run:  testLatestByCreatedAt,
	},
	{
		name: "OlderPendingDeliveryStillConflicts",
		rule: "a pending delivery blocks Insert whatever its CreatedAt: one created before the batch's newest delivery still makes Insert return ErrConflict",
		run:  testOlderPendingConflicts,
	},
	{
		name: "ClaimComparesAndOrdersToTheMicrosecond",
		rule: "Claim compares NextAttemptAt with now to the microsecond, also for a now that is not a whole millisecond, and orders deliveries due microseconds apart earliest first whatever their ids",
		run:  testClaimMicroseconds,
	},
	{
		name: "FarTimesCompareCorrectly",
		rule: "times far from now, beyond what int64 nanoseconds hold (years 1678 to 2262), compare correctly: deliveries due in years 1000 and 1600 are due now (earliest first), ones due in 2300, 5000 or 9999 are not, and each is due from its own NextAttemptAt",
		run:  testFarTimes,
	},
	{
		name: "TimesAreInstantsInAnyLocation",
		rule: "times are instants: a delivery inserted, recorded and released with times in another location reads back as the same instants and is due at the same instant whatever location now is in",
		run:  testLocations,
	},
	{
		name: "EveryTimeKeepsItsMicroseconds",
		rule: "CreatedAt, the next of Release and the LeaseExpiresAt of InsertLeased keep their microseconds, and a delivery is due from exactly those times",
		run:  testTimesKeepMicroseconds,
	},
	{
		name: "InsertLeasedRefusesWhatInsertRefuses",
		rule: "InsertLeased refuses, inserting nothing, what Insert refuses: a canceled context, an invalid delivery, a duplicate ID, and a second automatic delivery after the first ended",
		run:  optional(testInsertLeasedRefusesAll),
	},
	{
		name: "InsertIgnoresLeaseFields",
		rule: "Insert stores no lease even when the Delivery carries one: it is due at NextAttemptAt and its LeaseToken records nothing (InsertLeased is the leased insert)",
		run:  testInsertIgnoresLease,
	},
	{
		name: "ClaimWithBadLimitOrLeaseLeasesNothing",
		rule: "limit must be at least 1 and lease positive: Claim with a limit or lease below that returns an error or nothing, and leases nothing",
		run:  testClaimBadArgs,
	},
	{
		name: "HistoryOfUnknownBatchIsAnEmptySlice",
		rule: "History of a batch without deliveries is an empty slice, not nil (hosts encode it as [] not null)",
		run:  testHistoryEmptyNotNil,
	},
	{
		name: "RecordIsFencedAgainstAConcurrentClaim",
		rule: "Record checks the token and writes in one atomic step: racing a Claim that replaces an expired lease, exactly one of the stale Record and the Claim wins for each delivery",
		run:  testRecordRacesClaim,
	},
	{
		name: "AttemptsKeepTheOrderTheyWereRecorded",
		rule: "attempts are oldest first in the order Record added them, not in the order of their ids",
		run:  testAttemptsRecordOrder,
	},
	{
		name: "InsertRefusesANonPendingDelivery",
		rule: "Insert refuses, inserting nothing, a delivery whose Status is not pending or whose AttemptCount is not zero, and the rest of what store.CheckNew refuses (nil ID or BatchID, attempts, MaxAttempts below 1, zero NextAttemptAt, CompletedAt set, nil Payload)",
		run:  testInsertRefusesNonPending,
	},
	{
		name: "ClaimOneLeasesOnlyThatDeliveryWhenDue",
		rule: "a store.OneClaimer's ClaimOne leases the delivery named, as Claim would (returned without Attempts), when it is pending and due, whatever else is due before it; it returns nil, leasing nothing, when that delivery is not yet due, leased, terminal or unknown",
		run:  optional(testClaimOne),
	},
	{
		name: "InsertLeasedIsLeasedToTheCaller",
		rule: "a store.LeasedInserter's InsertLeased stores the delivery as Insert and a Claim would leave it: pending, leased with the caller's token until LeaseExpiresAt, NextAttemptAt equal to LeaseExpiresAt, not due before then, and recordable with the caller's token",
		run:  optional(testInsertLeased),
	},
	{
		name: "InsertLeasedExpires",
		rule: "a delivery inserted leased becomes due when its lease expires; a Claim then gives it a new token and the inserted token can no longer record",
		run:  optional(testInsertLeasedExpires),
	},
	{
		name: "InsertLeasedConflictsAndValidates",
		rule: "InsertLeased refuses what Insert refuses (ErrConflict while the batch has a pending delivery) and a nil LeaseToken or a LeaseExpiresAt not after NextAttemptAt, inserting nothing",
		run:  optional(testInsertLeasedRefuses),
	},
}

// optional runs a test of the optional interface I (store.LeasedInserter,
// store.OneClaimer), or skips, saying so, when the Store does not implement
// it.
func optional[I any](test func(h *harness, x I)) func(h *harness) {
	return func(h *harness) {
		x, ok := h.s.(I)
		if !ok {
			h.t.Skipf("%T does not implement %v (optional)", h.s, reflect.TypeFor[I]())
		}
		test(h, x)
	}
}

// newLeased returns a new delivery of batchID due at now, leased until
// now+lease with a fresh token.
func newLeased(batchID uuid.UUID, now time.Time) *store.Delivery {
	d := NewDelivery(batchID, now)
	d.LeaseToken = uuid.New()
	d.LeaseExpiresAt = d.NextAttemptAt.Add(lease)
	return d
}

func testClaimOne(h *harness, oc store.OneClaimer) {
	earlier := NewDelivery(uuid.New(), at(0))
	h.insert(earlier)
	d := NewDelivery(uuid.New(), at(time.Second))
	h.insert(d)
	claimOne := func(id uuid.UUID, now time.Time) *store.Delivery {
		h.t.Helper()
		got, err := oc.ClaimOne(h.ctx, id, now, lease)
		require.NoError(h.t, err, "ClaimOne")
		return got
	}

	before := h.get(d.ID)
	assert.Nil(h.t, claimOne(d.ID, at(time.Second-time.Microsecond)), "not yet due")
	h.unchanged(before, "a ClaimOne of a delivery not yet due must change nothing")
	assert.Nil(h.t, claimOne(uuid.New(), at(time.Hour)), "an unknown delivery")
	c := claimOne(d.ID, at(2*time.Second))
	require.NotNil(h.t, c, "due: ClaimOne leases it, though another delivery was due before it")
	assert.Equal(h.t, d.ID, c.ID)
	assert.NotEqual(h.t, uuid.Nil, c.LeaseToken, "a fresh lease token")
	sameTime(h.t, at(2*time.Second+lease), c.LeaseExpiresAt, "LeaseExpiresAt", "now + lease")
	sameTime(h.t, c.LeaseExpiresAt, c.NextAttemptAt, "NextAttemptAt", "moved to the lease's end, as by Claim")
	got := h.get(d.ID)
	assert.Equal(h.t, c.LeaseToken, got.LeaseToken, "Get shows the lease")
	assert.Nil(h.t, claimOne(d.ID, at(3*time.Second)), "leased: not claimable again before the lease ends")
	h.unchanged(got, "a ClaimOne of a leased delivery must change nothing")
	ds := h.claim(at(3*time.Second), 10)
	assert.Equal(h.t, []uuid.UUID{earlier.ID}, ids(ds), "Claim takes the other due delivery only, and ClaimOne left it due")

	again := claimOne(d.ID, at(2*time.Second+lease))
	require.NotNil(h.t, again, "its lease expired: ClaimOne takes it again, as Claim would")
	assert.NotEqual(h.t, c.LeaseToken, again.LeaseToken, "with a new token")
	h.record(again.LeaseToken, retryResult(again, at(2*time.Second+lease), at(time.Minute)))
	retry := claimOne(d.ID, at(time.Minute))
	require.NotNil(h.t, retry, "a retry that is due: ClaimOne takes it")
	assert.Equal(h.t, 1, retry.AttemptCount, "it carries its fields")
	assert.Empty(h.t, retry.Attempts, "as by Claim, a delivery ClaimOne returns carries no Attempts")
	h.record(retry.LeaseToken, terminalResult(retry, store.StatusSucceeded, at(time.Minute)))
	done := h.get(d.ID)
	assert.Nil(h.t, claimOne(d.ID, at(time.Hour)), "terminal: never claimed")
	h.unchanged(done, "a ClaimOne of a terminal delivery must change nothing")
}

func testInsertLeased(h *harness, li store.LeasedInserter) {
	d := newLeased(uuid.New(), at(0))
	require.NoError(h.t, li.InsertLeased(h.ctx, d), "InsertLeased of a valid new leased delivery must succeed")
	want := d.Clone()
	want.NextAttemptAt = d.LeaseExpiresAt
	d.Payload[0] ^= 0xff // the store keeps its own copy
	got := h.get(d.ID)
	sameDelivery(h.t, want, got, "Get after InsertLeased")
	assert.Equal(h.t, d.LeaseToken, got.LeaseToken, "the stored lease token is the caller's")
	assert.True(h.t, d.LeaseExpiresAt.Equal(got.LeaseExpiresAt), "LeaseExpiresAt is the caller's: got %s, want %s", got.LeaseExpiresAt, d.LeaseExpiresAt)
	h.noneDue(at(lease-time.Microsecond), "a delivery inserted leased is not due before its lease expires")
	d.AttemptCount = 0
	h.record(d.LeaseToken, terminalResult(d, store.StatusSucceeded, at(time.Second)))
	got = h.get(d.ID)
	assert.Equal(h.t, store.StatusSucceeded, got.Status, "Record with the inserted lease token applies")
	assert.Equal(h.t, uuid.Nil, got.LeaseToken, "Record ends the lease")
}

func testInsertLeasedExpires(h *harness, li store.LeasedInserter) {
	d := newLeased(uuid.New(), at(0))
	require.NoError(h.t, li.InsertLeased(h.ctx, d), "InsertLeased of a valid new leased delivery must succeed")
	c := h.claimOne(d.ID, at(lease))
	assert.NotEqual(h.t, d.LeaseToken, c.LeaseToken, "a Claim after the lease expired gives a new token")
	err := h.s.Record(h.ctx, d.LeaseToken, retryResult(d, at(lease), at(time.Hour)))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "the inserted token is stale once the delivery was claimed again")
	h.record(c.LeaseToken, terminalResult(c, store.StatusSucceeded, at(lease+time.Second)))
}

func testInsertLeasedRefuses(h *harness, li store.LeasedInserter) {
	batch := uuid.New()
	first := NewDelivery(batch, at(0))
	h.insert(first)
	second := newLeased(batch, at(0))
	second.IsAutomatic = false
	err := li.InsertLeased(h.ctx, second)
	assert.ErrorIs(h.t, err, store.ErrConflict, "InsertLeased while the batch has a pending delivery")
	_, err = h.s.Get(h.ctx, second.ID)
	assert.ErrorIs(h.t, err, store.ErrNotFound, "a refused InsertLeased inserts nothing")

	noToken := newLeased(uuid.New(), at(0))
	noToken.LeaseToken = uuid.Nil
	early := newLeased(uuid.New(), at(0))
	early.LeaseExpiresAt = early.NextAttemptAt
	for name, d := range map[string]*store.Delivery{"a nil LeaseToken": noToken, "LeaseExpiresAt equal to NextAttemptAt": early} {
		err := li.InsertLeased(h.ctx, d)
		assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "InsertLeased with %s must fail: it is invalid, not a conflict", name)
		_, err = h.s.Get(h.ctx, d.ID)
		assert.ErrorIs(h.t, err, store.ErrNotFound, "InsertLeased with %s inserts nothing", name)
	}
	h.claimOne(first.ID, at(time.Hour)) // and nothing else was stored
}

// harness wraps the store under test with helpers that fail the test, naming
// the rule, when a call that must succeed does not.
type harness struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
}

func (h *harness) insert(d *store.Delivery) {
	h.t.Helper()
	require.NoError(h.t, h.s.Insert(h.ctx, d), "Insert of a valid new pending delivery must succeed")
}

func (h *harness) get(id uuid.UUID) *store.Delivery {
	h.t.Helper()
	d, err := h.s.Get(h.ctx, id)
	require.NoError(h.t, err, "Get of a stored delivery must succeed")
	require.NotNil(h.t, d, "Get must return the delivery when it returns no error")
	return d
}

func (h *harness) history(batchID uuid.UUID) []*store.Delivery {
	h.t.Helper()
	ds, err := h.s.History(h.ctx, batchID)
	require.NoError(h.t, err, "History must not fail")
	for i, d := range ds {
		require.NotNil(h.t, d, "History[%d] is nil", i)
	}
	return ds
}

func (h *harness) claim(now time.Time, limit int) []*store.Delivery {
	h.t.Helper()
	ds, err := h.s.Claim(h.ctx, now, limit, lease)
	require.NoError(h.t, err, "Claim must not fail")
	for i, d := range ds {
		require.NotNil(h.t, d, "Claim's delivery %d is nil", i)
	}
	return ds
}

// claimOne claims at now and requires exactly the delivery id.
func (h *harness) claimOne(id uuid.UUID, now time.Time) *store.Delivery {
	h.t.Helper()
	ds := h.claim(now, 10)
	require.Len(h.t, ds, 1, "Claim at %s must return exactly the one due delivery", now)
	require.Equal(h.t, id, ds[0].ID, "Claim must return the delivery that is due")
	return ds[0]
}

func (h *harness) noneDue(now time.Time, why string) {
	h.t.Helper()
	ds := h.claim(now, 10)
	assert.Empty(h.t, ids(ds), "Claim at %s must return nothing: %s", now, why)
}

func (h *harness) record(token uuid.UUID, r store.Result) {
	h.t.Helper()
	require.NoError(h.t, h.s.Record(h.ctx, token, r), "Record with the current lease token must succeed")
}

// finish claims the only due delivery id at now and records a terminal outcome.
func (h *harness) finish(id uuid.UUID, now time.Time, status store.Status) {
	h.t.Helper()
	c := h.claimOne(id, now)
	h.record(c.LeaseToken, terminalResult(c, status, now))
}

// unchanged requires that the stored delivery still equals before.
func (h *harness) unchanged(before *store.Delivery, why string) {
	h.t.Helper()
	sameDelivery(h.t, before, h.get(before.ID), why)
}

func newAttempt(d *store.Delivery, at time.Time) store.Attempt {
	return store.Attempt{
		ID:             uuid.Must(uuid.NewV7()),
		DeliveryID:     d.ID,
		AttemptNumber:  d.AttemptCount + 1,
		ResponseTimeMS: 42,
		CreatedAt:      at,
	}
}

// retryResult is a pending result for the claimed delivery d: an attempt at
// now answered 503, due again at next.
func retryResult(d *store.Delivery, now, next time.Time) store.Result {
	a := newAttempt(d, now)
	a.StatusCode = 503
	a.ResponseBody = "busy"
	a.ErrorMessage = "HTTP 503"
	a.FailureReason = store.ReasonHTTPError
	return store.Result{
		DeliveryID:      d.ID,
		Attempt:         a,
		Status:          store.StatusPending,
		FailureReason:   store.ReasonHTTPError,
		FailureDetail:   "HTTP 503 Service Unavailable",
		SigningSecretID: uuid.NullUUID{UUID: uuid.Must(uuid.NewV7()), Valid: true},
		NextAttemptAt:   next,
		UpdatedAt:       now,
	}
}

// terminalResult is a succeeded (200) or failed (410) result for the
// claimed delivery d at now.
func terminalResult(d *store.Delivery, status store.Status, now time.Time) store.Result {
	a := newAttempt(d, now)
	r := store.Result{
		DeliveryID:      d.ID,
		Status:          status,
		SigningSecretID: uuid.NullUUID{UUID: uuid.Must(uuid.NewV7()), Valid: true},
		UpdatedAt:       now,
		CompletedAt:     now,
	}
	if status == store.StatusSucceeded {
		a.StatusCode = 200
		a.ResponseBody = "ok"
	} else {
		a.StatusCode = 410
		a.ResponseBody = "gone"
		a.ErrorMessage = "HTTP 410"
		a.FailureReason = store.ReasonHTTPError
		r.FailureReason = store.ReasonHTTPError
		r.FailureDetail = "HTTP 410 Gone"
	}
	r.Attempt = a
	return r
}

func ids(ds []*store.Delivery) []uuid.UUID {
	out := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// sameTime reports an error unless want and got are the same instant (both
// zero, or Equal).
func sameTime(t *testing.T, want, got time.Time, field, why string) {
	t.Helper()
	if !want.Equal(got) || want.IsZero() != got.IsZero() {
		t.Errorf("%s: %s is %s, want %s", why, field, fmtTime(got), fmtTime(want))
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.Format(time.RFC3339Nano)
}

// samePayload reports an error unless got is want byte for byte, without
// printing a megabyte.
func samePayload(t *testing.T, want, got []byte, why string) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	excerpt := func(b []byte) string {
		lo, hi := max(0, i-16), min(len(b), i+32)
		return fmt.Sprintf("%q", b[lo:hi])
	}
	t.Errorf("%s: payload differs from the inserted bytes at byte %d (len %d, want %d): got …%s…, want …%s…",
		why, i, len(got), len(want), excerpt(got), excerpt(want))
}

// sameDelivery reports every field of got that differs from want.
func sameDelivery(t *testing.T, want, got *store.Delivery, why string) {
	t.Helper()
	require.NotNil(t, got, why)
	assert.Equal(t, want.ID, got.ID, "%s: ID", why)
	assert.Equal(t, want.BatchID, got.BatchID, "%s: BatchID", why)
	assert.Equal(t, want.CallbackURL, got.CallbackURL, "%s: CallbackURL", why)
	samePayload(t, want.Payload, got.Payload, why)
	assert.Equal(t, want.SigningSecretID, got.SigningSecretID, "%s: SigningSecretID", why)
	assert.Equal(t, want.IsAutomatic, got.IsAutomatic, "%s: IsAutomatic", why)
	assert.Equal(t, want.Status, got.Status, "%s: Status", why)
	assert.Equal(t, want.FailureReason, got.FailureReason, "%s: FailureReason", why)
	assert.Equal(t, want.FailureDetail, got.FailureDetail, "%s: FailureDetail", why)
	assert.Equal(t, want.AttemptCount, got.AttemptCount, "%s: AttemptCount", why)
	assert.Equal(t, want.MaxAttempts, got.MaxAttempts, "%s: MaxAttempts", why)
	sameTime(t, want.NextAttemptAt, got.NextAttemptAt, "NextAttemptAt", why)
	sameTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt", why)
	sameTime(t, want.UpdatedAt, got.UpdatedAt, "UpdatedAt", why)
	sameTime(t, want.CompletedAt, got.CompletedAt, "CompletedAt", why)
	assert.Equal(t, want.LeaseToken, got.LeaseToken, "%s: LeaseToken", why)
	sameTime(t, want.LeaseExpiresAt, got.LeaseExpiresAt, "LeaseExpiresAt", why)
	sameAttempts(t, want.Attempts, got.Attempts, why)
}

func sameAttempts(t *testing.T, want, got []store.Attempt, why string) {
	t.Helper()
	if !assert.Len(t, got, len(want), "%s: number of attempts", why) {
		return
	}
	for i := range want {
		w, g := want[i], got[i]
		at := fmt.Sprintf("%s: attempt %d (oldest first)", why, i)
		assert.Equal(t, w.ID, g.ID, "%s: ID", at)
		assert.Equal(t, w.DeliveryID, g.DeliveryID, "%s: DeliveryID", at)
		assert.Equal(t, w.AttemptNumber, g.AttemptNumber, "%s: AttemptNumber", at)
		assert.Equal(t, w.StatusCode, g.StatusCode, "%s: StatusCode", at)
		assert.Equal(t, w.ResponseBody, g.ResponseBody, "%s: ResponseBody", at)
		assert.Equal(t, w.ResponseTimeMS, g.ResponseTimeMS, "%s: ResponseTimeMS", at)
		assert.Equal(t, w.ErrorMessage, g.ErrorMessage, "%s: ErrorMessage", at)
		assert.Equal(t, w.FailureReason, g.FailureReason, "%s: FailureReason", at)
		sameTime(t, w.CreatedAt, g.CreatedAt, "CreatedAt", at)
	}
}

// applied returns what d (as stored before a successful Record of r) must
// look like afterwards.
func applied(d *store.Delivery, r store.Result) *store.Delivery {
	w := d.Clone()
	w.Attempts = append(w.Attempts, r.Attempt)
	w.AttemptCount = r.Attempt.AttemptNumber
	w.Status = r.Status
	w.FailureReason = r.FailureReason
	w.FailureDetail = r.FailureDetail
	w.SigningSecretID = r.SigningSecretID
	w.NextAttemptAt = r.NextAttemptAt
	w.UpdatedAt = r.UpdatedAt
	w.CompletedAt = r.CompletedAt
	w.LeaseToken = uuid.Nil
	w.LeaseExpiresAt = time.Time{}
	return w
}

func testInsertedDeliveryReadsBack(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	d.CallbackURL = "https://hooks.example.com/rückruf?team=42&x=%20"
	d.SigningSecretID = uuid.NullUUID{UUID: uuid.New(), Valid: true}
	d.MaxAttempts = 7
	d.NextAttemptAt = at(90*time.Second + 123456*time.Microsecond)
	d.UpdatedAt = at(time.Microsecond)
	want := d.Clone()
	h.insert(d)

	sameDelivery(h.t, want, h.get(d.ID), "Get must return the inserted delivery")
	latest, err := h.s.Latest(h.ctx, d.BatchID)
	require.NoError(h.t, err, "Latest of a batch with a delivery must succeed")
	sameDelivery(h.t, want, latest, "Latest must return the inserted delivery")
	hist := h.history(d.BatchID)
	require.Len(h.t, hist, 1, "History must return the batch's one delivery")
	sameDelivery(h.t, want, hist[0], "History must return the inserted delivery")

	m := NewDelivery(uuid.New(), at(time.Second))
	m.IsAutomatic = false
	m.SigningSecretID = uuid.NullUUID{}
	want = m.Clone()
	h.insert(m)
	sameDelivery(h.t, want, h.get(m.ID), "Get must return a manual delivery without a secret id as inserted")
}

// bigPayload returns a valid JSON document of exactly n bytes with non-ASCII
// text throughout.
func bigPayload(n int) []byte {
	const head, tail = `{"event":"batch.succeeded","output":"`, `"}`
	var b strings.Builder
	b.WriteString(head)
	chunk := "Grüße, 世界! ✓ 🎉 <&> "
	for b.Len()+len(chunk)+len(tail) <= n {
		b.WriteString(chunk)
	}
	for b.Len()+len(tail) < n {
		b.WriteByte('x')
	}
	b.WriteString(tail)
	return []byte(b.String())
}

func testPayloadBytesRoundTrip(h *harness) {
	payloads := map[string][]byte{
		"non-ASCII":  []byte(`{"event":"batch.succeeded","batch_id":"0190a5b4-0000-7000-8000-000000000000","status":"succeeded","output":{"zeta":"é 漢字 🎉 <&>","alpha":"\u00e9\u2028\"q\"","n":1.50,"e":1E+2},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":{"b":null,"a":[]}}`),
		"whitespace": []byte("{\"b\" : 1 ,\n\t\"a\":[ ] , \"b\":2 }"),
		"1 MiB":      bigPayload(1 << 20),
	}
	require.Len(h.t, payloads["1 MiB"], 1<<20)
	for i, name := range []string{"non-ASCII", "whitespace", "1 MiB"} {
		p := payloads[name]
		d := NewDelivery(uuid.New(), at(time.Duration(i)*time.Second))
		d.Payload = bytes.Clone(p)
		h.insert(d)
		why := func(method string) string { return fmt.Sprintf("%s payload through %s", name, method) }

		samePayload(h.t, p, h.get(d.ID).Payload, why("Get"))
		latest, err := h.s.Latest(h.ctx, d.BatchID)
		require.NoError(h.t, err)
		require.NotNil(h.t, latest, "Latest of a batch with a delivery returned nil")
		samePayload(h.t, p, latest.Payload, why("Latest"))
		hist := h.history(d.BatchID)
		require.Len(h.t, hist, 1)
		samePayload(h.t, p, hist[0].Payload, why("History"))
		c := h.claimOne(d.ID, d.NextAttemptAt)
		samePayload(h.t, p, c.Payload, why("Claim"))
		h.record(c.LeaseToken, terminalResult(c, store.StatusSucceeded, d.NextAttemptAt))
		samePayload(h.t, p, h.get(d.ID).Payload, why("Get after Record"))
	}
}

func testInsertCopies(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	want := d.Clone()
	h.insert(d)
	d.Payload[0] = 'X'
	d.Payload = append(d.Payload[:1], "garbage"...)
	d.CallbackURL = "https://changed.example.com"
	d.NextAttemptAt = at(time.Hour)
	d.Status = store.StatusFailed
	sameDelivery(h.t, want, h.get(d.ID), "changing the inserted Delivery must not change the stored one")
}

func testReturnedCopies(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0))
	h.record(c.LeaseToken, retryResult(c, at(time.Second), at(time.Minute)))
	want := h.get(d.ID).Clone() // a Get that shared the store's memory would share it with want too

	mutate := func(x *store.Delivery) {
		x.Payload[0] = 'X'
		x.CallbackURL = "https://changed.example.com"
		x.Status = store.StatusFailed
		if len(x.Attempts) > 0 {
			x.Attempts[0].ResponseBody = "changed"
			x.Attempts[0].StatusCode = 999
		}
	}
	mutate(h.get(d.ID))
	h.unchanged(want, "changing a Delivery returned by Get must not change the store")
	latest, err := h.s.Latest(h.ctx, d.BatchID)
	require.NoError(h.t, err)
	require.NotNil(h.t, latest, "Latest of a batch with a delivery returned nil")
	mutate(latest)
	h.unchanged(want, "changing a Delivery returned by Latest must not change the store")
	hist := h.history(d.BatchID)
	require.Len(h.t, hist, 1)
	mutate(hist[0])
	h.unchanged(want, "changing a Delivery returned by History must not change the store")

	c = h.claimOne(d.ID, at(time.Minute))
	want.LeaseToken, want.LeaseExpiresAt, want.NextAttemptAt = c.LeaseToken, c.LeaseExpiresAt, c.NextAttemptAt
	mutate(c)
	c.LeaseToken = uuid.New()
	h.unchanged(want, "changing a Delivery returned by Claim must not change the store")
}

func testInsertDuplicateID(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	want := d.Clone()
	h.insert(d)

	dup := NewDelivery(uuid.New(), at(time.Minute))
	dup.ID = d.ID
	dup.IsAutomatic = false
	dup.Payload = []byte(`{"other":true}`)
	err := h.s.Insert(h.ctx, dup)
	require.Error(h.t, err, "Insert of a delivery whose ID is already stored must fail")
	assert.NotErrorIs(h.t, err, store.ErrConflict, "a duplicate id is an error, not a conflict of the batch (see Store.Insert)")
	h.unchanged(want, "a failed duplicate Insert must leave the stored delivery unchanged")
	assert.Empty(h.t, h.history(dup.BatchID), "a failed duplicate Insert must not add the delivery to its batch")
}

func testConcurrentInserts(h *harness) {
	const n = 50
	batch := uuid.New()
	ds := make([]*store.Delivery, n)
	for i := range ds {
		ds[i] = NewDelivery(batch, at(time.Duration(i)*time.Microsecond))
		ds[i].IsAutomatic = false
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ds {
		wg.Go(func() {
			<-start
			errs[i] = h.s.Insert(h.ctx, ds[i])
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				h.t.Errorf("Inserts %d and %d both succeeded: a batch must have at most one pending delivery", winner, i)
			}
			winner = i
		case !errors.Is(err, store.ErrConflict):
			h.t.Errorf("Insert %d failed with %v: a losing Insert must return ErrConflict (errors.Is)", i, err)
		}
	}
	require.GreaterOrEqual(h.t, winner, 0, "one of the concurrent Inserts must succeed")
	hist := h.history(batch)
	assert.Equal(h.t, []uuid.UUID{ds[winner].ID}, ids(hist), "History must hold only the winning delivery: a conflicting Insert inserts nothing")
}

func testInsertConflictsWhilePending(h *harness) {
	batch := uuid.New()
	first := NewDelivery(batch, at(0))
	want := first.Clone()
	h.insert(first)

	try := func(automatic bool, when string) {
		h.t.Helper()
		d := NewDelivery(batch, at(time.Second))
		d.IsAutomatic = automatic
		err := h.s.Insert(h.ctx, d)
		assert.ErrorIs(h.t, err, store.ErrConflict, "Insert (automatic=%v) while the batch has a %s pending delivery must return ErrConflict", automatic, when)
		_, err = h.s.Get(h.ctx, d.ID)
		assert.ErrorIs(h.t, err, store.ErrNotFound, "a conflicting Insert must insert nothing")
	}
	try(false, "unclaimed")
	try(true, "unclaimed")
	h.unchanged(want, "a conflicting Insert must leave the pending delivery untouched")

	c := h.claimOne(first.ID, at(0))
	try(false, "leased")
	try(true, "leased")
	h.record(c.LeaseToken, retryResult(c, at(time.Second), at(time.Hour)))
	try(false, "retrying")
	assert.Equal(h.t, []uuid.UUID{first.ID}, ids(h.history(batch)), "conflicting Inserts must not add deliveries to the batch")

	other := NewDelivery(uuid.New(), at(0))
	other.IsAutomatic = false
	require.NoError(h.t, h.s.Insert(h.ctx, other), "a pending delivery of one batch must not block Insert for another batch")

	// A batch whose pending delivery is manual, and which has no automatic
	// one: an automatic Insert conflicts too, by the pending rule alone.
	auto := NewDelivery(other.BatchID, at(time.Second))
	assert.ErrorIs(h.t, h.s.Insert(h.ctx, auto), store.ErrConflict,
		"an automatic Insert while the batch has a manual pending delivery must return ErrConflict")
	_, err := h.s.Get(h.ctx, auto.ID)
	assert.ErrorIs(h.t, err, store.ErrNotFound, "a conflicting Insert must insert nothing")
}

func testSecondAutomaticConflicts(h *harness) {
	batch := uuid.New()
	auto := NewDelivery(batch, at(0))
	h.insert(auto)
	h.finish(auto.ID, at(0), store.StatusSucceeded)

	again := NewDelivery(batch, at(time.Minute))
	assert.ErrorIs(h.t, h.s.Insert(h.ctx, again), store.ErrConflict,
		"a second automatic Insert must return ErrConflict even though the first automatic delivery is terminal")

	manual := NewDelivery(batch, at(2*time.Minute))
	manual.IsAutomatic = false
	require.NoError(h.t, h.s.Insert(h.ctx, manual),
		"a manual Insert must be accepted when the batch's deliveries are all terminal")
	h.finish(manual.ID, at(2*time.Minute), store.StatusFailed)

	manual2 := NewDelivery(batch, at(3*time.Minute))
	manual2.IsAutomatic = false
	require.NoError(h.t, h.s.Insert(h.ctx, manual2),
		"another manual Insert must be accepted once the previous manual delivery is terminal")
	h.finish(manual2.ID, at(3*time.Minute), store.StatusSucceeded)

	again = NewDelivery(batch, at(4*time.Minute))
	assert.ErrorIs(h.t, h.s.Insert(h.ctx, again), store.ErrConflict,
		"an automatic Insert must still return ErrConflict after manual redeliveries")
	assert.Len(h.t, h.history(batch), 3, "conflicting Inserts must not add deliveries")

	// Only an automatic delivery blocks an automatic one.
	batch2 := uuid.New()
	m := NewDelivery(batch2, at(5*time.Minute))
	m.IsAutomatic = false
	h.insert(m)
	h.finish(m.ID, at(5*time.Minute), store.StatusSucceeded)
	require.NoError(h.t, h.s.Insert(h.ctx, NewDelivery(batch2, at(6*time.Minute))),
		"an automatic Insert must be accepted for a batch whose only delivery is manual and terminal")
}

func testClaimDueOrder(h *harness) {
	now := at(time.Hour)
	offsets := []time.Duration{3 * time.Minute, -2 * time.Minute, 0, time.Microsecond, -10 * time.Minute, -time.Microsecond}
	byOffset := map[time.Duration]*store.Delivery{}
	for _, off := range offsets {
		d := NewDelivery(uuid.New(), at(0))
		d.NextAttemptAt = now.Add(off)
		h.insert(d)
		byOffset[off] = d
	}
	want := ids([]*store.Delivery{byOffset[-10*time.Minute], byOffset[-2*time.Minute], byOffset[-time.Microsecond], byOffset[0]})
	got := h.claim(now, 10)
	assert.Equal(h.t, want, ids(got), "Claim must return exactly the deliveries with NextAttemptAt <= now, earliest first")
	for _, off := range []time.Duration{time.Microsecond, 3 * time.Minute} {
		h.unchanged(byOffset[off], "a delivery not yet due must not be leased by Claim")
	}
}

func testClaimLimit(h *harness) {
	now := at(time.Hour)
	all := make([]uuid.UUID, 10)         // earliest NextAttemptAt first
	for i := len(all) - 1; i >= 0; i-- { // inserted latest first: the limit applies after ordering
		d := NewDelivery(uuid.New(), at(0))
		d.NextAttemptAt = at(time.Duration(i) * time.Minute)
		h.insert(d)
		all[i] = d.ID
	}
	assert.Equal(h.t, all[0:3], ids(h.claim(now, 3)), "Claim with limit 3 must return the 3 earliest due deliveries")
	assert.Equal(h.t, all[3:6], ids(h.claim(now, 3)), "the next Claim must return the next 3 earliest")
	assert.Equal(h.t, all[6:7], ids(h.claim(now, 1)), "Claim with limit 1 must return one delivery")
	assert.Equal(h.t, all[7:], ids(h.claim(now, 100)), "Claim with a limit above the number due must return all that are left")
	h.noneDue(now, "every due delivery is leased")
}

func testClaimLeases(h *harness) {
	now := at(time.Hour + 250*time.Microsecond)
	a := NewDelivery(uuid.New(), at(0))
	b := NewDelivery(uuid.New(), at(time.Second))
	b.SigningSecretID = uuid.NullUUID{UUID: uuid.New(), Valid: true}
	h.insert(a)
	h.insert(b)
	// Give a an attempt, so Claim has attempts to leave out, due at 2m.
	ca := h.claimOne(a.ID, at(0))
	h.record(ca.LeaseToken, retryResult(ca, at(0), at(2*time.Minute)))
	_ = h.claimOne(b.ID, at(time.Second)) // b's lease expires at 31s
	wantA, wantB := h.get(a.ID), h.get(b.ID)

	got, err := h.s.Claim(h.ctx, now, 10, 5*time.Minute)
	require.NoError(h.t, err)
	require.Equal(h.t, []uuid.UUID{b.ID, a.ID}, ids(got), "Claim must return both due deliveries, earliest NextAttemptAt first")
	require.NotEqual(h.t, got[0].LeaseToken, got[1].LeaseToken, "each claimed delivery must get its own LeaseToken")
	for i, want := range []*store.Delivery{wantB, wantA} {
		c := got[i]
		assert.NotEqual(h.t, uuid.Nil, c.LeaseToken, "a claimed delivery must carry a non-nil LeaseToken")
		assert.NotEqual(h.t, want.LeaseToken, c.LeaseToken, "Claim must give a fresh LeaseToken, not reuse an expired one")
		assert.Empty(h.t, c.Attempts, "a claimed delivery must carry no Attempts")
		want.LeaseToken = c.LeaseToken
		want.LeaseExpiresAt = now.Add(5 * time.Minute)
		want.NextAttemptAt = want.LeaseExpiresAt
		attempts := want.Attempts
		want.Attempts = nil
		sameDelivery(h.t, want, c, "Claim must return the delivery with LeaseExpiresAt = now+lease and NextAttemptAt = LeaseExpiresAt")
		want.Attempts = attempts
		h.unchanged(want, "after Claim, Get must show the lease")
	}
}

func testClaimNothingDue(h *harness) {
	h.noneDue(at(0), "the store is empty")
	d := NewDelivery(uuid.New(), at(time.Minute))
	h.insert(d)
	h.noneDue(at(time.Minute-time.Microsecond), "the only delivery is due a microsecond later")
	h.unchanged(d, "Claim must not touch a delivery that is not due")
}

func testLeaseExpiry(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	first := h.claimOne(d.ID, at(0))
	h.noneDue(at(0), "the only delivery was just claimed")
	h.noneDue(at(lease-time.Microsecond), "the lease has not expired yet")
	second := h.claimOne(d.ID, at(lease))
	assert.NotEqual(h.t, first.LeaseToken, second.LeaseToken, "re-claiming after the lease expired must give a different LeaseToken")
	sameTime(h.t, at(2*lease), second.LeaseExpiresAt, "LeaseExpiresAt", "the new lease must expire at now+lease")
}

func testConcurrentClaimers(h *harness) {
	const n, claimers, limit = 200, 8, 3
	for i := range n {
		d := NewDelivery(uuid.New(), at(0))
		d.NextAttemptAt = at(-time.Duration(i%7) * time.Second)
		h.insert(d)
	}
	now := at(time.Minute)
	got := make([][]*store.Delivery, claimers)
	errs := make([]error, claimers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for c := range claimers {
		wg.Go(func() {
			<-start
			for calls := 0; ; calls++ {
				if calls > 2*n {
					errs[c] = fmt.Errorf("claim still returns deliveries after %d calls for %d due deliveries: does Claim move a delivery out of the due range (NextAttemptAt to the lease's expiry)?", calls, n)
					return
				}
				ds, err := h.s.Claim(h.ctx, now, limit, time.Hour)
				if err != nil {
					errs[c] = err
					return
				}
				if len(ds) > limit {
					errs[c] = fmt.Errorf("claim returned %d deliveries, over its limit %d", len(ds), limit)
					return
				}
				if len(ds) == 0 {
					return
				}
				got[c] = append(got[c], ds...)
			}
		})
	}
	close(start)
	wg.Wait()
	for c, err := range errs {
		require.NoError(h.t, err, "claimer %d", c)
	}

	owner := map[uuid.UUID]int{}
	tokens := map[uuid.UUID]bool{}
	for c, ds := range got {
		for _, d := range ds {
			if prev, ok := owner[d.ID]; ok {
				h.t.Errorf("delivery %s was handed to claimers %d and %d while the first lease was valid: Claim must be exclusive", d.ID, prev, c)
			}
			owner[d.ID] = c
			if tokens[d.LeaseToken] {
				h.t.Errorf("lease token %s was given twice: every claim needs a fresh token", d.LeaseToken)
			}
			tokens[d.LeaseToken] = true
		}
	}
	assert.Len(h.t, owner, n, "every due delivery must be claimed by one of the claimers")
	h.noneDue(now, "every delivery is leased for an hour")
}

func testRecordRetry(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0)) // lease expires at 30s
	before := h.get(d.ID)
	next := at(5*time.Minute + 7*time.Microsecond)
	r := retryResult(c, at(1500*time.Millisecond), next)
	h.record(c.LeaseToken, r)
	h.unchanged(applied(before, r), "Record with a pending result must store the attempt and the new state and end the lease")
	h.noneDue(at(lease), "NextAttemptAt moved past the old lease expiry")
	h.noneDue(next.Add(-time.Microsecond), "the delivery is due again only at NextAttemptAt")
	c = h.claimOne(d.ID, next)
	h.record(c.LeaseToken, terminalResult(c, store.StatusSucceeded, next))

	// A retry due before the old lease would have expired.
	e := NewDelivery(uuid.New(), at(time.Hour))
	h.insert(e)
	c = h.claimOne(e.ID, at(time.Hour))
	next = at(time.Hour + 2*time.Second)
	h.record(c.LeaseToken, retryResult(c, at(time.Hour+time.Second), next))
	h.noneDue(next.Add(-time.Microsecond), "the delivery is due again only at NextAttemptAt")
	h.claimOne(e.ID, next)
}

func testRecordTerminal(h *harness, status store.Status) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0))
	h.record(c.LeaseToken, retryResult(c, at(time.Second), at(time.Minute)))
	c = h.claimOne(d.ID, at(time.Minute))
	before := h.get(d.ID)
	end := at(time.Minute + 1234*time.Microsecond)
	r := terminalResult(c, status, end)
	h.record(c.LeaseToken, r)
	got := h.get(d.ID)
	sameDelivery(h.t, applied(before, r), got, fmt.Sprintf("Record with a %s result must store the attempt and the terminal state", status))
	assert.Equal(h.t, status, got.Status, "the delivery must end as %s", status)
	assert.False(h.t, got.CompletedAt.IsZero(), "a terminal delivery must have CompletedAt set")
	assert.True(h.t, got.NextAttemptAt.IsZero(), "a terminal delivery must have a zero NextAttemptAt")
	h.noneDue(at(time.Minute+lease), "a terminal delivery is never claimed again, even after its lease would have expired")
	h.noneDue(at(1000*time.Hour), "a terminal delivery is never claimed again")
}

func testAttemptsAccumulate(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)

	c := h.claimOne(d.ID, at(0))
	a1 := newAttempt(c, at(123456*time.Microsecond))
	a1.ResponseTimeMS = 10000
	a1.ErrorMessage = "Post \"https://hooks.example.com\": context deadline exceeded"
	a1.FailureReason = store.ReasonTimeout
	first := uuid.NullUUID{UUID: uuid.New(), Valid: true}
	h.record(c.LeaseToken, store.Result{
		DeliveryID: d.ID, Attempt: a1, Status: store.StatusPending,
		FailureReason: store.ReasonTimeout, FailureDetail: "no response within 10s",
		SigningSecretID: first, NextAttemptAt: at(time.Minute), UpdatedAt: at(10 * time.Second),
	})
	assert.Equal(h.t, first, h.get(d.ID).SigningSecretID, "SigningSecretID must be the last attempt's")

	c = h.claimOne(d.ID, at(time.Minute))
	a2 := newAttempt(c, at(time.Minute+1*time.Microsecond))
	a2.StatusCode = 503
	a2.ResponseBody = "Service indisponible — réessayez 🙏 <b>&amp;</b>"
	a2.ResponseTimeMS = 87
	a2.ErrorMessage = "HTTP 503"
	a2.FailureReason = store.ReasonHTTPError
	h.record(c.LeaseToken, store.Result{
		DeliveryID: d.ID, Attempt: a2, Status: store.StatusPending,
		FailureReason: store.ReasonHTTPError, FailureDetail: "HTTP 503 Service Unavailable",
		NextAttemptAt: at(5 * time.Minute), UpdatedAt: at(time.Minute + time.Second),
	})
	assert.Equal(h.t, uuid.NullUUID{}, h.get(d.ID).SigningSecretID,
		"SigningSecretID must be the last attempt's: a Result without one clears the earlier one")

	c = h.claimOne(d.ID, at(5*time.Minute))
	a3 := newAttempt(c, at(5*time.Minute+999999*time.Microsecond))
	a3.StatusCode = 200
	a3.ResponseBody = "ok ✓"
	a3.ResponseTimeMS = 3
	secret := uuid.NullUUID{UUID: uuid.New(), Valid: true}
	h.record(c.LeaseToken, store.Result{
		DeliveryID: d.ID, Attempt: a3, Status: store.StatusSucceeded, SigningSecretID: secret,
		UpdatedAt: at(6 * time.Minute), CompletedAt: at(6 * time.Minute),
	})

	got := h.get(d.ID)
	sameAttempts(h.t, []store.Attempt{a1, a2, a3}, got.Attempts, "Get must return every recorded attempt")
	assert.Equal(h.t, 3, got.AttemptCount, "AttemptCount must equal the last AttemptNumber")
	assert.Equal(h.t, store.StatusSucceeded, got.Status)
	assert.Equal(h.t, store.FailureReason(""), got.FailureReason, "a success must clear the delivery's FailureReason (Record copies it from the Result)")
	assert.Equal(h.t, "", got.FailureDetail, "a success must clear the delivery's FailureDetail (Record copies it from the Result)")
	assert.Equal(h.t, secret, got.SigningSecretID, "SigningSecretID must be the last attempt's")
	hist := h.history(d.BatchID)
	require.Len(h.t, hist, 1)
	sameAttempts(h.t, []store.Attempt{a1, a2, a3}, hist[0].Attempts, "History must return every recorded attempt")
}

func testRecordStaleLease(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	old := h.claimOne(d.ID, at(0))
	cur := h.claimOne(d.ID, at(lease))
	before := h.get(d.ID)

	err := h.s.Record(h.ctx, old.LeaseToken, terminalResult(old, store.StatusSucceeded, at(lease+time.Second)))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Record with a lease token replaced by a later Claim must return ErrLeaseLost")
	h.unchanged(before, "a Record that lost its lease must change nothing")

	other := NewDelivery(uuid.New(), at(lease))
	h.insert(other)
	oc := h.claimOne(other.ID, at(lease))
	err = h.s.Record(h.ctx, oc.LeaseToken, terminalResult(cur, store.StatusSucceeded, at(lease+time.Second)))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Record with another delivery's current lease token must return ErrLeaseLost")
	h.unchanged(before, "a Record with another delivery's token must change nothing")

	// Arguments are checked first: with a stale token too, an invalid call
	// is refused as such.
	bad := terminalResult(old, store.StatusSucceeded, at(lease+time.Second))
	bad.CompletedAt = time.Time{}
	err = h.s.Record(h.ctx, old.LeaseToken, bad)
	assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "Record of an invalid Result with a stale token")
	err = h.s.Release(h.ctx, d.ID, old.LeaseToken, time.Time{})
	assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "Release to a zero time with a stale token")
	h.unchanged(before, "refused calls must change nothing")

	h.record(cur.LeaseToken, terminalResult(cur, store.StatusSucceeded, at(lease+2*time.Second)))
	assert.Len(h.t, h.get(d.ID).Attempts, 1, "only the current lease holder's attempt is recorded")
}

func testRecordTwice(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0))
	h.record(c.LeaseToken, retryResult(c, at(time.Second), at(time.Minute)))
	after := h.get(d.ID)

	err := h.s.Record(h.ctx, c.LeaseToken, retryResult(after, at(2*time.Second), at(time.Minute)))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "a second Record with the same token must return ErrLeaseLost")
	err = h.s.Record(h.ctx, c.LeaseToken, retryResult(c, at(2*time.Second), at(time.Minute)))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "a repeated Record of the same attempt with the same token must return ErrLeaseLost")
	h.unchanged(after, "a Record with an ended lease must change nothing")
}

func testNilToken(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	before := h.get(d.ID)
	err := h.s.Record(h.ctx, uuid.Nil, retryResult(before, at(0), at(time.Minute)))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Record with uuid.Nil on a delivery never claimed must return ErrLeaseLost")
	err = h.s.Release(h.ctx, d.ID, uuid.Nil, at(time.Minute))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Release with uuid.Nil on a delivery never claimed must return ErrLeaseLost")
	h.unchanged(before, "a refused Record or Release must change nothing")

	c := h.claimOne(d.ID, at(0))
	before = h.get(d.ID)
	err = h.s.Record(h.ctx, uuid.Nil, retryResult(c, at(0), at(time.Minute)))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Record with uuid.Nil on a claimed delivery must return ErrLeaseLost")
	err = h.s.Release(h.ctx, d.ID, uuid.Nil, at(time.Minute))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Release with uuid.Nil on a claimed delivery must return ErrLeaseLost")
	h.unchanged(before, "a refused Record or Release must change nothing")
}

func testExpiredLeaseStillRecords(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0))
	h.record(c.LeaseToken, terminalResult(c, store.StatusSucceeded, at(10*lease)))
	assert.Equal(h.t, store.StatusSucceeded, h.get(d.ID).Status)
}

func testRecordRejectsInconsistent(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0))
	h.record(c.LeaseToken, retryResult(c, at(time.Second), at(time.Minute)))
	c = h.claimOne(d.ID, at(time.Minute)) // AttemptCount 1
	before := h.get(d.ID)

	bad := map[string]func(r *store.Result){
		"Attempt.DeliveryID differs from DeliveryID": func(r *store.Result) { r.Attempt.DeliveryID = uuid.New() },
		"AttemptNumber repeats the last attempt":     func(r *store.Result) { r.Attempt.AttemptNumber = 1 },
		"AttemptNumber skips one":                    func(r *store.Result) { r.Attempt.AttemptNumber = 3 },
		"Status is not a delivery status":            func(r *store.Result) { r.Status = "delivered" },
		// The rest of what store.CheckResult refuses.
		"StatusCode is not an HTTP status":          func(r *store.Result) { r.Attempt.StatusCode = 5000 },
		"a pending Result has a zero NextAttemptAt": func(r *store.Result) { r.NextAttemptAt = time.Time{} },
		"a pending Result has CompletedAt set":      func(r *store.Result) { r.CompletedAt = r.UpdatedAt },
		"a terminal Result has NextAttemptAt set":   func(r *store.Result) { r.Status, r.CompletedAt = store.StatusFailed, r.UpdatedAt },
		"a terminal Result has a zero CompletedAt":  func(r *store.Result) { r.Status, r.NextAttemptAt = store.StatusSucceeded, time.Time{} },
	}
	if strconv.IntSize == 64 {
		// 2 in 32 bits: a store that narrows it must refuse, not accept.
		wide := int64(1)<<32 + 2
		bad["AttemptNumber is beyond 32 bits"] = func(r *store.Result) { r.Attempt.AttemptNumber = int(wide) }
	}
	for what, change := range bad {
		r := retryResult(c, at(time.Minute+time.Second), at(2*time.Minute))
		change(&r)
		err := h.s.Record(h.ctx, c.LeaseToken, r)
		assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "Record must fail when %s", what)
		h.unchanged(before, "a refused Record ("+what+") must change nothing")
	}
	h.record(c.LeaseToken, retryResult(c, at(time.Minute+time.Second), at(2*time.Minute)))
}

// refusesInserts checks that Insert refuses a new delivery changed by each
// of bad, with an error matching ErrInvalidArgument, inserting nothing.
func (h *harness) refusesInserts(bad map[string]func(d *store.Delivery)) {
	h.t.Helper()
	for what, change := range bad {
		d := NewDelivery(uuid.New(), at(0))
		change(d)
		err := h.s.Insert(h.ctx, d)
		assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "Insert of a delivery with %s must fail: it is invalid, not a conflict", what)
		_, err = h.s.Get(h.ctx, d.ID)
		assert.ErrorIs(h.t, err, store.ErrNotFound, "a refused Insert (%s) inserts nothing", what)
	}
}

func testUnstorable(h *harness) {
	late := time.Date(store.MaxYear+1, 1, 1, 0, 0, 0, 0, time.UTC)
	bad := map[string]func(d *store.Delivery){
		"an empty CallbackURL":            func(d *store.Delivery) { d.CallbackURL = "" },
		"a CallbackURL that is not UTF-8": func(d *store.Delivery) { d.CallbackURL = "https://example.com/\xff" },
		"a CallbackURL with a NUL byte":   func(d *store.Delivery) { d.CallbackURL = "https://example.com/\x00" },
		"a NextAttemptAt after MaxYear":   func(d *store.Delivery) { d.NextAttemptAt = late },
		"a CreatedAt after MaxYear":       func(d *store.Delivery) { d.CreatedAt = late },
		"an UpdatedAt before MinYear (UTC)": func(d *store.Delivery) {
			d.UpdatedAt = time.Date(store.MinYear-1, 12, 31, 23, 0, 0, 0, time.UTC)
		},
	}
	h.refusesInserts(bad)

	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0))
	before := h.get(d.ID)
	for what, change := range map[string]func(r *store.Result){
		"NextAttemptAt after MaxYear":     func(r *store.Result) { r.NextAttemptAt = late },
		"Attempt.CreatedAt after MaxYear": func(r *store.Result) { r.Attempt.CreatedAt = late },
	} {
		r := retryResult(c, at(time.Second), at(time.Minute))
		change(&r)
		assert.ErrorIs(h.t, h.s.Record(h.ctx, c.LeaseToken, r), store.ErrInvalidArgument, "Record with %s must fail", what)
		h.unchanged(before, "a refused Record ("+what+") must change nothing")
	}
	assert.ErrorIs(h.t, h.s.Release(h.ctx, c.ID, c.LeaseToken, late), store.ErrInvalidArgument, "Release to a time after MaxYear must fail")
	h.unchanged(before, "a refused Release must change nothing")
	last := time.Date(store.MaxYear, 12, 31, 23, 0, 0, 0, time.UTC)
	got, err := h.s.Claim(h.ctx, last, 10, 2*time.Hour)
	assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "a Claim whose lease would expire after MaxYear must fail")
	assert.Empty(h.t, got)
	h.unchanged(before, "a refused Claim must change nothing")
	h.record(c.LeaseToken, terminalResult(c, store.StatusSucceeded, at(time.Second)))
}

func testRelease(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0))
	h.record(c.LeaseToken, retryResult(c, at(time.Second), at(time.Minute)))
	c = h.claimOne(d.ID, at(time.Minute)) // lease expires at 1m30s
	want := h.get(d.ID)

	next := at(time.Minute + 10*time.Second)
	require.NoError(h.t, h.s.Release(h.ctx, d.ID, c.LeaseToken, next), "Release with the current lease must succeed")
	want.LeaseToken, want.LeaseExpiresAt, want.NextAttemptAt = uuid.Nil, time.Time{}, next
	h.unchanged(want, "Release must end the lease and set NextAttemptAt = next, adding no attempt")
	h.noneDue(next.Add(-time.Microsecond), "a released delivery is due only at next")
	c = h.claimOne(d.ID, next)

	next = at(time.Hour)
	require.NoError(h.t, h.s.Release(h.ctx, d.ID, c.LeaseToken, next), "Release with the current lease must succeed")
	h.noneDue(c.LeaseExpiresAt, "a released delivery is due at next, not at its old lease expiry")
	h.noneDue(next.Add(-time.Microsecond), "a released delivery is due only at next")
	h.claimOne(d.ID, next)
}

func testReleaseStale(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	old := h.claimOne(d.ID, at(0))
	cur := h.claimOne(d.ID, at(lease))
	before := h.get(d.ID)
	err := h.s.Release(h.ctx, d.ID, old.LeaseToken, at(time.Hour))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Release with a token replaced by a later Claim must return ErrLeaseLost")
	h.unchanged(before, "a Release that lost its lease must change nothing")

	other := NewDelivery(uuid.New(), at(lease))
	h.insert(other)
	oc := h.claimOne(other.ID, at(lease))
	err = h.s.Release(h.ctx, d.ID, oc.LeaseToken, at(time.Hour))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Release with another delivery's current lease token must return ErrLeaseLost")
	h.unchanged(before, "a Release with another delivery's token must change nothing")
	h.record(oc.LeaseToken, terminalResult(oc, store.StatusSucceeded, at(lease+time.Second)))

	require.NoError(h.t, h.s.Release(h.ctx, d.ID, cur.LeaseToken, at(time.Hour)))
	before = h.get(d.ID)
	err = h.s.Release(h.ctx, d.ID, cur.LeaseToken, at(2*time.Hour))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Release with a token already released must return ErrLeaseLost")
	h.unchanged(before, "a Release with an ended lease must change nothing")

	c := h.claimOne(d.ID, at(time.Hour))
	h.record(c.LeaseToken, retryResult(c, at(time.Hour), at(3*time.Hour)))
	before = h.get(d.ID)
	err = h.s.Release(h.ctx, d.ID, c.LeaseToken, at(2*time.Hour))
	assert.ErrorIs(h.t, err, store.ErrLeaseLost, "Release with a token whose attempt was already recorded must return ErrLeaseLost")
	h.unchanged(before, "a Release with an ended lease must change nothing")
}

// failedTwice inserts an automatic delivery of batch, created at 0, and
// records two attempts that fail it, at 0 and at one minute.
func (h *harness) failedTwice(batch uuid.UUID) *store.Delivery {
	d := NewDelivery(batch, at(0))
	h.insert(d)
	c := h.claimOne(d.ID, at(0))
	h.record(c.LeaseToken, retryResult(c, at(time.Second), at(time.Minute)))
	c = h.claimOne(d.ID, at(time.Minute))
	h.record(c.LeaseToken, terminalResult(c, store.StatusFailed, at(time.Minute)))
	return d
}

func testHistoryOrder(h *harness) {
	batch := uuid.New()
	d1 := h.failedTwice(batch)

	d2 := NewDelivery(batch, at(time.Hour))
	d2.IsAutomatic = false
	h.insert(d2)
	h.finish(d2.ID, at(time.Hour), store.StatusSucceeded)

	// Inserted after d2 but created before it (another process's clock):
	// History orders by CreatedAt, not by insertion.
	early := NewDelivery(batch, at(30*time.Minute))
	early.IsAutomatic = false
	h.insert(early)
	h.finish(early.ID, at(time.Hour+time.Minute), store.StatusSucceeded)

	d3 := NewDelivery(batch, at(2*time.Hour))
	d3.IsAutomatic = false
	h.insert(d3)

	other := NewDelivery(uuid.New(), at(90*time.Minute))
	h.insert(other)

	want := []*store.Delivery{h.get(d3.ID), h.get(d2.ID), h.get(early.ID), h.get(d1.ID)}
	hist := h.history(batch)
	require.Equal(h.t, ids(want), ids(hist), "History must return the batch's deliveries (and no other batch's), newest CreatedAt first")
	for i := range want {
		sameDelivery(h.t, want[i], hist[i], fmt.Sprintf("History[%d] must equal Get of the same delivery", i))
	}
	require.Len(h.t, hist[3].Attempts, 2)
	assert.Equal(h.t, []int{1, 2}, []int{hist[3].Attempts[0].AttemptNumber, hist[3].Attempts[1].AttemptNumber}, "attempts must be oldest first")

	latest, err := h.s.Latest(h.ctx, batch)
	require.NoError(h.t, err, "Latest of a batch with deliveries must succeed")
	sameDelivery(h.t, want[0], latest, "Latest must return the newest delivery")
}

func testNotFound(h *harness) {
	d := NewDelivery(uuid.New(), at(0))
	h.insert(d)
	unknown := uuid.New()

	_, err := h.s.Get(h.ctx, unknown)
	assert.ErrorIs(h.t, err, store.ErrNotFound, "Get of an unknown id must return ErrNotFound")
	_, err = h.s.Latest(h.ctx, unknown)
	assert.ErrorIs(h.t, err, store.ErrNotFound, "Latest of a batch without deliveries must return ErrNotFound")
	hist, err := h.s.History(h.ctx, unknown)
	assert.NoError(h.t, err, "History of a batch without deliveries must not fail")
	assert.Empty(h.t, hist, "History of a batch without deliveries must be empty")

	ghost := NewDelivery(unknown, at(0))
	r := retryResult(ghost, at(0), at(time.Minute))
	err = h.s.Record(h.ctx, uuid.New(), r)
	assert.ErrorIs(h.t, err, store.ErrNotFound, "Record on an unknown delivery must return ErrNotFound")
	err = h.s.Release(h.ctx, unknown, uuid.New(), at(time.Minute))
	assert.ErrorIs(h.t, err, store.ErrNotFound, "Release on an unknown delivery must return ErrNotFound")
	_, err = h.s.Get(h.ctx, ghost.ID)
	assert.ErrorIs(h.t, err, store.ErrNotFound, "Record on an unknown delivery must not create it")
}

func testNilContext(h *harness) {
	var nilCtx context.Context
	refused := func(what string, call func() error) {
		h.t.Helper()
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					h.t.Errorf("%s with a nil context panicked: %v", what, p)
					err = store.ErrInvalidArgument
				}
			}()
			err = call()
		}()
		assert.ErrorIs(h.t, err, store.ErrInvalidArgument, "%s with a nil context", what)
	}

	d := NewDelivery(uuid.New(), at(0))
	refused("Insert", func() error { return h.s.Insert(nilCtx, d) })
	if li, ok := h.s.(store.LeasedInserter); ok {
		refused("InsertLeased", func() error { return li.InsertLeased(nilCtx, newLeased(d.BatchID, at(0))) })
	}
	assert.Empty(h.t, h.history(d.BatchID), "refused inserts insert nothing")

	h.insert(d)
	before := h.get(d.ID)
	refused("Claim", func() error { _, err := h.s.Claim(nilCtx, at(0), 10, lease); return err })
	if oc, ok := h.s.(store.OneClaimer); ok {
		refused("ClaimOne", func() error { _, err := oc.ClaimOne(nilCtx, d.ID, at(0), lease); return err })
	}
	h.unchanged(before, "a Claim with a nil context must lease nothing")

	c := h.claimOne(d.ID, at(0))
	before = h.get(d.ID)
	refused("Record", func() error { return h.s.Record(nilCtx, c.LeaseToken, retryResult(c, at(0), at(time.Minute))) })
	refused("Release", func() error { return h.s.Release(nilCtx, d.ID, c.LeaseToken, at(time.Minute)) })
	h.unchanged(before, "Record and Release with a nil context must change nothing")
	refused("Get", func() error { _, err := h.s.Get(nilCtx, d.ID); return err })
	refused("Latest", func() error { _, err := h.s.Latest(nilCtx, d.BatchID); return err })
	refused("History", func() error { _, err := h.s.History(nilCtx, d.BatchID); return err })
}

func testCanceledContext(h *harness) {
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()

	d := NewDelivery(uuid.New(), at(0))
	assert.Error(h.t, h.s.Insert(ctx, d), "Insert with a canceled context must fail")
	_, err := h.s.Get(h.ctx, d.ID)
	assert.ErrorIs(h.t, err, store.ErrNotFound, "an Insert with a canceled context must insert nothing")

	h.insert(d)
	before := h.get(d.ID)
	_, err = h.s.Claim(ctx, at(0), 10, lease)
	assert.Error(h.t, err, "Claim with a canceled context must fail")
	h.unchanged(before, "a Claim with a canceled context must lease nothing")

	c := h.claimOne(d.ID, at(0))
	before = h.get(d.ID)
	assert.Error(h.t, h.s.Record(ctx, c.LeaseToken, retryResult(c, at(0), at(time.Minute))), "Record with a canceled context must fail")
	assert.Error(h.t, h.s.Release(ctx, d.ID, c.LeaseToken, at(time.Minute)), "Release with a canceled context must fail")
	h.unchanged(before, "Record and Release with a canceled context must change nothing")
	_, err = h.s.Get(ctx, d.ID)
	assert.Error(h.t, err, "Get with a canceled context must fail")
	_, err = h.s.Latest(ctx, d.BatchID)
	assert.Error(h.t, err, "Latest with a canceled context must fail")
	_, err = h.s.History(ctx, d.BatchID)
	assert.Error(h.t, err, "History with a canceled context must fail")
}

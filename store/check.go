package store

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MinYear and MaxYear bound the times a Store accepts: a delivery's and an
// attempt's times must fall in years MinYear to MaxYear (UTC). Records write
// times with four-digit years, and PostgreSQL's timestamps end in 294276.
const (
	MinYear = 1
	MaxYear = 9999
)

// badTime names the first of times that falls outside MinYear to MaxYear,
// or returns "" when they all fit. names and times run in parallel.
func badTime(names []string, times ...time.Time) string {
	for i, t := range times {
		if y := t.UTC().Year(); y < MinYear || y > MaxYear {
			return fmt.Sprintf("%s (%s) is outside years %d to %d", names[i], t.UTC().Format(time.RFC3339), MinYear, MaxYear)
		}
	}
	return ""
}

// StorableText returns s with each run of bytes that are not valid UTF-8,
// and each NUL byte, replaced by U+FFFD: text that every Store keeps as it is
// (PostgreSQL's text holds nothing else), and that a record's JSON shows as
// stored. Valid text without NUL bytes is returned unchanged. The Deliverer
// passes response bodies, error messages and failure details through it
// before Record; a Store may too, for callers that do not.
func StorableText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// CheckTimes returns a descriptive error naming op when a time a Claim or a
// Release would store falls outside years MinYear to MaxYear: for a Claim
// now and now+lease (the lease's expiry, which becomes NextAttemptAt), for a
// Release next (pass lease 0). Records write four-digit years; a time past
// them could not be read back. hookline's stores call it; a custom Store
// may too.
func CheckTimes(op string, now time.Time, lease time.Duration) error {
	problem := badTime(checkedTimes[:1], now)
	if problem == "" && lease > 0 {
		problem = badTime(checkedTimes[1:], now.Add(lease))
	}
	if problem != "" {
		return fmt.Errorf("store: %s: %s: %w", op, problem, ErrInvalidArgument)
	}
	return nil
}

// checkedTimes names the times CheckTimes checks.
var checkedTimes = []string{"the time", "the lease's expiry"}

// badURL says what makes a callback URL unstorable, or returns "": stores
// keep it as text, which must be UTF-8 without NUL bytes (PostgreSQL's text
// holds nothing else). Delivery validates URLs fully before they get here.
func badURL(u string) string {
	switch {
	case u == "":
		return "CallbackURL is empty"
	case !utf8.ValidString(u):
		return "CallbackURL is not valid UTF-8"
	case strings.IndexByte(u, 0) >= 0:
		return "CallbackURL contains a NUL byte"
	}
	return ""
}

// CheckNew returns a descriptive error when d is not a valid new delivery
// for Insert: nil, a nil ID or BatchID, a CallbackURL that is empty, not
// UTF-8 or holds a NUL byte, a status other than pending, attempts already
// made, a MaxAttempts outside 1 to 2^31-1 (what a 32-bit integer column
// holds), a zero NextAttemptAt, CompletedAt set, a time outside years
// MinYear to MaxYear, or a nil Payload. It sees only d: duplicates and conflicts are the Store's to find.
// hookline's stores call it first; a custom Store may too.
func CheckNew(d *Delivery) error {
	if d == nil {
		return fmt.Errorf("store: insert delivery: nil delivery: %w", ErrInvalidArgument)
	}
	urlProblem := badURL(d.CallbackURL)
	timeProblem := badTime(newTimes, d.NextAttemptAt, d.CreatedAt, d.UpdatedAt)
	var problem string
	switch {
	case d.ID == uuid.Nil:
		problem = "ID is the nil UUID; set it (uuid.NewV7)"
	case d.BatchID == uuid.Nil:
		problem = "BatchID is the nil UUID"
	case urlProblem != "":
		problem = urlProblem
	case d.Status != StatusPending:
		problem = fmt.Sprintf("Status is %q, want %q", d.Status, StatusPending)
	case d.AttemptCount != 0 || len(d.Attempts) != 0:
		problem = fmt.Sprintf("AttemptCount is %d with %d attempts, want a delivery with no attempts", d.AttemptCount, len(d.Attempts))
	case d.MaxAttempts < 1 || d.MaxAttempts > math.MaxInt32:
		problem = fmt.Sprintf("MaxAttempts is %d, want 1 to %d", d.MaxAttempts, math.MaxInt32)
	case d.NextAttemptAt.IsZero():
		problem = "NextAttemptAt is zero; set it to when the first attempt is due"
	case !d.CompletedAt.IsZero():
		problem = "CompletedAt is set on a pending delivery"
	case timeProblem != "":
		problem = timeProblem
	case d.Payload == nil:
		problem = "Payload is nil"
	default:
		return nil
	}
	return fmt.Errorf("store: insert delivery %s: %s: %w", d.ID, problem, ErrInvalidArgument)
}

var (
	newTimes   = []string{"NextAttemptAt", "CreatedAt", "UpdatedAt"}
	leaseTimes = []string{"LeaseExpiresAt"}
)

// CheckLeased is CheckNew for LeasedInserter.InsertLeased: d must also carry
// a lease token and a LeaseExpiresAt after its NextAttemptAt.
func CheckLeased(d *Delivery) error {
	if err := CheckNew(d); err != nil {
		return err
	}
	var problem string
	switch {
	case d.LeaseToken == uuid.Nil:
		problem = "LeaseToken is the nil UUID"
	case !d.LeaseExpiresAt.After(d.NextAttemptAt):
		problem = fmt.Sprintf("LeaseExpiresAt (%s) is not after NextAttemptAt (%s)", d.LeaseExpiresAt, d.NextAttemptAt)
	default:
		if problem = badTime(leaseTimes, d.LeaseExpiresAt); problem == "" {
			return nil
		}
	}
	return fmt.Errorf("store: insert leased delivery %s: %s: %w", d.ID, problem, ErrInvalidArgument)
}

// CheckResult returns a descriptive error when r is inconsistent for
// Record: an Attempt.DeliveryID other than r.DeliveryID, an AttemptNumber
// outside 1 to 2^31-1, an Attempt.StatusCode that is neither 0 (no
// response) nor 100 to 999, an unknown status, times that do not fit the
// status (a pending result needs NextAttemptAt and no CompletedAt; a
// terminal one the reverse), or a time outside years MinYear to MaxYear. That the attempt number follows the delivery's AttemptCount is
// the Store's to check against what it holds.
func CheckResult(r *Result) error {
	if r == nil {
		return fmt.Errorf("store: record attempt: nil Result: %w", ErrInvalidArgument)
	}
	var problem string
	switch {
	case r.Attempt.DeliveryID != r.DeliveryID:
		problem = fmt.Sprintf("Attempt.DeliveryID is %s, want the Result's DeliveryID", r.Attempt.DeliveryID)
	case r.Attempt.AttemptNumber < 1 || r.Attempt.AttemptNumber > math.MaxInt32:
		problem = fmt.Sprintf("Attempt.AttemptNumber is %d, want AttemptCount+1 (at most %d)", r.Attempt.AttemptNumber, math.MaxInt32)
	case r.Attempt.StatusCode != 0 && (r.Attempt.StatusCode < 100 || r.Attempt.StatusCode > 999):
		problem = fmt.Sprintf("Attempt.StatusCode is %d, want 0 (no response) or an HTTP status, 100 to 999", r.Attempt.StatusCode)
	case r.Status != StatusPending && !r.Status.Terminal():
		problem = fmt.Sprintf("Status %q is not a delivery status", r.Status)
	case r.Status == StatusPending && r.NextAttemptAt.IsZero():
		problem = "NextAttemptAt is zero for a pending delivery; set when it is due again"
	case r.Status == StatusPending && !r.CompletedAt.IsZero():
		problem = "CompletedAt is set for a pending delivery"
	case r.Status.Terminal() && !r.NextAttemptAt.IsZero():
		problem = fmt.Sprintf("NextAttemptAt is set for a %s delivery; leave it zero", r.Status)
	case r.Status.Terminal() && r.CompletedAt.IsZero():
		problem = fmt.Sprintf("CompletedAt is zero for a %s delivery", r.Status)
	default:
		if problem = badTime(resultTimes, r.NextAttemptAt, r.UpdatedAt, r.CompletedAt, r.Attempt.CreatedAt); problem == "" {
			return nil
		}
	}
	return fmt.Errorf("store: record attempt on delivery %s: %s: %w", r.DeliveryID, problem, ErrInvalidArgument)
}

var resultTimes = []string{"NextAttemptAt", "UpdatedAt", "CompletedAt", "Attempt.CreatedAt"}

package delivery

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryPolicy makes the backoff for one delivery: the delay after each failed
// attempt, as a fresh backoff.BackOff. hookline calls NextBackOff once per
// failed attempt; since a delivery may move between processes, it rebuilds
// the state for attempt n by calling NextBackOff n times on a new BackOff.
// backoff.Stop ends the delivery as failed, as does reaching MaxAttempts.
// Another negative delay is read as 0, and one longer than a year as a year;
// a retry that would fall due after year store.MaxYear (its lease included)
// ends the delivery as failed, since no Store can keep it.
//
// DefaultRetryPolicy is the default; ExponentialRetryPolicy is the usual
// alternative; any function returning a backoff.BackOff works.
type RetryPolicy func() backoff.BackOff

// DefaultSchedule is the delay before each retry of DefaultRetryPolicy:
// attempt 1 runs at once, attempt 2 five seconds after it failed, and so on,
// the schedule of the most widely used webhook sender (Svix). With
// DefaultMaxAttempts (8) it spans about 27 hours; with a larger MaxAttempts
// its last delay repeats.
var DefaultSchedule = []time.Duration{
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// DefaultJitter is the randomization of DefaultRetryPolicy: each delay is
// multiplied by a factor drawn uniformly from [0.8, 1.2].
const DefaultJitter = 0.2

// DefaultRetryPolicy returns DefaultSchedule with DefaultJitter, its last
// delay repeating, so that MaxAttempts alone ends a failing delivery.
func DefaultRetryPolicy() backoff.BackOff {
	return &Schedule{Delays: DefaultSchedule, Jitter: DefaultJitter, RepeatLast: true}
}

// ExponentialRetryPolicy returns a RetryPolicy of exponential delays:
// initial, then multiplied by 2 each time up to maxDelay, each randomized by
// ±20%. An initial below a millisecond is read as a millisecond, a maxDelay
// below initial as initial, and either above a year as a year (as
// RetryPolicy reads longer delays).
func ExponentialRetryPolicy(initial, maxDelay time.Duration) RetryPolicy {
	// Bounded before backoff randomizes them: ±20% of a delay near
	// math.MaxInt64 would overflow to a negative one.
	initial = min(max(initial, time.Millisecond), maxRetryDelay)
	maxDelay = min(max(maxDelay, initial), maxRetryDelay)
	return func() backoff.BackOff {
		b := backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(initial),
			backoff.WithMaxInterval(maxDelay),
			backoff.WithMultiplier(2),
			backoff.WithRandomizationFactor(0.2),
			backoff.WithMaxElapsedTime(0), // MaxAttempts bounds it instead
		)
		return b
	}
}

// Schedule is a backoff.BackOff that returns fixed delays in order, then
// backoff.Stop, or, with RepeatLast, its last delay again and again.
// Jitter (0 to 1; values outside are read as the nearer bound) randomizes
// each delay by up to that fraction either way; Rand, when set, supplies the
// random numbers in [0, 1) (set it, or Jitter to 0, for repeatable tests).
// A negative delay is read as 0. A Schedule is not safe for concurrent use;
// a RetryPolicy returns a new one per delivery.
type Schedule struct {
	Delays     []time.Duration
	Jitter     float64
	Rand       func() float64
	RepeatLast bool
	next       int
}

// NextBackOff returns the next delay, or backoff.Stop when none is left.
func (s *Schedule) NextBackOff() time.Duration {
	if len(s.Delays) == 0 || s.next >= len(s.Delays) && !s.RepeatLast {
		return backoff.Stop
	}
	d := s.Delays[min(s.next, len(s.Delays)-1)]
	if s.next < len(s.Delays) {
		s.next++
	}
	d = max(d, 0)
	jitter := s.Jitter
	if !(jitter > 0) { // NaN included
		return d
	}
	jitter = min(jitter, 1)
	r := rand.Float64
	if s.Rand != nil {
		r = s.Rand
	}
	u := r()
	if !(u >= 0) { // NaN included
		u = 0.5
	}
	v := float64(d) * (1 + jitter*(2*min(u, 1)-1))
	if v >= math.MaxInt64 {
		return d
	}
	return time.Duration(v)
}

// Reset starts the schedule again from its first delay.
func (s *Schedule) Reset() { s.next = 0 }

// maxRetryDelay bounds the delay of any RetryPolicy, so that a retry falls
// due within the years every Store keeps.
const maxRetryDelay = 365 * 24 * time.Hour

// delayAfter returns the policy's delay after failed attempt n (from 1),
// within 0 and maxRetryDelay, or backoff.Stop.
func delayAfter(p RetryPolicy, n int) time.Duration {
	b := p()
	d := backoff.Stop
	for range n {
		if d = b.NextBackOff(); d == backoff.Stop {
			return d
		}
	}
	return min(max(d, 0), maxRetryDelay)
}

// retryAfter parses a Retry-After header (delay-seconds or an HTTP date) as a
// duration from now. ok is false when the header is absent or unreadable.
func retryAfter(h string, now time.Time) (d time.Duration, ok bool) {
	if h == "" {
		return 0, false
	}
	if strings.Trim(h, "0123456789") == "" { // delay-seconds: digits only
		const year = int64(365 * 24 * time.Hour / time.Second)
		secs, err := strconv.ParseInt(h, 10, 64)
		if err != nil || secs > year { // too many digits for int64 is a long wait too
			secs = year
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	if d = t.Sub(now); d < 0 {
		d = 0
	}
	return d, true
}

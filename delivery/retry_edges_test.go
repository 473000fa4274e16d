package delivery_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/store"
)

// Retry-After is honoured on 429 and 503 only: on a 500 the schedule holds.
func TestRetryAfterIsIgnoredOnOtherStatuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusInternalServerError)
	}, nil)
	got := h.waitAttempts(h.deliver(h.srv.URL).ID, 1)
	assert.True(t, got.NextAttemptAt.Equal(t0.Add(5*time.Second)), "next attempt at %s, want t0+5s (the schedule)", got.NextAttemptAt)
}

// The HTTP-date form of Retry-After is honoured as the seconds form is.
func TestRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", t0.Add(120*time.Second).Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	}, nil)
	got := h.waitAttempts(h.deliver(h.srv.URL).ID, 1)
	assert.True(t, got.NextAttemptAt.Equal(t0.Add(120*time.Second)), "next attempt at %s, want t0+120s", got.NextAttemptAt)
}

// A delay-seconds value that parses but overflows a Duration is a long
// wait, bounded by MaxRetryAfter, not an unreadable header.
func TestRetryAfterOverflowingSecondsIsBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "9223372037") // × 1e9 ns overflows int64
		w.WriteHeader(http.StatusTooManyRequests)
	}, func(c *delivery.Config) { c.MaxRetryAfter = 10 * time.Minute })
	got := h.waitAttempts(h.deliver(h.srv.URL).ID, 1)
	assert.True(t, got.NextAttemptAt.Equal(t0.Add(10*time.Minute)), "next attempt at %s, want t0+10m", got.NextAttemptAt)
}

// A retry that falls in year 9999 but whose lease would end past it ends
// the delivery too: no Claim could lease it.
func TestRetryWhoseLeaseEndsPastYear9999(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
		func(c *delivery.Config) {
			c.RetryPolicy = func() backoff.BackOff { return &delivery.Schedule{Delays: []time.Duration{45 * time.Second}} }
		})
	h.clock.Set(time.Date(9999, 12, 31, 23, 58, 30, 0, time.UTC)) // the retry at 23:59:15 fits; its minute's lease does not
	got := h.waitTerminal(h.deliver(h.srv.URL + "/hooks").ID)
	assert.Equal(t, store.StatusFailed, got.Status)
	assert.Contains(t, got.FailureDetail, "not retried")
}

// Schedule's jitter spans both sides (u = 0, ½, 1 give 0.8, 1, 1.2 times
// the delay), Reset starts again from the first delay, and
// ExponentialRetryPolicy reads an initial below a millisecond as one.
func TestScheduleJitterResetAndExponentialMinimum(t *testing.T) {
	t.Parallel()
	for u, want := range map[float64]time.Duration{0: 8 * time.Second, 0.5: 10 * time.Second, 1: 12 * time.Second} {
		s := &delivery.Schedule{Delays: []time.Duration{10 * time.Second}, Jitter: 0.2, Rand: func() float64 { return u }}
		assert.Equal(t, want, s.NextBackOff(), "u=%v", u)
	}
	s := &delivery.Schedule{Delays: []time.Duration{time.Second, time.Minute}}
	s.NextBackOff()
	s.Reset()
	assert.Equal(t, time.Second, s.NextBackOff(), "Reset starts again from the first delay")
	assert.GreaterOrEqual(t, delivery.ExponentialRetryPolicy(0, 0)().NextBackOff(), 800*time.Microsecond,
		"an initial below 1 ms is read as 1 ms (±20%)")
}

// ValidateURL's boundaries: exactly MaxURLLength bytes pass, one more does
// not; ports 1 and 65535 pass, 0 and 65536 do not.
func TestValidateURLBoundaries(t *testing.T) {
	t.Parallel()
	pre := "https://example.com/"
	assert.NoError(t, delivery.ValidateURL(pre+strings.Repeat("a", delivery.MaxURLLength-len(pre)), false))
	assert.ErrorIs(t, delivery.ValidateURL(pre+strings.Repeat("a", delivery.MaxURLLength-len(pre)+1), false), delivery.ErrInvalidURL)
	assert.NoError(t, delivery.ValidateURL("https://example.com:1/", false))
	assert.NoError(t, delivery.ValidateURL("https://example.com:65535/", false))
	assert.ErrorIs(t, delivery.ValidateURL("https://example.com:0/", false), delivery.ErrInvalidURL)
	assert.ErrorIs(t, delivery.ValidateURL("https://example.com:65536/", false), delivery.ErrInvalidURL)
}

// A response body cut inside a 3-byte character is cut back to the
// character before it, whole and valid UTF-8.
func TestBodyCutInsideAThreeByteCharacter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("€", 500)))
	}, func(c *delivery.Config) { c.ResponseBodyLimit = 1001 }) // byte 1001 is the 3rd of the 334th €
	body := h.waitTerminal(h.deliver(h.srv.URL).ID).Attempts[0].ResponseBody
	assert.Equal(t, strings.Repeat("€", 333), body)
}

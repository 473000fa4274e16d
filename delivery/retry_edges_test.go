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

// The forms of Retry-After beyond TestRetryAfterIsHonoured's: on a status
// other than 429 and 503 it is ignored (the schedule holds); an HTTP date
// counts as the seconds form does; delay-seconds that parse but overflow a
// Duration are a long wait, bounded by MaxRetryAfter, not an unreadable
// header.
func TestRetryAfterForms(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		status int
		header string
		want   time.Duration // from t0
	}{
		{"ignored on 500", http.StatusInternalServerError, "120", 5 * time.Second},
		{"HTTP date", http.StatusServiceUnavailable, t0.Add(120 * time.Second).Format(http.TimeFormat), 120 * time.Second},
		{"seconds overflowing a Duration", http.StatusTooManyRequests, "9223372037", 10 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tt.header)
				w.WriteHeader(tt.status)
			}, func(c *delivery.Config) { c.MaxRetryAfter = 10 * time.Minute })
			got := h.waitAttempts(h.deliver(h.srv.URL).ID, 1)
			assert.True(t, got.NextAttemptAt.Equal(t0.Add(tt.want)), "next attempt at %s, want t0+%s", got.NextAttemptAt, tt.want)
		})
	}
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

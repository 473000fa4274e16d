package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"

	"github.com/hookline/hookline/store"
)

// timeoutError is a net.Error that timed out, as net/http's "timeout
// awaiting response headers" is.
type timeoutError struct{}

func (timeoutError) Error() string   { return "net/http: timeout awaiting response headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// classify's cases that the end-to-end tests do not reach: a DNS failure
// (no test resolves names), the bare ErrBlockedDestination a host's own
// dialer may return (Config.HTTPClient), a net.Error that timed out, and a
// custom transport's plain error after the attempt timer ended the context.
func TestClassifyFallbacks(t *testing.T) {
	t.Parallel()
	bg := context.Background()
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: "https://x.example/", Err: err} }
	timedOut, cancel := context.WithCancelCause(bg)
	cancel(errAttemptTimeout)
	for _, tt := range []struct {
		name string
		ctx  context.Context
		err  error
		want store.FailureReason
	}{
		{"DNS", bg, wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x.example", IsNotFound: true}}), store.ReasonDNSError},
		{"DNS timeout is still DNS", bg, wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}}), store.ReasonDNSError},
		{"a dialer's bare ErrBlockedDestination", bg, wrap(fmt.Errorf("my dialer: %w", ErrBlockedDestination)), store.ReasonBlockedDestination},
		{"net.Error timeout", bg, wrap(timeoutError{}), store.ReasonTimeout},
		{"context ended by the attempt timer", timedOut, wrap(errors.New("custom transport: context canceled")), store.ReasonTimeout},
		{"anything else", bg, wrap(errors.New("connection reset by peer")), store.ReasonConnectionError},
	} {
		got, _ := classify(tt.ctx, tt.err)
		assert.Equal(t, tt.want, got, tt.name)
	}
}

// delayAfter bounds any policy's delay to 0 .. maxRetryDelay.
func TestDelayAfterClamps(t *testing.T) {
	t.Parallel()
	constant := func(d time.Duration) RetryPolicy {
		return func() backoff.BackOff { return backoff.NewConstantBackOff(d) }
	}
	assert.Equal(t, maxRetryDelay, delayAfter(constant(100*maxRetryDelay), 1))
	assert.Equal(t, time.Duration(0), delayAfter(constant(-time.Hour), 1))
	assert.Equal(t, time.Minute, delayAfter(constant(time.Minute), 3))
}

package delivery

import (
	"errors"
	"strconv"

	"github.com/hookline/hookline/store"
)

// ErrInvalidURL is matched by every *URLError: the callback URL was refused
// before anything was stored.
var ErrInvalidURL = errors.New("invalid callback URL")

// ErrPayloadTooLarge: the frozen payload is larger than
// Config.MaxPayloadBytes. Nothing was stored.
var ErrPayloadTooLarge = errors.New("payload too large")

// ErrInvalidConfig is matched by every error New returns for a bad Config;
// the error text names the field.
var ErrInvalidConfig = errors.New("invalid delivery config")

// ErrNotFound is store.ErrNotFound: Redeliver or Get found no delivery
// (History returns an empty slice instead). Re-exported so callers need not
// import store.
var ErrNotFound = store.ErrNotFound

// ErrConflict is store.ErrConflict: the batch already has a delivery in
// flight, or Deliver was called again for a batch with a different URL or
// different bytes.
var ErrConflict = store.ErrConflict

// ErrInvalidArgument is store.ErrInvalidArgument: a call was refused for
// its arguments (a nil context), or the Store refused one. Re-exported so
// callers need not import store.
var ErrInvalidArgument = store.ErrInvalidArgument

// ErrStopped: Start was called on a Deliverer that has been stopped, or twice.
var ErrStopped = errors.New("deliverer stopped or already started")

// URLError reports why a callback URL was refused. It matches ErrInvalidURL.
type URLError struct {
	// URL is the refused URL with any userinfo removed (Error shows at
	// most its first 100 bytes).
	URL string
	// Reason says what is wrong, for example "scheme must be http or https".
	Reason string
}

// Error returns "invalid callback URL <url>: <reason>".
func (e *URLError) Error() string {
	return "invalid callback URL " + quote(e.URL) + ": " + e.Reason
}

// Unwrap returns ErrInvalidURL.
func (e *URLError) Unwrap() error { return ErrInvalidURL }

// quote quotes s, cut to its first 100 bytes (at a character boundary), as
// a Go string literal: control characters escaped, so that a URL or header
// from a customer cannot start a new line in a log.
func quote(s string) string {
	if len(s) > 100 {
		s = cutAt(s, 100) + "…"
	}
	return strconv.Quote(s)
}

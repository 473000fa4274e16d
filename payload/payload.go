package payload

import (
	"time"

	"github.com/google/uuid"
)

// Event names for the four terminal batch outcomes (UK spelling, as on the
// wire). Hosts may send other event names too.
const (
	EventBatchSucceeded        = "batch.succeeded"
	EventBatchFailed           = "batch.failed"
	EventBatchCancelled        = "batch.cancelled"
	EventBatchPartialSucceeded = "batch.partial_succeeded"
)

// Terminal batch statuses (US spelling of "canceled", as on the wire).
const (
	StatusSucceeded        = "succeeded"
	StatusFailed           = "failed"
	StatusCanceled         = "canceled"
	StatusPartialSucceeded = "partial_succeeded"
)

// Callback is the body of a batch callback before it is frozen. Freeze turns
// it into the canonical bytes that are signed and sent; Parse turns those bytes
// back into a Callback.
//
// Output and Metadata take either raw JSON (json.RawMessage, kept verbatim
// apart from insignificant whitespace, so key order is preserved) or any Go
// value, which is marshaled with encoding/json without HTML escaping (map keys
// sorted, struct fields in declaration order). A nil value is JSON null.
type Callback struct {
	// Event names what happened, for example EventBatchSucceeded. Required.
	Event string
	// BatchID identifies the host's batch. Required (not uuid.Nil).
	BatchID uuid.UUID
	// Status is the batch's terminal status, for example StatusSucceeded.
	// Required.
	Status string
	// Output is any JSON value: the batch's result, often an Output envelope.
	Output any
	// DurationMS is the batch's run time in milliseconds; never negative.
	DurationMS int64
	// CreatedAt is when the batch was created; the zero time is sent as null.
	CreatedAt time.Time
	// CompletedAt is when the batch ended; the zero time is sent as null.
	CompletedAt time.Time
	// Metadata is a JSON object or null, passed through as given.
	Metadata any
}

// Output is the usual batch output envelope:
// {"items":[...],"succeeded":n,"failed":n,"cancelled":n,"total":n}.
// Use it as Callback.Output. A nil Items, or a nil slice, is sent as an
// empty array.
type Output struct {
	// Items holds the per-item results; any JSON-marshalable slice.
	Items any `json:"items"`
	// Succeeded counts the items that succeeded.
	Succeeded int `json:"succeeded"`
	// Failed counts the items that failed.
	Failed int `json:"failed"`
	// Cancelled counts the items that were cancelled.
	Cancelled int `json:"cancelled"`
	// Total counts all items.
	Total int `json:"total"`
}

// MarshalJSON encodes the envelope with its fields in the order above and a
// nil Items (or nil slice) as [].
func (o Output) MarshalJSON() ([]byte, error) {
	// As Freeze writes it, so that an Output holding itself (in Items, or
	// through a map) is refused rather than recursed into without end.
	return appendOutput(nil, &o, 0)
}

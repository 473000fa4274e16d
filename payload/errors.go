package payload

import "errors"

// ErrInvalid is matched (with errors.Is) by every validation error that
// Freeze and Parse return, so a caller can tell bad input from other failures
// without knowing which rule was broken.
var ErrInvalid = errors.New("invalid payload")

// Sentinel errors for each validation rule. Every error that Freeze or Parse
// returns for bad input is a *FieldError that matches ErrInvalid and exactly
// one of these with errors.Is.
var (
	// ErrEmptyEvent: Callback.Event is empty.
	ErrEmptyEvent = errors.New("event is empty")
	// ErrEmptyStatus: Callback.Status is empty.
	ErrEmptyStatus = errors.New("status is empty")
	// ErrNilBatchID: Callback.BatchID is the nil UUID.
	ErrNilBatchID = errors.New("batch id is the nil uuid")
	// ErrInvalidJSON: Output or Metadata holds bytes that are not one valid
	// JSON value, or a Go value that encoding/json cannot marshal.
	ErrInvalidJSON = errors.New("not valid JSON")
	// ErrMetadataNotObject: Metadata is valid JSON but neither an object nor null.
	ErrMetadataNotObject = errors.New("metadata must be a JSON object or null")
	// ErrNonFinite: a float in Output or Metadata is NaN or ±Inf, which JSON
	// cannot represent.
	ErrNonFinite = errors.New("NaN or infinite number")
	// ErrInvalidUTF8: a string or raw JSON value is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("not valid UTF-8")
	// ErrNegativeDuration: Callback.DurationMS is below zero.
	ErrNegativeDuration = errors.New("duration is negative")
	// ErrTimeOutOfRange: a timestamp's UTC year is outside 1..9999, the range
	// Python's datetime (and so the wire format) can represent.
	ErrTimeOutOfRange = errors.New("time outside years 1..9999")
)

// FieldError reports which field of a Callback broke which rule. It matches
// ErrInvalid and its Err with errors.Is.
type FieldError struct {
	// Field is the JSON name of the offending field, for example "metadata".
	Field string
	// Err is one of the sentinel errors of this package, possibly wrapping a
	// lower-level cause such as a *json.SyntaxError.
	Err error
}

// Error returns "payload: <field>: <reason>".
func (e *FieldError) Error() string {
	if e.Err == nil {
		return "payload: " + e.Field + ": invalid"
	}
	return "payload: " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns ErrInvalid and the rule's sentinel, for errors.Is.
func (e *FieldError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

func fieldErr(field string, err error) error { return &FieldError{Field: field, Err: err} }

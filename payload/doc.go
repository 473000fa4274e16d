// Package payload defines the batch callback body and freezes it into the
// canonical bytes that hookline signs, stores and sends.
//
// A callback is frozen exactly once, when the host calls Deliver. Every attempt
// and every later redelivery sends those same bytes, so a receiver that stores
// a body and its signature can always check one against the other.
//
// The canonical form is compact JSON in UTF-8 with a fixed key order:
//
//	{"event":"batch.succeeded","batch_id":"…","status":"succeeded","output":{…},
//	 "duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00",
//	 "completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":{…}}
//
// '<', '>' and '&' are not escaped. Timestamps are written the way Python's
// datetime.isoformat() writes an aware UTC datetime, so a Python receiver can
// round-trip them with datetime.fromisoformat; a zero time is null. Raw JSON
// given as json.RawMessage is kept verbatim apart from insignificant
// whitespace, so the key order a host chose survives.
//
// Usage:
//
//	body, err := payload.Freeze(payload.Callback{
//		Event:       payload.EventBatchSucceeded,
//		BatchID:     batchID,
//		Status:      payload.StatusSucceeded,
//		Output:      payload.Output{Items: items, Succeeded: 3, Total: 3},
//		DurationMS:  finished.Sub(started).Milliseconds(),
//		CreatedAt:   started,
//		CompletedAt: finished,
//		Metadata:    json.RawMessage(`{"customer":"acme"}`),
//	})
//
// Bad input never panics: Freeze and Parse return a *FieldError that matches
// ErrInvalid and one rule's sentinel (ErrEmptyEvent, ErrInvalidJSON, …) with
// errors.Is.
package payload

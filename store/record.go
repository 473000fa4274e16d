package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/payload"
)

// Status is a delivery's state: pending until it ends as succeeded or failed.
type Status string

// Delivery statuses, as they appear in the record's status_code field.
const (
	StatusPending   Status = "pending"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
)

// Terminal reports whether s is a final state (succeeded or failed).
func (s Status) Terminal() bool { return s == StatusSucceeded || s == StatusFailed }

// FailureReason says why an attempt or a delivery failed.
type FailureReason string

// Failure reasons, as they appear in failure_reason_code. BlockedDestination
// and InvalidURL are permanent, like an HTTP 410; every other failure is
// retried until the delivery runs out of attempts.
const (
	ReasonHTTPError          FailureReason = "http_error"          // a non-2xx, non-3xx response, status 100 to 999
	ReasonTimeout            FailureReason = "timeout"             // no complete response within the attempt timeout
	ReasonConnectionError    FailureReason = "connection_error"    // refused, reset or closed connection, or a malformed response (such as a status outside 100 to 999)
	ReasonDNSError           FailureReason = "dns_error"           // the host name did not resolve
	ReasonTLSError           FailureReason = "tls_error"           // handshake or certificate failure
	ReasonRedirect           FailureReason = "redirect"            // a 3xx response; redirects are never followed
	ReasonBlockedDestination FailureReason = "blocked_destination" // the resolved address is not allowed
	ReasonInvalidURL         FailureReason = "invalid_url"         // the callback URL cannot be requested
)

// Delivery is one attempt series of a batch's callback: the frozen bytes, the
// destination, the state and the attempts made so far. Its JSON is the
// delivery record of the wire contract; hosts return it from their own routes
// as is.
//
// A Delivery returned by a Store is the caller's own copy.
type Delivery struct {
	ID              uuid.UUID     // UUIDv7, so ids sort by creation
	BatchID         uuid.UUID     // the host's batch
	CallbackURL     string        // where the callback is POSTed
	Payload         []byte        // the frozen bytes, the body of every attempt
	SigningSecretID uuid.NullUUID // the primary secret that signed the last attempt, if any
	IsAutomatic     bool          // false for a manual redelivery
	Status          Status        // pending, succeeded or failed
	FailureReason   FailureReason // empty unless the last attempt failed
	FailureDetail   string        // human-readable detail of FailureReason; never a secret
	AttemptCount    int           // attempts made
	MaxAttempts     int           // attempts allowed before the delivery fails
	NextAttemptAt   time.Time     // when a worker may next claim it; zero once terminal
	CreatedAt       time.Time     // when it was stored
	UpdatedAt       time.Time     // when it last changed
	CompletedAt     time.Time     // zero until terminal
	Attempts        []Attempt     // oldest first; filled by Get, Latest and History, nil from Claim

	// LeaseToken and LeaseExpiresAt are set while a worker holds the
	// delivery (see Store.Claim); they are not part of the JSON record.
	LeaseToken     uuid.UUID
	LeaseExpiresAt time.Time
}

// Attempt is one HTTP request of a delivery and what came of it.
type Attempt struct {
	ID             uuid.UUID     // the attempt's own id (UUIDv7)
	DeliveryID     uuid.UUID     // the delivery it belongs to
	AttemptNumber  int           // from 1
	StatusCode     int           // HTTP status; 0 when no well-formed response arrived (null in JSON)
	ResponseBody   string        // the response body's prefix, truncated to the configured cap
	ResponseTimeMS int64         // from sending the request to the end of reading the response
	ErrorMessage   string        // empty on success (null in JSON)
	FailureReason  FailureReason // empty on success; not part of the JSON record
	CreatedAt      time.Time     // when the attempt started
}

// Clone returns a deep copy of d, sharing no memory with it.
func (d *Delivery) Clone() *Delivery {
	c := *d
	c.Payload = bytes.Clone(d.Payload) // empty stays empty, not nil
	if d.Attempts != nil {
		c.Attempts = append([]Attempt(nil), d.Attempts...)
	}
	return &c
}

// timeJSON writes a time the way the payload does (Python isoformat, UTC,
// microseconds), so records read the same whichever Store produced them.
type timeJSON time.Time

func (t timeJSON) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 34), '"')
	b = payload.AppendTime(b, time.Time(t))
	return append(b, '"'), nil
}

func (t *timeJSON) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = timeJSON(v.UTC())
	return nil
}

func optTime(t time.Time) *timeJSON {
	if t.IsZero() {
		return nil
	}
	v := timeJSON(t)
	return &v
}

func optString[S ~string](s S) *S {
	if s == "" {
		return nil
	}
	return &s
}

type deliveryJSON struct {
	ID              uuid.UUID       `json:"id"`
	BatchID         uuid.UUID       `json:"batch_id"`
	CallbackURL     string          `json:"callback_url"`
	PayloadBytes    string          `json:"payload_bytes"`
	Payload         json.RawMessage `json:"payload"`
	SigningSecretID *uuid.UUID      `json:"signing_secret_id"`
	IsAutomatic     bool            `json:"is_automatic"`
	StatusCode      Status          `json:"status_code"`
	FailureReason   *FailureReason  `json:"failure_reason_code"`
	FailureDetail   *string         `json:"failure_detail"`
	AttemptCount    int             `json:"attempt_count"`
	MaxAttempts     int             `json:"max_attempts"`
	NextAttemptAt   *timeJSON       `json:"next_attempt_at"`
	CreatedAt       timeJSON        `json:"created_at"`
	UpdatedAt       timeJSON        `json:"updated_at"`
	CompletedAt     *timeJSON       `json:"completed_at"`
	Attempts        []Attempt       `json:"attempts"`
}

type attemptJSON struct {
	ID             uuid.UUID `json:"id"`
	DeliveryID     uuid.UUID `json:"delivery_id"`
	AttemptNumber  int       `json:"attempt_number"`
	StatusCode     *int      `json:"status_code"`
	ResponseBody   *string   `json:"response_body"`
	ResponseTimeMS int64     `json:"response_time_ms"`
	ErrorMessage   *string   `json:"error_message"`
	CreatedAt      timeJSON  `json:"created_at"`
}

// MarshalJSON writes the delivery record of the wire contract: every field,
// null for an absent secret id, failure, next attempt or completion time, the
// payload both as the exact frozen string and parsed, attempts oldest first
// (an empty array, never null).
func (d Delivery) MarshalJSON() ([]byte, error) {
	w := deliveryJSON{
		ID:            d.ID,
		BatchID:       d.BatchID,
		CallbackURL:   d.CallbackURL,
		PayloadBytes:  string(d.Payload),
		Payload:       d.Payload,
		IsAutomatic:   d.IsAutomatic,
		StatusCode:    d.Status,
		FailureReason: optString(d.FailureReason),
		FailureDetail: optString(d.FailureDetail),
		AttemptCount:  d.AttemptCount,
		MaxAttempts:   d.MaxAttempts,
		NextAttemptAt: optTime(d.NextAttemptAt),
		CreatedAt:     timeJSON(d.CreatedAt),
		UpdatedAt:     timeJSON(d.UpdatedAt),
		CompletedAt:   optTime(d.CompletedAt),
		Attempts:      d.Attempts,
	}
	if d.SigningSecretID.Valid {
		w.SigningSecretID = &d.SigningSecretID.UUID
	}
	if !json.Valid(d.Payload) {
		return nil, fmt.Errorf("marshal delivery %s: payload bytes are not JSON", d.ID)
	}
	if w.Attempts == nil {
		w.Attempts = []Attempt{}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a record written by MarshalJSON. The payload is taken
// from payload_bytes, the exact frozen string.
func (d *Delivery) UnmarshalJSON(b []byte) error {
	var w deliveryJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*d = Delivery{
		ID:           w.ID,
		BatchID:      w.BatchID,
		CallbackURL:  w.CallbackURL,
		Payload:      []byte(w.PayloadBytes),
		IsAutomatic:  w.IsAutomatic,
		Status:       w.StatusCode,
		AttemptCount: w.AttemptCount,
		MaxAttempts:  w.MaxAttempts,
		CreatedAt:    time.Time(w.CreatedAt),
		UpdatedAt:    time.Time(w.UpdatedAt),
		Attempts:     w.Attempts,
	}
	if w.SigningSecretID != nil {
		d.SigningSecretID = uuid.NullUUID{UUID: *w.SigningSecretID, Valid: true}
	}
	if w.FailureReason != nil {
		d.FailureReason = *w.FailureReason
	}
	if w.FailureDetail != nil {
		d.FailureDetail = *w.FailureDetail
	}
	if w.NextAttemptAt != nil {
		d.NextAttemptAt = time.Time(*w.NextAttemptAt)
	}
	if w.CompletedAt != nil {
		d.CompletedAt = time.Time(*w.CompletedAt)
	}
	return nil
}

// MarshalJSON writes the attempt record of the wire contract, with null for a
// missing HTTP status or error message.
func (a Attempt) MarshalJSON() ([]byte, error) {
	w := attemptJSON{
		ID:             a.ID,
		DeliveryID:     a.DeliveryID,
		AttemptNumber:  a.AttemptNumber,
		ResponseBody:   &a.ResponseBody,
		ResponseTimeMS: a.ResponseTimeMS,
		ErrorMessage:   optString(a.ErrorMessage),
		CreatedAt:      timeJSON(a.CreatedAt),
	}
	if a.StatusCode != 0 {
		w.StatusCode = &a.StatusCode
	}
	if a.StatusCode == 0 && a.ResponseBody == "" {
		w.ResponseBody = nil
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads an attempt written by MarshalJSON.
func (a *Attempt) UnmarshalJSON(b []byte) error {
	var w attemptJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = Attempt{
		ID:             w.ID,
		DeliveryID:     w.DeliveryID,
		AttemptNumber:  w.AttemptNumber,
		ResponseTimeMS: w.ResponseTimeMS,
		CreatedAt:      time.Time(w.CreatedAt),
	}
	if w.StatusCode != nil {
		a.StatusCode = *w.StatusCode
	}
	if w.ResponseBody != nil {
		a.ResponseBody = *w.ResponseBody
	}
	if w.ErrorMessage != nil {
		a.ErrorMessage = *w.ErrorMessage
	}
	return nil
}

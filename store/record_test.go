package store_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
)

// The expected JSON is written by hand from DESIGN.md's delivery record table.
func TestDeliveryJSONGolden(t *testing.T) {
	created := time.Date(2026, 5, 6, 10, 1, 42, 250_000_000, time.UTC)
	body := []byte(`{"event":"batch.failed","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"failed","output":null,"duration_ms":5,"created_at":null,"completed_at":null,"metadata":{"n":"<é>"}}`)
	pending := store.Delivery{
		ID:            uuid.MustParse("0190a5b4-0000-7000-8000-000000000001"),
		BatchID:       uuid.MustParse("0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f"),
		CallbackURL:   "https://example.com/hook?a=1&b=2",
		Payload:       body,
		IsAutomatic:   true,
		Status:        store.StatusPending,
		MaxAttempts:   8,
		NextAttemptAt: created,
		CreatedAt:     created,
		UpdatedAt:     created,
		LeaseToken:    uuid.MustParse("0190a5b4-0000-7000-8000-0000000000ff"),
	}
	t.Run("pending, no attempts", func(t *testing.T) {
		got, err := json.Marshal(pending)
		require.NoError(t, err)
		want := `{"id":"0190a5b4-0000-7000-8000-000000000001","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","callback_url":"https://example.com/hook?a=1\u0026b=2",` +
			`"payload_bytes":"{\"event\":\"batch.failed\",\"batch_id\":\"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f\",\"status\":\"failed\",\"output\":null,\"duration_ms\":5,\"created_at\":null,\"completed_at\":null,\"metadata\":{\"n\":\"\u003cé\u003e\"}}",` +
			`"payload":{"event":"batch.failed","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"failed","output":null,"duration_ms":5,"created_at":null,"completed_at":null,"metadata":{"n":"\u003cé\u003e"}},` +
			`"signing_secret_id":null,"is_automatic":true,"status_code":"pending","failure_reason_code":null,"failure_detail":null,"attempt_count":0,"max_attempts":8,` +
			`"next_attempt_at":"2026-05-06T10:01:42.250000+00:00","created_at":"2026-05-06T10:01:42.250000+00:00","updated_at":"2026-05-06T10:01:42.250000+00:00","completed_at":null,"attempts":[]}`
		assert.Equal(t, want, string(got))
	})

	t.Run("failed after two attempts", func(t *testing.T) {
		d := pending
		d.Status = store.StatusFailed
		d.SigningSecretID = uuid.NullUUID{UUID: uuid.MustParse("0190a5b4-0000-7000-8000-0000000000aa"), Valid: true}
		d.FailureReason = store.ReasonHTTPError
		d.FailureDetail = "HTTP 410 Gone"
		d.AttemptCount = 2
		d.NextAttemptAt = time.Time{}
		d.UpdatedAt = created.Add(5 * time.Second)
		d.CompletedAt = created.Add(5 * time.Second)
		d.Attempts = []store.Attempt{
			{ID: uuid.MustParse("0190a5b4-0000-7000-8000-00000000000a"), DeliveryID: d.ID, AttemptNumber: 1,
				ResponseTimeMS: 10000, ErrorMessage: "timeout after 10s", FailureReason: store.ReasonTimeout, CreatedAt: created},
			{ID: uuid.MustParse("0190a5b4-0000-7000-8000-00000000000b"), DeliveryID: d.ID, AttemptNumber: 2, StatusCode: 410,
				ResponseBody: "gone", ResponseTimeMS: 3, ErrorMessage: "HTTP 410 Gone", FailureReason: store.ReasonHTTPError, CreatedAt: created.Add(5 * time.Second)},
		}
		got, err := json.Marshal(d)
		require.NoError(t, err)
		want := `{"id":"0190a5b4-0000-7000-8000-000000000001","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","callback_url":"https://example.com/hook?a=1\u0026b=2",` +
			`"payload_bytes":"{\"event\":\"batch.failed\",\"batch_id\":\"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f\",\"status\":\"failed\",\"output\":null,\"duration_ms\":5,\"created_at\":null,\"completed_at\":null,\"metadata\":{\"n\":\"\u003cé\u003e\"}}",` +
			`"payload":{"event":"batch.failed","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"failed","output":null,"duration_ms":5,"created_at":null,"completed_at":null,"metadata":{"n":"\u003cé\u003e"}},` +
			`"signing_secret_id":"0190a5b4-0000-7000-8000-0000000000aa","is_automatic":true,"status_code":"failed","failure_reason_code":"http_error","failure_detail":"HTTP 410 Gone","attempt_count":2,"max_attempts":8,` +
			`"next_attempt_at":null,"created_at":"2026-05-06T10:01:42.250000+00:00","updated_at":"2026-05-06T10:01:47.250000+00:00","completed_at":"2026-05-06T10:01:47.250000+00:00","attempts":[` +
			`{"id":"0190a5b4-0000-7000-8000-00000000000a","delivery_id":"0190a5b4-0000-7000-8000-000000000001","attempt_number":1,"status_code":null,"response_body":null,"response_time_ms":10000,"error_message":"timeout after 10s","created_at":"2026-05-06T10:01:42.250000+00:00"},` +
			`{"id":"0190a5b4-0000-7000-8000-00000000000b","delivery_id":"0190a5b4-0000-7000-8000-000000000001","attempt_number":2,"status_code":410,"response_body":"gone","response_time_ms":3,"error_message":"HTTP 410 Gone","created_at":"2026-05-06T10:01:47.250000+00:00"}]}`
		assert.Equal(t, want, string(got))

		// The record reads back into the same delivery (lease fields and the
		// attempts' failure reasons are not part of the JSON).
		var back store.Delivery
		require.NoError(t, json.Unmarshal(got, &back))
		want2 := d
		want2.LeaseToken = uuid.Nil
		want2.Attempts = []store.Attempt{d.Attempts[0], d.Attempts[1]}
		want2.Attempts[0].FailureReason, want2.Attempts[1].FailureReason = "", ""
		assert.Equal(t, want2, back)
	})
}

func TestStorableText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain ascii", "plain ascii"},
		{"héllo, 世界", "héllo, 世界"},
		{"a\x00b", "a\uFFFDb"},
		{"a\xffb", "a\uFFFDb"},
		{"\xff\xfe\x00", "\uFFFD\uFFFD"}, // a run of invalid bytes is one replacement
		{"cut \xe4\xb8", "cut \uFFFD"},   // a character cut in two
	} {
		got := store.StorableText(tc.in)
		assert.Equal(t, tc.want, got, "StorableText(%q)", tc.in)
		assert.True(t, utf8.ValidString(got) && !strings.Contains(got, "\x00"), "StorableText(%q) = %q must be UTF-8 without NUL", tc.in, got)
	}
}

package payload_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/payload"
)

func ExampleFreeze() {
	body, err := payload.Freeze(payload.Callback{
		Event:       payload.EventBatchSucceeded,
		BatchID:     uuid.MustParse("0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f"),
		Status:      payload.StatusSucceeded,
		Output:      payload.Output{Items: []string{"a.csv", "b.csv"}, Succeeded: 2, Total: 2},
		DurationMS:  102345,
		CreatedAt:   time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC),
		CompletedAt: time.Date(2026, 5, 6, 10, 1, 42, 250_000_000, time.UTC),
		Metadata:    json.RawMessage(`{"customer": "acme", "note": "<a&b>"}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(body))
	// Output:
	// {"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"items":["a.csv","b.csv"],"succeeded":2,"failed":0,"cancelled":0,"total":2},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":{"customer":"acme","note":"<a&b>"}}
}

func ExampleFreeze_invalid() {
	_, err := payload.Freeze(payload.Callback{Event: payload.EventBatchFailed, Status: payload.StatusFailed})
	fmt.Println(err)
	// Output:
	// payload: batch_id: batch id is the nil uuid
}

package payload_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/payload"
)

// FuzzFreezeParse checks that Freeze never panics, that whatever it accepts
// parses back, and that the parsed Callback freezes to the same bytes.
func FuzzFreezeParse(f *testing.F) {
	f.Add("batch.succeeded", "succeeded", []byte(`{"items":[],"total":0}`), []byte(`{"b":1,"a":"<é>"}`), int64(5), int64(1746525600), int64(250_000_000))
	f.Add("batch.failed", "failed", []byte(`null`), []byte(`null`), int64(0), int64(0), int64(0))
	f.Add("e\u2028\x00", "s\"", []byte(" [1, 2.5e10, \"\\u00e9\"] "), []byte("{ }"), int64(1), int64(-62135596800), int64(999))
	f.Add("x", "y", []byte(`{"a":`), []byte(`[1]`), int64(-1), int64(253402300800), int64(1))
	f.Add("\xff", "y", []byte("\"\xff\""), []byte(`{}`), int64(3), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, event, status string, output, metadata []byte, dur, sec, nsec int64) {
		c := payload.Callback{
			Event:       event,
			BatchID:     uuid.MustParse("0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f"),
			Status:      status,
			Output:      json.RawMessage(output),
			DurationMS:  dur,
			CreatedAt:   time.Unix(sec, nsec),
			CompletedAt: time.Unix(sec/2, nsec/3),
			Metadata:    json.RawMessage(metadata),
		}
		b, err := payload.Freeze(c)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Freeze produced invalid JSON: %q", b)
		}
		back, err := payload.Parse(b)
		if err != nil {
			t.Fatalf("Parse(Freeze(c)) failed: %v\n%s", err, b)
		}
		again, err := payload.Freeze(back)
		if err != nil {
			t.Fatalf("Freeze(Parse(b)) failed: %v\n%s", err, b)
		}
		if string(again) != string(b) {
			t.Fatalf("round trip changed the bytes:\n%s\n%s", b, again)
		}
	})
}

// FuzzParse checks that Parse never panics and that what it accepts freezes
// without error.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":null,"duration_ms":1,"created_at":"2026-05-06T10:00:00+00:00","completed_at":null,"metadata":{}}`))
	f.Add([]byte(`{"event":"e","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"s","created_at":"0001-01-01T00:00:00-01:00"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"event":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := payload.Parse(b)
		if err != nil {
			return
		}
		if _, err := payload.Freeze(c); err != nil {
			// Parse accepts any RFC 3339 time; Freeze refuses years outside
			// Python's range. Anything else is a bug.
			if _, ok := err.(*payload.FieldError); !ok {
				t.Fatalf("Freeze(Parse(b)) returned an untyped error: %v", err)
			}
		}
	})
}

package payload_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/payload"
)

// benchCallback is a ~1 KiB callback: an output envelope with a few items and
// raw metadata, the shape a batch job sends.
func benchCallback() payload.Callback {
	items := make([]json.RawMessage, 8)
	for i := range items {
		items[i] = json.RawMessage(`{"id":"item-` + strings.Repeat("x", 8) + `","status":"succeeded","result":{"rows":1234,"bytes":56789}}`)
	}
	return payload.Callback{
		Event:       payload.EventBatchSucceeded,
		BatchID:     batchID,
		Status:      payload.StatusSucceeded,
		Output:      json.RawMessage(mustMarshal(payload.Output{Items: items, Succeeded: 8, Total: 8})),
		DurationMS:  102345,
		CreatedAt:   time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC),
		CompletedAt: time.Date(2026, 5, 6, 10, 1, 42, 250_000_000, time.UTC),
		Metadata:    json.RawMessage(`{"customer":"acme","region":"eu-west-1","tags":["nightly","export"]}`),
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkFreeze1KiB(b *testing.B) { benchFreeze(b, benchCallback()) }

// benchFreeze measures Freeze of c.
func benchFreeze(b *testing.B, c payload.Callback) {
	out, err := payload.Freeze(c)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := payload.Freeze(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFreezeOutputItems1KiB freezes the same content given the Go way:
// an Output envelope whose items are raw JSON.
func BenchmarkFreezeOutputItems1KiB(b *testing.B) {
	c := benchCallback()
	var o struct {
		Items     []json.RawMessage `json:"items"`
		Succeeded int               `json:"succeeded"`
		Total     int               `json:"total"`
	}
	if err := json.Unmarshal(c.Output.(json.RawMessage), &o); err != nil {
		b.Fatal(err)
	}
	c.Output = payload.Output{Items: o.Items, Succeeded: o.Succeeded, Total: o.Total}
	benchFreeze(b, c)
}

// BenchmarkJSONMarshal1KiB marshals the same content with encoding/json, for
// comparison. It validates and compacts the raw fields too, but its bytes are
// not the wire format: RFC 3339 timestamps rather than Python's isoformat,
// and HTML characters escaped.
func BenchmarkJSONMarshal1KiB(b *testing.B) {
	c := benchCallback()
	type wire struct {
		Event       string          `json:"event"`
		BatchID     string          `json:"batch_id"`
		Status      string          `json:"status"`
		Output      json.RawMessage `json:"output"`
		DurationMS  int64           `json:"duration_ms"`
		CreatedAt   time.Time       `json:"created_at"`
		CompletedAt time.Time       `json:"completed_at"`
		Metadata    json.RawMessage `json:"metadata"`
	}
	w := wire{c.Event, c.BatchID.String(), c.Status, c.Output.(json.RawMessage), c.DurationMS, c.CreatedAt, c.CompletedAt, c.Metadata.(json.RawMessage)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(w); err != nil {
			b.Fatal(err)
		}
	}
}

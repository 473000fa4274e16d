package payload_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/payload"
)

var batchID = uuid.MustParse("0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f")

func base() payload.Callback {
	return payload.Callback{
		Event:       payload.EventBatchSucceeded,
		BatchID:     batchID,
		Status:      payload.StatusSucceeded,
		Output:      json.RawMessage(`{"total":1}`),
		DurationMS:  102345,
		CreatedAt:   time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC),
		CompletedAt: time.Date(2026, 5, 6, 10, 1, 42, 250_000_000, time.UTC),
		Metadata:    nil,
	}
}

// The expected strings below are written by hand from DESIGN.md's wire
// contract, not produced by the code under test.
func TestFreezeGolden(t *testing.T) {
	plus2 := time.FixedZone("UTC+2", 2*3600)
	tests := []struct {
		name string
		edit func(*payload.Callback)
		want string
	}{
		{
			name: "zero microseconds and 250 ms",
			edit: func(*payload.Callback) {},
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":null}`,
		},
		{
			name: "nanoseconds are truncated, not rounded",
			edit: func(c *payload.Callback) {
				c.CreatedAt = time.Date(2026, 5, 6, 10, 0, 0, 123_456_789, time.UTC)
				c.CompletedAt = time.Date(2026, 5, 6, 10, 0, 59, 999_999_999, time.UTC)
			},
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00.123456+00:00","completed_at":"2026-05-06T10:00:59.999999+00:00","metadata":null}`,
		},
		{
			name: "sub-microsecond remainder alone gives no fraction",
			edit: func(c *payload.Callback) {
				c.CreatedAt = time.Date(2026, 5, 6, 10, 0, 0, 999, time.UTC)
				c.CompletedAt = time.Date(2026, 5, 6, 10, 0, 0, 1_000, time.UTC)
			},
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:00:00.000001+00:00","metadata":null}`,
		},
		{
			name: "non-UTC input is converted to UTC",
			edit: func(c *payload.Callback) {
				c.CreatedAt = time.Date(2026, 5, 6, 12, 0, 0, 0, plus2)
				c.CompletedAt = time.Date(2026, 1, 1, 1, 30, 0, 500_000_000, plus2)
			},
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2025-12-31T23:30:00.500000+00:00","metadata":null}`,
		},
		{
			name: "zero times are null",
			edit: func(c *payload.Callback) { c.CreatedAt, c.CompletedAt = time.Time{}, time.Time{} },
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":null,"completed_at":null,"metadata":null}`,
		},
		{
			name: "HTML characters and non-ASCII kept verbatim in raw metadata",
			edit: func(c *payload.Callback) { c.Metadata = json.RawMessage(`{"note": "<a&b>", "name": "é"}`) },
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":{"note":"<a&b>","name":"é"}}`,
		},
		{
			name: "HTML characters and non-ASCII kept verbatim in Go metadata",
			edit: func(c *payload.Callback) { c.Metadata = map[string]any{"note": "<a&b>", "name": "é"} },
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":{"name":"é","note":"<a&b>"}}`,
		},
		{
			name: "output null",
			edit: func(c *payload.Callback) { c.Output = nil },
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":null,"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":null}`,
		},
		{
			name: "raw metadata keeps its unsorted key order, whitespace removed",
			edit: func(c *payload.Callback) {
				c.Metadata = json.RawMessage("{\n  \"zeta\": 1,\n  \"alpha\": [1, 2, {\"b\": null, \"a\": true}]\n}")
			},
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":{"zeta":1,"alpha":[1,2,{"b":null,"a":true}]}}`,
		},
		{
			name: "output envelope in field order, nil items as []",
			edit: func(c *payload.Callback) {
				c.Event, c.Status = payload.EventBatchPartialSucceeded, payload.StatusPartialSucceeded
				c.Output = payload.Output{Succeeded: 2, Failed: 1, Total: 3}
			},
			want: `{"event":"batch.partial_succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"partial_succeeded","output":{"items":[],"succeeded":2,"failed":1,"cancelled":0,"total":3},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":null}`,
		},
		{
			name: "output envelope items keep HTML characters",
			edit: func(c *payload.Callback) {
				c.Output = payload.Output{Items: []string{"<x>"}, Succeeded: 1, Total: 1}
			},
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"items":["<x>"],"succeeded":1,"failed":0,"cancelled":0,"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":null}`,
		},
		{
			name: "strings escape quotes, backslashes and control characters only",
			edit: func(c *payload.Callback) { c.Event = "a\"b\\c\nd\x01é<>&\u2028" },
			want: `{"event":"a\"b\\c\nd\u0001é<>&\u2028","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":null}`,
		},
		{
			name: "years before 1000 are zero-padded like Python",
			edit: func(c *payload.Callback) { c.CreatedAt = time.Date(33, 3, 4, 5, 6, 7, 80_000, time.UTC) },
			want: `{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded","output":{"total":1},"duration_ms":102345,"created_at":"0033-03-04T05:06:07.000080+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":null}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			got, err := payload.Freeze(c)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))

			// The frozen bytes parse back to a Callback that freezes to the
			// same bytes.
			back, err := payload.Parse(got)
			require.NoError(t, err)
			again, err := payload.Freeze(back)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(again), "Freeze(Parse(b)) must equal b")
		})
	}
}

func TestFreezeRejectsBadInput(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*payload.Callback)
		field string
		rule  error
	}{
		{"empty event", func(c *payload.Callback) { c.Event = "" }, "event", payload.ErrEmptyEvent},
		{"empty status", func(c *payload.Callback) { c.Status = "" }, "status", payload.ErrEmptyStatus},
		{"nil batch id", func(c *payload.Callback) { c.BatchID = uuid.Nil }, "batch_id", payload.ErrNilBatchID},
		{"output not JSON", func(c *payload.Callback) { c.Output = json.RawMessage(`{"a":`) }, "output", payload.ErrInvalidJSON},
		{"output two values", func(c *payload.Callback) { c.Output = json.RawMessage(`1 2`) }, "output", payload.ErrInvalidJSON},
		{"output empty raw", func(c *payload.Callback) { c.Output = json.RawMessage{} }, "output", payload.ErrInvalidJSON},
		{"metadata not JSON", func(c *payload.Callback) { c.Metadata = json.RawMessage(`{a:1}`) }, "metadata", payload.ErrInvalidJSON},
		{"metadata an array", func(c *payload.Callback) { c.Metadata = json.RawMessage(`[1]`) }, "metadata", payload.ErrMetadataNotObject},
		{"metadata a string", func(c *payload.Callback) { c.Metadata = "x" }, "metadata", payload.ErrMetadataNotObject},
		{"metadata a number", func(c *payload.Callback) { c.Metadata = json.RawMessage(` 12 `) }, "metadata", payload.ErrMetadataNotObject},
		{"output NaN", func(c *payload.Callback) { c.Output = math.NaN() }, "output", payload.ErrNonFinite},
		{"metadata +Inf", func(c *payload.Callback) { c.Metadata = map[string]any{"x": math.Inf(1)} }, "metadata", payload.ErrNonFinite},
		{"output -Inf float32", func(c *payload.Callback) { c.Output = []float32{float32(math.Inf(-1))} }, "output", payload.ErrNonFinite},
		{"output unmarshalable", func(c *payload.Callback) { c.Output = make(chan int) }, "output", payload.ErrInvalidJSON},
		{"event invalid UTF-8", func(c *payload.Callback) { c.Event = "batch.\xff" }, "event", payload.ErrInvalidUTF8},
		{"status invalid UTF-8", func(c *payload.Callback) { c.Status = "\xc3" }, "status", payload.ErrInvalidUTF8},
		{"raw output invalid UTF-8", func(c *payload.Callback) { c.Output = json.RawMessage("\"\xff\"") }, "output", payload.ErrInvalidUTF8},
		{"Go metadata invalid UTF-8", func(c *payload.Callback) { c.Metadata = map[string]any{"k": []any{"\xff"}} }, "metadata", payload.ErrInvalidUTF8},
		{"raw JSON in a Go map invalid UTF-8", func(c *payload.Callback) {
			c.Output = map[string]json.RawMessage{"a": json.RawMessage("\"\xff\"")}
		}, "output", payload.ErrInvalidUTF8},
		{"raw JSON in a struct invalid UTF-8", func(c *payload.Callback) {
			c.Metadata = struct{ X json.RawMessage }{json.RawMessage("\"\xff\"")}
		}, "metadata", payload.ErrInvalidUTF8},
		{"MarshalJSON writes invalid UTF-8", func(c *payload.Callback) { c.Output = badMarshaler{} }, "output", payload.ErrInvalidUTF8},
		// encoding/json would turn both keys into "\ufffd", one key twice.
		{"map keys invalid UTF-8", func(c *payload.Callback) { c.Output = map[string]int{"\xff": 1, "\xfe": 2} }, "output", payload.ErrInvalidUTF8},
		{"struct field invalid UTF-8", func(c *payload.Callback) {
			c.Metadata = struct{ Name string }{"\xff"}
		}, "metadata", payload.ErrInvalidUTF8},
		{"embedded struct field invalid UTF-8", func(c *payload.Callback) {
			c.Metadata = struct{ embedded }{embedded{Name: "\xff"}}
		}, "metadata", payload.ErrInvalidUTF8},
		{"map that contains itself", func(c *payload.Callback) {
			m := map[string]any{}
			m["self"] = m
			c.Output = m
		}, "output", payload.ErrInvalidJSON},
		{"slice that contains itself", func(c *payload.Callback) {
			s := []any{nil}
			s[0] = s
			c.Output = s
		}, "output", payload.ErrInvalidJSON},
		{"pointer cycle", func(c *payload.Callback) {
			n := &node{}
			n.Next = n
			c.Metadata = n
		}, "metadata", payload.ErrInvalidJSON},
		{"Output that holds itself", func(c *payload.Callback) {
			o := &payload.Output{}
			o.Items = o
			c.Output = o
		}, "output", payload.ErrInvalidJSON},
		{"Output that holds itself through a map", func(c *payload.Callback) {
			o := &payload.Output{}
			o.Items = []any{map[string]any{"again": o}}
			c.Output = map[string]any{"o": o}
		}, "output", payload.ErrInvalidJSON},
		// encoding/json calls a pointer method only on an addressable
		// value: in a map it encodes the fields, reaching the Output.
		{"Output that holds itself through a map value with a pointer MarshalJSON", func(c *payload.Callback) {
			m := map[string]ptrMarshaler{}
			o := &payload.Output{Items: m}
			m["k"] = ptrMarshaler{O: o}
			c.Output = o
		}, "output", payload.ErrInvalidJSON},
		{"map value with a pointer MarshalJSON, field invalid UTF-8", func(c *payload.Callback) {
			c.Metadata = map[string]ptrMarshaler{"k": {O: "\xff"}}
		}, "metadata", payload.ErrInvalidUTF8},
		// A struct that embeds a nil pointer gets its MarshalJSON, which
		// encoding/json calls and which dereferences nil.
		{"MarshalJSON promoted through a nil embedded pointer", func(c *payload.Callback) {
			c.Metadata = map[string]any{"v": struct{ *time.Time }{}}
		}, "metadata", payload.ErrInvalidJSON},
		{"MarshalJSON that panics", func(c *payload.Callback) { c.Output = panicMarshaler{} }, "output", payload.ErrInvalidJSON},
		{"MarshalText that panics", func(c *payload.Callback) { c.Output = []panicText{{}} }, "output", payload.ErrInvalidJSON},
		// encoding/json writes MarshalText's bytes as a string with the
		// invalid ones replaced: refused, as strings are.
		{"MarshalText writes invalid UTF-8", func(c *payload.Callback) { c.Metadata = map[string]any{"t": badText(1)} }, "metadata", payload.ErrInvalidUTF8},
		{"pointer MarshalText writes invalid UTF-8", func(c *payload.Callback) {
			c.Metadata = &struct{ T ptrBadText }{}
		}, "metadata", payload.ErrInvalidUTF8},
		// ... which would also make two keys one.
		{"MarshalText map keys invalid UTF-8", func(c *payload.Callback) {
			c.Output = map[badText]int{1: 1, 2: 2}
		}, "output", payload.ErrInvalidUTF8},
		{"negative duration", func(c *payload.Callback) { c.DurationMS = -1 }, "duration_ms", payload.ErrNegativeDuration},
		{"year 10000", func(c *payload.Callback) { c.CompletedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "completed_at", payload.ErrTimeOutOfRange},
		{"year 0 after conversion", func(c *payload.Callback) {
			c.CreatedAt = time.Date(1, 1, 1, 0, 30, 0, 0, time.FixedZone("", 3600))
		}, "created_at", payload.ErrTimeOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			b, err := payload.Freeze(c)
			require.Error(t, err)
			assert.Nil(t, b)
			assert.ErrorIs(t, err, payload.ErrInvalid)
			assert.ErrorIs(t, err, tt.rule)
			var fe *payload.FieldError
			require.True(t, errors.As(err, &fe), "error should be a *FieldError: %v", err)
			assert.Equal(t, tt.field, fe.Field)
		})
	}
}

type badMarshaler struct{}

func (badMarshaler) MarshalJSON() ([]byte, error) { return []byte("\"\xff\""), nil }

type embedded struct{ Name string }

type panicMarshaler struct{}

func (panicMarshaler) MarshalJSON() ([]byte, error) { panic("boom") }

type panicText struct{}

func (panicText) MarshalText() ([]byte, error) { panic("boom") }

// badText's text starts with a byte that is never UTF-8.
type badText int

func (b badText) MarshalText() ([]byte, error) { return []byte{0xf8 + byte(b), 'a'}, nil }

type ptrBadText struct{}

func (*ptrBadText) MarshalText() ([]byte, error) { return []byte{0xff}, nil }

// What encoding/json does not write is not checked: a field tagged "-"
// (a back pointer that would be a cycle, text that is not UTF-8), an
// unexported embedded non-struct. Freeze writes what json.Marshal writes.
func TestFreezeChecksOnlyWhatEncodingJSONWrites(t *testing.T) {
	type tree struct {
		Name     string  `json:"name"`
		Children []*tree `json:"children,omitempty"`
		Parent   *tree   `json:"-"`
		Secret   string  `json:"-"`
	}
	root := &tree{Name: "root"}
	root.Children = []*tree{{Name: "child", Parent: root, Secret: "\xff"}}
	type unexp string
	type withUnexported struct {
		unexp
		Shown string
	}
	type dash struct {
		Dash string `json:"-,"` // a field named "-": written, so checked
	}
	for name, v := range map[string]any{
		"back pointer tagged -":                    root,
		"unexported embedded non-struct":           withUnexported{unexp: "\xff", Shown: "ok"},
		"text map keys":                            map[goodText]int{1: 1, 2: 2},
		"nil pointer MarshalText":                  struct{ T *ptrBadText }{},
		"named field -":                            dash{Dash: "x"},
		"embedded structs whose MarshalText clash": clash{textA{X: "ok"}, textB{}},
		"a struct that embeds itself":              selfEmbedding(),
	} {
		c := base()
		c.Output = v
		b, err := payload.Freeze(c)
		require.NoError(t, err, name)
		want, err := json.Marshal(v)
		require.NoError(t, err, name)
		assert.Contains(t, string(b), `"output":`+string(want)+`,`, name)
	}

	c := base()
	c.Output = dash{Dash: "\xff"}
	_, err := payload.Freeze(c)
	assert.ErrorIs(t, err, payload.ErrInvalidUTF8, `a field named "-" is written, so checked`)

	// The fields of an embedded struct are written as the outer struct's,
	// so checked, even when the embedded type has a MarshalText of its own
	// and is unexported.
	c.Output = clash{textA{X: "\xff"}, textB{}}
	_, err = payload.Freeze(c)
	assert.ErrorIs(t, err, payload.ErrInvalidUTF8, "the fields of an embedded struct are checked")
}

type goodText int

// textA and textB both have MarshalText, so clash, which embeds both, has
// none: encoding/json writes clash's fields, never calling either method.
type textA struct{ X string }

func (textA) MarshalText() ([]byte, error) { return []byte{0xff}, nil }

type textB struct{ Y string }

func (textB) MarshalText() ([]byte, error) { return []byte("b"), nil }

type clash struct {
	textA
	textB
}

type selfEmbedded struct {
	*selfEmbedded
	Name string
}

func selfEmbedding() *selfEmbedded {
	s := &selfEmbedded{Name: "me"}
	s.selfEmbedded = s
	return s
}

func (g goodText) MarshalText() ([]byte, error) { return []byte{'k', '0' + byte(g)}, nil }

type node struct{ Next *node }

// Deep values that do not contain themselves freeze as encoding/json writes
// them, past the depth from which cycles are looked for.
func TestFreezeDeepGoValues(t *testing.T) {
	nest := func(n int) any {
		var v any = "leaf"
		for range n {
			v = []any{v, map[string]any{"k": "v"}}
		}
		return v
	}
	c := base()
	c.Output = nest(510) // 512 levels with the payload's own
	b, err := payload.Freeze(c)
	require.NoError(t, err)
	want, err := json.Marshal(c.Output)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"output":`+string(want)+`,`)

	c.Output = nest(1500)
	_, err = payload.Freeze(c)
	assert.ErrorIs(t, err, payload.ErrInvalidJSON)
}

func TestAppendFreezeLeavesDstOnError(t *testing.T) {
	c := base()
	c.Metadata = json.RawMessage(`[]`)
	dst := []byte("prefix")
	out, err := payload.AppendFreeze(dst, c)
	require.ErrorIs(t, err, payload.ErrMetadataNotObject)
	assert.Equal(t, "prefix", string(out))
}

func TestParseRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		in   string
		rule error
	}{
		{"not JSON", `{`, payload.ErrInvalidJSON},
		{"invalid UTF-8", "{\"event\":\"\xff\"}", payload.ErrInvalidUTF8},
		{"missing event", `{"batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded"}`, payload.ErrEmptyEvent},
		{"missing status", `{"event":"e","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f"}`, payload.ErrEmptyStatus},
		{"bad batch id", `{"event":"e","status":"s","batch_id":"nope"}`, payload.ErrInvalidJSON},
		{"nil batch id", `{"event":"e","status":"s","batch_id":"00000000-0000-0000-0000-000000000000"}`, payload.ErrNilBatchID},
		{"negative duration", `{"event":"e","status":"s","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","duration_ms":-5}`, payload.ErrNegativeDuration},
		{"bad time", `{"event":"e","status":"s","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","created_at":"yesterday"}`, payload.ErrInvalidJSON},
		{"metadata array", `{"event":"e","status":"s","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","metadata":[]}`, payload.ErrMetadataNotObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := payload.Parse([]byte(tt.in))
			assert.ErrorIs(t, err, payload.ErrInvalid)
			assert.ErrorIs(t, err, tt.rule)
		})
	}
}

func TestParseFields(t *testing.T) {
	in := `{"event":"batch.failed","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"failed","output":[1,"x"],"duration_ms":7,"created_at":"2026-05-06T10:00:00+00:00","completed_at":"2026-05-06T10:01:42.250000+00:00","metadata":{"b":1,"a":2}}`
	c, err := payload.Parse([]byte(in))
	require.NoError(t, err)
	assert.Equal(t, payload.EventBatchFailed, c.Event)
	assert.Equal(t, batchID, c.BatchID)
	assert.Equal(t, payload.StatusFailed, c.Status)
	assert.Equal(t, json.RawMessage(`[1,"x"]`), c.Output)
	assert.Equal(t, int64(7), c.DurationMS)
	assert.True(t, c.CreatedAt.Equal(time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)))
	assert.True(t, c.CompletedAt.Equal(time.Date(2026, 5, 6, 10, 1, 42, 250_000_000, time.UTC)))
	assert.Equal(t, json.RawMessage(`{"b":1,"a":2}`), c.Metadata)
}

// TestOutputFastPathMatchesEncodingJSON checks that the envelope written by
// hand is byte for byte what encoding/json makes of the same fields (HTML
// escaping off), and what Output.MarshalJSON returns.
func TestOutputFastPathMatchesEncodingJSON(t *testing.T) {
	type plain struct {
		Items     any `json:"items"`
		Succeeded int `json:"succeeded"`
		Failed    int `json:"failed"`
		Cancelled int `json:"cancelled"`
		Total     int `json:"total"`
	}
	encode := func(o payload.Output) string {
		if o.Items == nil {
			o.Items = []struct{}{}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(plain{o.Items, o.Succeeded, o.Failed, o.Cancelled, o.Total}))
		return strings.TrimSuffix(buf.String(), "\n")
	}
	cases := []payload.Output{
		{},
		{Items: []json.RawMessage{json.RawMessage(` {"a": "<&>", "b": [1, 2]} `), nil, json.RawMessage(`"é"`)}, Succeeded: 2, Failed: 1, Cancelled: 3, Total: 6},
		{Items: []json.RawMessage{}, Total: -1},
		{Items: []map[string]any{{"z": 1, "a": "<x>"}}, Succeeded: 1, Total: 1},
		{Items: json.RawMessage(`[1,2]`)},
	}
	for i, o := range cases {
		want := encode(o)
		m, err := o.MarshalJSON()
		require.NoError(t, err)
		assert.Equal(t, want, string(m), "case %d: MarshalJSON", i)
		for _, v := range []any{o, &o} {
			c := base()
			c.Output = v
			got, err := payload.Freeze(c)
			require.NoError(t, err)
			assert.Contains(t, string(got), `"output":`+want+`,"duration_ms"`, "case %d", i)
		}
	}
	c := base()
	c.Output = payload.Output{Items: []json.RawMessage{json.RawMessage(`{`)}}
	_, err := payload.Freeze(c)
	assert.ErrorIs(t, err, payload.ErrInvalidJSON)
}

// Raw JSON may nest only so deep that the whole payload stays within 512
// levels, so that Parse (and any receiver) reads back whatever Freeze
// writes; one level more is refused.
func TestFreezeNestingStaysParsable(t *testing.T) {
	nest := func(n int) json.RawMessage {
		return json.RawMessage(strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	for _, tt := range []struct {
		name string
		set  func(c *payload.Callback, n int)
		max  int // deepest raw value accepted: 512 minus the levels around it
	}{
		{"output", func(c *payload.Callback, n int) { c.Output = nest(n) }, 511},
		{"output items", func(c *payload.Callback, n int) { c.Output = []json.RawMessage{nest(n)} }, 510},
		{"Output envelope items", func(c *payload.Callback, n int) {
			c.Output = payload.Output{Items: []json.RawMessage{nest(n)}}
		}, 509},
		{"metadata", func(c *payload.Callback, n int) {
			c.Metadata = json.RawMessage(`{"a":` + string(nest(n-1)) + `}`)
		}, 511},
		// Go values: their JSON counts with the payload's levels too.
		{"raw JSON in a Go map", func(c *payload.Callback, n int) {
			c.Output = map[string]any{"a": nest(n - 1)}
		}, 511},
		{"Go value in Output items", func(c *payload.Callback, n int) {
			c.Output = payload.Output{Items: []any{nest(n - 1)}}
		}, 510},
		// n envelopes, each the items of the one around it, the innermost
		// with none ([]): the payload, n objects and an array.
		{"Outputs nested in Outputs", func(c *payload.Callback, n int) {
			var v any
			for range n {
				v = payload.Output{Items: v}
			}
			c.Output = v
		}, 510},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.set(&c, tt.max)
			b, err := payload.Freeze(c)
			require.NoError(t, err)
			_, err = payload.Parse(b)
			require.NoError(t, err, "Parse must read what Freeze wrote")
			tt.set(&c, tt.max+1)
			_, err = payload.Freeze(c)
			require.ErrorIs(t, err, payload.ErrInvalidJSON)
		})
	}
}

func TestParseRefusesTimesFreezeRefuses(t *testing.T) {
	for _, ts := range []string{"0000-06-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-05:00"} {
		t.Run(ts, func(t *testing.T) {
			c := base()
			b, err := payload.Freeze(c)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			m["created_at"] = ts
			b, err = json.Marshal(m)
			require.NoError(t, err)
			_, err = payload.Parse(b)
			require.ErrorIs(t, err, payload.ErrTimeOutOfRange)
		})
	}
}

// ptrMarshaler has MarshalJSON on its pointer only.
type ptrMarshaler struct{ O any }

func (*ptrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`{}`), nil }

// customItems marshals itself, nil included.
type customItems []int

func (c customItems) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte(`{"none":true}`), nil
	}
	return json.Marshal([]int(c))
}

// A nil slice as Output.Items is sent as [], as a nil Items is, not null;
// a type that marshals itself still does.
func TestOutputNilItemsSliceIsEmptyArray(t *testing.T) {
	c0 := base()
	c0.Output = payload.Output{Items: customItems(nil)}
	b0, err := payload.Freeze(c0)
	require.NoError(t, err)
	assert.Contains(t, string(b0), `"output":{"items":{"none":true},`)

	type item struct{ ID string }
	var items []item
	c := base()
	c.Output = payload.Output{Items: items, Total: 0}
	b, err := payload.Freeze(c)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"output":{"items":[],"succeeded":0`)
	m, err := json.Marshal(payload.Output{Items: items})
	require.NoError(t, err)
	assert.Contains(t, string(m), `"items":[]`, "MarshalJSON as Freeze")
}

// Parse matches keys exactly, as Python's json.loads and JavaScript's
// JSON.parse do; encoding/json alone would also take "Event" for "event".
func TestParseMatchesKeysExactly(t *testing.T) {
	b := []byte(`{"event":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded",` +
		`"Event":"batch.failed","STATUS":"failed","output":null,"metadata":null}`)
	c, err := payload.Parse(b)
	require.NoError(t, err)
	assert.Equal(t, payload.EventBatchSucceeded, c.Event)
	assert.Equal(t, payload.StatusSucceeded, c.Status)

	_, err = payload.Parse([]byte(`{"EVENT":"batch.succeeded","batch_id":"0190a5b4-7c1e-7d2a-9f3b-1a2b3c4d5e6f","status":"succeeded"}`))
	assert.ErrorIs(t, err, payload.ErrEmptyEvent)
}

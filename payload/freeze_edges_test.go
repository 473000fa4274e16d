package payload_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/payload"
)

// Strings are escaped exactly as encoding/json escapes them, for every
// ASCII control character: \b, \f, \n, \r, \t by name, the rest as \u00XX.
// Another spelling would still parse back to the same value, so only the
// bytes show it.
func TestFreezeEscapesControlCharactersAsEncodingJSON(t *testing.T) {
	t.Parallel()
	for c := range 0x20 {
		s := "a" + string(rune(c)) + "b"
		cb := base()
		cb.Event = s
		b, err := payload.Freeze(cb)
		require.NoError(t, err)
		want, err := json.Marshal(s)
		require.NoError(t, err)
		assert.Contains(t, string(b), `{"event":`+string(want)+`,`, "control character %#x", c)
	}
}

// Raw JSON with upper-case hex in \u escapes is valid JSON and is kept as
// written.
func TestFreezeKeepsUpperCaseUnicodeEscapes(t *testing.T) {
	t.Parallel()
	cb := base()
	cb.Output = json.RawMessage(`{"name":"caf\u00E9 \uD83D\uDE00"}`)
	b, err := payload.Freeze(cb)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"output":{"name":"caf\u00E9 \uD83D\uDE00"}`)
}

// The nesting limit holds when the deepest level is an object, as when it
// is an array: 511 levels of raw JSON are accepted, 512 refused.
func TestFreezeNestingLimitWithObjects(t *testing.T) {
	t.Parallel()
	nest := func(n int) json.RawMessage {
		return json.RawMessage(strings.Repeat(`{"a":`, n-1) + `{}` + strings.Repeat("}", n-1))
	}
	cb := base()
	cb.Output = nest(511)
	_, err := payload.Freeze(cb)
	require.NoError(t, err)
	cb.Output = nest(512)
	_, err = payload.Freeze(cb)
	assert.ErrorIs(t, err, payload.ErrInvalidJSON)
}

// A pointer to a nil json.RawMessage is null, as encoding/json writes it.
func TestFreezePointerToNilRawMessageIsNull(t *testing.T) {
	t.Parallel()
	var r json.RawMessage
	cb := base()
	cb.Output = &r
	cb.Metadata = &r
	b, err := payload.Freeze(cb)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"output":null,`)
	assert.Contains(t, string(b), `"metadata":null}`)
}

// A time less than a microsecond after the zero time freezes as null: it
// is truncated to microseconds first, and the zero time is null.
func TestFreezeSubMicrosecondAfterZeroIsNull(t *testing.T) {
	t.Parallel()
	cb := base()
	cb.CompletedAt = time.Time{}.Add(999 * time.Nanosecond)
	b, err := payload.Freeze(cb)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"completed_at":null`)
}

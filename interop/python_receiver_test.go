package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/payload"
)

// pyCase is one frozen payload for receiver.py.
type pyCase struct {
	Name   string `json:"name"`
	Frozen []byte `json:"frozen"`

	// Not sent:
	times [2]time.Time // created_at, completed_at as given to Freeze
	// dumps is what Python's json.dumps must write; nil means the frozen
	// bytes themselves.
	dumps []byte
	why   string
}

type pyTime struct {
	Raw        string   `json:"raw"`
	ISO        string   `json:"iso"`
	UnixMicro  *int64   `json:"unix_us"`
	UTCOffsetS *float64 `json:"utcoffset_s"`
}

type pyOutput struct {
	Results []struct {
		Name  string             `json:"name"`
		Error string             `json:"error"`
		Keys  []string           `json:"keys"`
		Times map[string]*pyTime `json:"times"`
		Dumps []byte             `json:"dumps"`
	} `json:"results"`
}

// payloadKeys is the wire order of a frozen payload's keys.
var payloadKeys = []string{"event", "batch_id", "status", "output", "duration_ms", "created_at", "completed_at", "metadata"}

// TestPythonReceiverReadsFrozenPayloads freezes a few hundred random
// payloads and has one Python process read them as a receiver would:
// json.loads keeps the wire key order; created_at and completed_at parse
// with datetime.fromisoformat as UTC instants equal to the frozen times
// truncated to the microsecond (null for zero times) and re-format with
// isoformat() to the identical strings; and json.dumps with compact
// separators and ensure_ascii=False re-serializes the payload to exactly
// the frozen bytes, including raw metadata whose keys are deliberately not
// sorted. A handful of fixed cases pin down where Python's bytes
// legitimately differ.
func TestPythonReceiverReadsFrozenPayloads(t *testing.T) {
	t.Parallel()
	testenv.LookTool(t, "python3")
	rng := newRand(t, 4)

	const n = 300
	var cases []pyCase
	unsortedRaw := 0
	for i := range n {
		c, unsorted := randomCallback(t, rng, i)
		if unsorted {
			unsortedRaw++
		}
		frozen, err := payload.Freeze(c)
		require.NoError(t, err, "case %d", i)
		cases = append(cases, pyCase{
			Name:   fmt.Sprintf("%03d", i),
			Frozen: frozen,
			times:  [2]time.Time{c.CreatedAt, c.CompletedAt},
			why:    "Python's compact json.dumps of a frozen payload must give back its exact bytes",
		})
	}
	require.GreaterOrEqual(t, unsortedRaw, n/3, "too few payloads with unsorted raw metadata to prove key order survives")
	cases = append(cases, pythonDifferences(t)...)

	var out pyOutput
	runPython(t, "receiver.py", map[string]any{"cases": cases}, &out)
	require.Len(t, out.Results, len(cases))

	exact, nulls, instants := 0, 0, 0
	for i, c := range cases {
		got := out.Results[i]
		require.Equal(t, c.Name, got.Name)
		if !assert.Empty(t, got.Error, "case %s: Python failed to read the payload %s", c.Name, c.Frozen) {
			continue
		}
		assert.Equal(t, payloadKeys, got.Keys, "case %s: json.loads must keep the wire key order", c.Name)

		for k, key := range []string{"created_at", "completed_at"} {
			ts, pt := c.times[k], got.Times[key]
			if ts.Truncate(time.Microsecond).IsZero() {
				assert.Nil(t, pt, "case %s: a zero %s must be null", c.Name, key)
				nulls++
				continue
			}
			if !assert.NotNil(t, pt, "case %s: %s is null, want %s", c.Name, key, ts) {
				continue
			}
			instants++
			assert.Equal(t, payload.FormatTime(ts), pt.Raw, "case %s %s", c.Name, key)
			assert.Equal(t, pt.Raw, pt.ISO, "case %s %s: isoformat(fromisoformat(s)) must give back s", c.Name, key)
			if assert.NotNil(t, pt.UTCOffsetS, "case %s %s: fromisoformat must give an aware datetime", c.Name, key) {
				assert.Zero(t, *pt.UTCOffsetS, "case %s %s: the datetime must be in UTC", c.Name, key)
			}
			if assert.NotNil(t, pt.UnixMicro, "case %s %s", c.Name, key) {
				assert.Equal(t, ts.UnixMicro(), *pt.UnixMicro, "case %s %s: Python must read the instant %s, truncated to the microsecond", c.Name, key, ts.Format(time.RFC3339Nano))
			}
		}

		if c.dumps == nil {
			if assert.Equal(t, string(c.Frozen), string(got.Dumps), "case %s: %s", c.Name, c.why) {
				exact++
			}
			continue
		}
		assert.NotEqual(t, string(c.Frozen), string(c.dumps), "case %s documents a difference that is not one", c.Name)
		assert.Equal(t, string(c.dumps), string(got.Dumps), "case %s: %s", c.Name, c.why)
	}
	t.Logf("%d payloads byte-identical through json.loads and json.dumps (%d with unsorted raw metadata); %d instants and %d nulls round-tripped",
		exact, unsortedRaw, instants, nulls)
}

// pythonDifferences are the payloads whose bytes Python's json.dumps does
// not reproduce, each with the bytes it writes instead and why. In every
// one Python still reads the same values.
func pythonDifferences(t *testing.T) []pyCase {
	t.Helper()
	at := time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)
	base := payload.Callback{
		Event: payload.EventBatchSucceeded, BatchID: uuid.MustParse("0190a5b4-7c1e-7d1a-9b7e-3c1f0c2d4e5f"),
		Status: payload.StatusSucceeded, CreatedAt: at, CompletedAt: at.Add(time.Second),
	}
	var cases []pyCase
	add := func(name string, c payload.Callback, pythonWrites func(frozen string) string, why string) {
		frozen, err := payload.Freeze(c)
		require.NoError(t, err, name)
		cases = append(cases, pyCase{
			Name: name, Frozen: frozen, times: [2]time.Time{c.CreatedAt, c.CompletedAt},
			dumps: []byte(pythonWrites(string(frozen))), why: why,
		})
	}
	replace := func(pairs ...string) func(string) string {
		return func(s string) string {
			r := strings.NewReplacer(pairs...).Replace(s)
			require.NotEqual(t, s, r, "replacement %q found nothing to replace", pairs)
			return r
		}
	}

	// hookline writes the strings it encodes (event, status, Go values) as
	// encoding/json does, with U+2028 and U+2029 escaped for JavaScript;
	// Python writes them raw.
	c := base
	c.Event = "batch.line\u2028separated"
	c.Metadata = map[string]any{"note": "para\u2029graph"}
	add("documented/u2028-u2029", c, replace(`\u2028`, "\u2028", `\u2029`, "\u2029"),
		"Python writes U+2028 and U+2029 raw where hookline escapes them")

	// Floats: both write the shortest digits that round-trip, but below
	// 1e-4 Python switches to an exponent sooner (1e-05, Go 0.00001) and
	// always writes it with two digits (1e-07, Go 1e-7). 1e21 and 1.5 come
	// out the same, and Go's 1e16 is an integer literal, which Python reads
	// as an int.
	c = base
	c.Metadata = map[string]any{"big": 1e21, "half": 1.5, "int": 1e16, "small": 1e-5, "tiny": 1e-7}
	add("documented/float-exponent", c, replace(`"small":0.00001,"tiny":1e-7}`, `"small":1e-05,"tiny":1e-07}`),
		"Python writes small floats with an exponent of at least two digits")

	// Raw JSON is kept as given apart from white space; Python normalizes
	// escapes and numbers.
	c = base
	c.Metadata = json.RawMessage(`{"s":"\u00e9\/","n":1.50,"e":1E2,"z":-0}`)
	add("documented/raw-escapes-and-numbers", c, replace(`"s":"\u00e9\/","n":1.50,"e":1E2,"z":-0`, `"s":"é/","n":1.5,"e":100.0,"z":0`),
		"Python re-escapes strings and re-spells numbers that hookline keeps verbatim from raw JSON")

	// A duplicate key in raw JSON is kept by hookline; Python keeps the
	// last value only.
	c = base
	c.Metadata = json.RawMessage(`{"k":1,"k":2}`)
	add("documented/raw-duplicate-key", c, replace(`{"k":1,"k":2}`, `{"k":2}`),
		"Python keeps only the last of duplicate keys")

	// Not differences, pinned because they are near the ones above: a raw
	// U+2028 inside raw JSON stays raw, and so does everything Python
	// writes raw with ensure_ascii=False ('<', '>', '&', '/', DEL,
	// astral characters); controls are escaped alike (\b, \f, \u001b).
	c = base
	c.Event = "<b>&amp;</b> / \x7f 😀 \x08\x0c\x1b"
	c.Metadata = json.RawMessage("{\"raw\":\"a\u2028b\",\"big\":123456789012345678901234567890}")
	frozen, err := payload.Freeze(c)
	require.NoError(t, err)
	cases = append(cases, pyCase{Name: "same/raw-u2028-html-controls", Frozen: frozen,
		times: [2]time.Time{c.CreatedAt, c.CompletedAt},
		why:   "characters Python writes raw must be raw in the frozen bytes too, big integers exact"})
	return cases
}

// randomCallback returns a random valid callback. Its strings avoid only
// U+2028 and U+2029 (see pythonDifferences) and its numbers are integers,
// so Python must reproduce its frozen bytes exactly. unsortedRaw reports
// raw JSON metadata whose keys are not in sorted order.
func randomCallback(t *testing.T, rng *rand.Rand, i int) (c payload.Callback, unsortedRaw bool) {
	t.Helper()
	events := []string{payload.EventBatchSucceeded, payload.EventBatchFailed, payload.EventBatchCancelled, payload.EventBatchPartialSucceeded}
	statuses := []string{payload.StatusSucceeded, payload.StatusFailed, payload.StatusCanceled, payload.StatusPartialSucceeded}
	c = payload.Callback{
		Event:       events[rng.IntN(len(events))],
		Status:      statuses[rng.IntN(len(statuses))],
		DurationMS:  rng.Int64N(1 << 62),
		CreatedAt:   randomInstant(rng, i),
		CompletedAt: randomInstant(rng, i+1),
	}
	if i%7 == 0 {
		c.Event = "custom." + randomText(rng, 1+rng.IntN(20), false)
		c.Status = randomText(rng, 1+rng.IntN(10), false)
	}
	for k := range c.BatchID {
		c.BatchID[k] = byte(rng.Uint32())
	}
	c.BatchID[0] |= 1 // never uuid.Nil

	switch i % 5 {
	case 0:
		c.Output = payload.Output{Items: []map[string]any{{"id": rng.Int64(), "name": randomText(rng, 12, false)}}, Succeeded: 1, Total: 1}
	case 1:
		c.Output = json.RawMessage(rawValue(rng, 1))
	case 2:
		c.Output = nil
	case 3:
		c.Output = randomText(rng, 30, false)
	default:
		c.Output = []any{rng.Int64(), true, nil, map[string]any{"z": "last", "a": "first"}}
	}

	switch i % 6 {
	case 0, 1, 2:
		raw := rawObject(rng, 0)
		if i%2 == 0 { // white space that Freeze compacts away
			var pretty bytes.Buffer
			require.NoError(t, json.Indent(&pretty, raw, "", "\t "))
			raw = pretty.Bytes()
		}
		c.Metadata = json.RawMessage(raw)
		unsortedRaw = true
	case 3:
		c.Metadata = map[string]any{"customer": randomText(rng, 10, false), "attempt": rng.IntN(10), "tags": []string{"a", "日本"}}
	case 4:
		c.Metadata = nil
	default:
		c.Metadata = json.RawMessage(`{}`)
	}
	return c, unsortedRaw
}

// randomInstant returns a time of the kind a host passes: now, whole
// seconds, microseconds, nanoseconds (which the wire truncates), anything
// from year 1 to 9999, zero (null) or less than a microsecond after zero
// (null too), in a zone other than UTC more often than not.
func randomInstant(rng *rand.Rand, i int) time.Time {
	now := time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)
	soon := func() time.Time { return now.Add(time.Duration(rng.Int64N(int64(10 * 365 * 24 * time.Hour)))) }
	var ts time.Time
	switch i % 11 {
	case 0:
		return time.Time{}
	case 1:
		return time.Time{}.Add(time.Duration(rng.IntN(1000))) // under 1µs: sent as null
	case 2:
		ts = soon().Truncate(time.Second)
	case 3:
		ts = soon().Truncate(time.Microsecond)
	case 4:
		ts = soon() // nanoseconds
	case 5:
		ts = time.Now() // with a monotonic clock reading
	case 6:
		minSec := time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC).Unix()
		maxSec := time.Date(9999, 12, 31, 23, 59, 58, 0, time.UTC).Unix()
		ts = time.Unix(minSec+rng.Int64N(maxSec-minSec), rng.Int64N(1e9))
	case 7:
		ts = time.Unix(-rng.Int64N(2_000_000_000), rng.Int64N(1e9)) // before 1970
	case 8:
		ts = []time.Time{
			time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC),
			time.Date(1, 1, 1, 0, 0, 0, 999_999, time.UTC), // 999µs 999ns: .000999
			time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
			time.Unix(0, 0),
			time.Unix(0, 1000),
			time.Unix(-1, 999_999_000),
		}[rng.IntN(6)]
	default:
		// Microseconds with a few nanoseconds that the wire drops.
		ts = soon().Truncate(time.Microsecond).Add(time.Duration(1 + rng.IntN(10)))
	}
	zones := []*time.Location{
		time.UTC, time.UTC,
		time.FixedZone("CEST", 2*3600), time.FixedZone("EST", -5*3600),
		time.FixedZone("IST", 5*3600+1800), time.FixedZone("NPT", 5*3600+2700),
		time.FixedZone("MART", -(9*3600 + 1800)), time.FixedZone("LINT", 14*3600),
		time.FixedZone("LMT", -(4*3600 + 56*60 + 2)), // seconds in the offset, as old zones have
	}
	return ts.In(zones[rng.IntN(len(zones))])
}

// rawObject returns a JSON object, as raw text, with two to six distinct
// keys in an order that is not sorted, and values of every JSON type but
// floats, written as Python's json.dumps would write them compactly (so
// the frozen bytes can be compared).
func rawObject(rng *rand.Rand, depth int) []byte {
	n := 2 + rng.IntN(5)
	if depth > 0 {
		n = rng.IntN(4)
	}
	seen := map[string]bool{}
	var keys []string
	fixed := []string{"zeta", "alpha", "", "<&>", "Zoë", "日本", "a\"b", "10", "9"}
	for len(keys) < n {
		k := fixed[rng.IntN(len(fixed))]
		if rng.IntN(2) == 0 {
			k = randomText(rng, rng.IntN(12), false)
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for len(keys) >= 2 && slices.IsSorted(keys) {
		rng.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
	}
	b := []byte{'{'}
	for j, k := range keys {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, jsonString(k)...)
		b = append(b, ':')
		b = append(b, rawValue(rng, depth+1)...)
	}
	return append(b, '}')
}

// rawValue returns a random JSON value without floats.
func rawValue(rng *rand.Rand, depth int) []byte {
	kinds := 6
	if depth < 3 {
		kinds = 8
	}
	switch rng.IntN(kinds) {
	case 0:
		return jsonString(randomText(rng, rng.IntN(40), false))
	case 1:
		return fmt.Appendf(nil, "%d", rng.Int64()-rng.Int64())
	case 2: // beyond int64 and float64 precision: Python keeps big integers exact
		return fmt.Appendf(nil, "%d%018d", 1+rng.Int64N(1e12), rng.Int64N(1e18))
	case 3:
		return []byte([]string{"true", "false"}[rng.IntN(2)])
	case 4:
		return []byte("null")
	case 5:
		return []byte(fmt.Sprint(rng.IntN(10)))
	case 6:
		return rawObject(rng, depth)
	default:
		b := []byte{'['}
		for j := range rng.IntN(4) {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, rawValue(rng, depth+1)...)
		}
		return append(b, ']')
	}
}

// jsonString writes s as encoding/json does without HTML escaping, which
// for valid UTF-8 without U+2028 and U+2029 is what Python's json.dumps
// writes with ensure_ascii=False.
func jsonString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err) // a string always encodes
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

package payload

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Freeze validates c and returns its canonical bytes: compact JSON, UTF-8, no
// HTML escaping, keys in the order event, batch_id, status, output,
// duration_ms, created_at, completed_at, metadata; timestamps as Python's
// datetime.isoformat() writes an aware UTC datetime (see AppendTime). The same
// Callback always freezes to the same bytes.
//
// JSON nested more than 512 levels in all (the payload's own levels
// included) is refused with ErrInvalidJSON, so that every receiver's parser
// reads it (Python's json.loads stops near 1000 levels).
//
// Bad input returns a *FieldError matching ErrInvalid and one rule's
// sentinel; Freeze never panics on any Callback.
func Freeze(c Callback) ([]byte, error) {
	// Compacting never lengthens raw JSON, so for raw values this size
	// is an upper bound and Freeze allocates once.
	size := 256 + rawSize(c.Output) + rawSize(c.Metadata)
	b, err := AppendFreeze(make([]byte, 0, size), c)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// rawSize returns the length of the raw JSON in v, or 0 when v is not raw.
// It is only an estimate: it looks a few Outputs deep at most.
func rawSize(v any) int { return rawSizeAt(v, 0) }

func rawSizeAt(v any, depth int) int {
	if depth > 4 {
		return 0
	}
	switch x := v.(type) {
	case json.RawMessage:
		return len(x)
	case []json.RawMessage:
		n := 2 + len(x)
		for _, it := range x {
			n += max(len(it), len("null"))
		}
		return n
	case Output:
		return 128 + rawSizeAt(x.Items, depth+1)
	case *Output:
		if x != nil {
			return 128 + rawSizeAt(x.Items, depth+1)
		}
	}
	return 0
}

// AppendFreeze is Freeze appending to dst, for callers that reuse buffers.
// On error it returns dst unchanged.
func AppendFreeze(dst []byte, c Callback) ([]byte, error) {
	if c.Event == "" {
		return dst, fieldErr("event", ErrEmptyEvent)
	}
	if !utf8.ValidString(c.Event) {
		return dst, fieldErr("event", ErrInvalidUTF8)
	}
	if c.BatchID == uuid.Nil {
		return dst, fieldErr("batch_id", ErrNilBatchID)
	}
	if c.Status == "" {
		return dst, fieldErr("status", ErrEmptyStatus)
	}
	if !utf8.ValidString(c.Status) {
		return dst, fieldErr("status", ErrInvalidUTF8)
	}
	if c.DurationMS < 0 {
		return dst, fieldErr("duration_ms", ErrNegativeDuration)
	}
	if err := checkTime(c.CreatedAt); err != nil {
		return dst, fieldErr("created_at", err)
	}
	if err := checkTime(c.CompletedAt); err != nil {
		return dst, fieldErr("completed_at", err)
	}

	start := len(dst)
	b := append(dst, `{"event":`...)
	b = appendString(b, c.Event)
	b = append(b, `,"batch_id":"`...)
	b = appendUUID(b, c.BatchID)
	b = append(b, `","status":`...)
	b = appendString(b, c.Status)
	b = append(b, `,"output":`...)
	b, err := appendValue(b, c.Output, 1)
	if err != nil {
		return dst[:start], fieldErr("output", err)
	}
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, c.DurationMS, 10)
	b = append(b, `,"created_at":`...)
	b = appendTimeOrNull(b, c.CreatedAt)
	b = append(b, `,"completed_at":`...)
	b = appendTimeOrNull(b, c.CompletedAt)
	b = append(b, `,"metadata":`...)
	mstart := len(b)
	b, err = appendValue(b, c.Metadata, 1)
	if err != nil {
		return dst[:start], fieldErr("metadata", err)
	}
	if m := b[mstart:]; m[0] != '{' && string(m) != "null" {
		return dst[:start], fieldErr("metadata", ErrMetadataNotObject)
	}
	return append(b, '}'), nil
}

// Parse decodes frozen bytes back into a Callback. Output and Metadata come
// back as json.RawMessage holding the exact bytes that were frozen, so
// Freeze(Parse(b)) returns b for any b that Freeze produced. Keys match
// exactly, as in other languages' parsers (encoding/json alone would also
// take "Event" for "event"); unknown keys are ignored, and of a key given
// twice the last counts. Timestamps are read as RFC 3339 (which the
// isoformat form is) or null.
//
// Bad input returns a *FieldError matching ErrInvalid; Parse never panics.
func Parse(b []byte) (Callback, error) {
	if !utf8.Valid(b) {
		return Callback{}, fieldErr("payload", ErrInvalidUTF8)
	}
	var w struct {
		Event       string          `json:"event"`
		BatchID     string          `json:"batch_id"`
		Status      string          `json:"status"`
		Output      json.RawMessage `json:"output"`
		DurationMS  *int64          `json:"duration_ms"`
		CreatedAt   *string         `json:"created_at"`
		CompletedAt *string         `json:"completed_at"`
		Metadata    json.RawMessage `json:"metadata"`
	}
	var keys map[string]json.RawMessage // exact keys, unlike a struct's fields
	err := json.Unmarshal(b, &keys)
	for _, f := range []struct {
		key string
		dst any
	}{
		{"event", &w.Event}, {"batch_id", &w.BatchID}, {"status", &w.Status}, {"output", &w.Output},
		{"duration_ms", &w.DurationMS}, {"created_at", &w.CreatedAt}, {"completed_at", &w.CompletedAt}, {"metadata", &w.Metadata},
	} {
		if raw, ok := keys[f.key]; ok && err == nil {
			err = json.Unmarshal(raw, f.dst)
		}
	}
	if err != nil {
		return Callback{}, fieldErr("payload", errors.Join(ErrInvalidJSON, err))
	}
	c := Callback{Event: w.Event, Status: w.Status}
	if w.Event == "" {
		return Callback{}, fieldErr("event", ErrEmptyEvent)
	}
	if w.Status == "" {
		return Callback{}, fieldErr("status", ErrEmptyStatus)
	}
	id, err := uuid.Parse(w.BatchID)
	if err != nil {
		return Callback{}, fieldErr("batch_id", errors.Join(ErrInvalidJSON, err))
	}
	if id == uuid.Nil {
		return Callback{}, fieldErr("batch_id", ErrNilBatchID)
	}
	c.BatchID = id
	if w.DurationMS != nil {
		if *w.DurationMS < 0 {
			return Callback{}, fieldErr("duration_ms", ErrNegativeDuration)
		}
		c.DurationMS = *w.DurationMS
	}
	if c.CreatedAt, err = parseTime(w.CreatedAt); err != nil {
		return Callback{}, fieldErr("created_at", err)
	}
	if c.CompletedAt, err = parseTime(w.CompletedAt); err != nil {
		return Callback{}, fieldErr("completed_at", err)
	}
	c.Output = rawOrNull(w.Output)
	c.Metadata = rawOrNull(w.Metadata)
	if m := c.Metadata.(json.RawMessage); m[0] != '{' && string(m) != "null" {
		return Callback{}, fieldErr("metadata", ErrMetadataNotObject)
	}
	return c, nil
}

func rawOrNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("null")
	}
	return r
}

func parseTime(s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}, errors.Join(ErrInvalidJSON, err)
	}
	t = t.UTC()
	if err := checkTime(t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// appendValue appends v as compact JSON: raw bytes compacted, Go values
// marshaled without HTML escaping, nil as null, each then compacted and
// checked (JSON, UTF-8, nesting) by appendCompact. depth is how many objects
// and arrays of the payload enclose v: v may nest only so deep that the
// whole payload stays within maxDepth.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth { // Outputs nested in Outputs, maybe in a cycle
		return b, errors.Join(ErrInvalidJSON, errTooDeep)
	}
	var raw []byte
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case json.RawMessage:
		if x == nil {
			return append(b, "null"...), nil
		}
		raw = x
	case *json.RawMessage:
		if x == nil || *x == nil {
			return append(b, "null"...), nil
		}
		raw = *x
	case []json.RawMessage:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendRawArray(b, x, depth)
	case Output:
		return appendOutput(b, &x, depth)
	case *Output:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendOutput(b, x, depth)
	default:
		if err := checkGoValue(v); err != nil {
			return b, err
		}
		m, err := marshal(v)
		if err != nil {
			return b, err
		}
		// Already compact, but its nesting counts with the payload's:
		// a json.RawMessage or an Output inside v was marshaled apart.
		return appendCompact(b, m, depth)
	}
	return appendCompact(b, raw, depth)
}

// appendRawArray appends raw values as a JSON array, each compacted.
func appendRawArray(b []byte, items []json.RawMessage, depth int) ([]byte, error) {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		if it == nil {
			b = append(b, "null"...)
			continue
		}
		var err error
		if b, err = appendCompact(b, it, depth+1); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// appendOutput writes the envelope as Output.MarshalJSON does, without a
// round through encoding/json for the fixed fields.
func appendOutput(b []byte, o *Output, depth int) ([]byte, error) {
	// depth levels enclose the envelope, an object of its own: it and an
	// empty items array must fit within maxDepth as raw JSON must.
	empty := o.Items == nil || nilSlice(o.Items)
	if depth+1 > maxDepth || empty && depth+2 > maxDepth {
		return b, errors.Join(ErrInvalidJSON, errTooDeep)
	}
	b = append(b, `{"items":`...)
	if empty {
		b = append(b, "[]"...)
	} else {
		var err error
		if b, err = appendValue(b, o.Items, depth+1); err != nil {
			return b, err
		}
	}
	b = append(b, `,"succeeded":`...)
	b = strconv.AppendInt(b, int64(o.Succeeded), 10)
	b = append(b, `,"failed":`...)
	b = strconv.AppendInt(b, int64(o.Failed), 10)
	b = append(b, `,"cancelled":`...)
	b = strconv.AppendInt(b, int64(o.Cancelled), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(o.Total), 10)
	return append(b, '}'), nil
}

// nilSlice reports whether v is a nil slice that encoding/json would write
// as null: not raw JSON bytes, nor a type that marshals itself.
func nilSlice(v any) bool {
	switch v.(type) {
	case json.RawMessage, json.Marshaler, encoding.TextMarshaler:
		return false
	}
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Slice && r.IsNil() && r.Type().Elem().Kind() != reflect.Uint8
}

// marshal is json.Marshal without HTML escaping, with errors mapped to this
// package's sentinels. A panic of a method encoding/json calls (a
// MarshalJSON promoted through a nil embedded pointer, say) is an error.
func marshal(v any) (_ []byte, err error) {
	defer recoverMethod(&err)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		var uv *json.UnsupportedValueError
		if errors.As(err, &uv) && uv.Value.IsValid() &&
			(uv.Value.Kind() == reflect.Float64 || uv.Value.Kind() == reflect.Float32) {
			if f := uv.Value.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, errors.Join(ErrNonFinite, err)
			}
		}
		if errors.Is(err, ErrNonFinite) || errors.Is(err, ErrInvalidUTF8) {
			return nil, err
		}
		return nil, errors.Join(ErrInvalidJSON, err)
	}
	// Raw bytes encoding/json copied as they were (a json.RawMessage inside
	// v, a MarshalJSON result) may not be UTF-8: appendCompact checks.
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode appends '\n'
}

// checkGoValue rejects, before encoding/json sees v, what it would marshal
// wrongly without an error or never finish: a string or string map key that
// is not UTF-8 (encoding/json replaces the bytes with U+FFFD, which can even
// make two keys one), and a value that contains itself (which recurses until
// the stack runs out, a crash no recover catches). It walks what
// encoding/json walks: pointers, interfaces, slices, arrays, maps and the
// struct fields it writes, but not the insides of a json.Marshaler (marshal
// checks what those write) or encoding.TextMarshaler (whose text it checks).
func checkGoValue(v any) (err error) {
	defer recoverMethod(&err)
	var w goValueWalker
	return w.walk(reflect.ValueOf(v), 0)
}

// recoverMethod turns a panic of a value's own method (MarshalJSON,
// MarshalText), which Freeze calls on the host's values, into an error
// matching ErrInvalidJSON in *err.
func recoverMethod(err *error) {
	if r := recover(); r != nil {
		*err = errors.Join(ErrInvalidJSON, fmt.Errorf("a MarshalJSON or MarshalText method panicked: %v", r))
	}
}

// cycleCheckDepth is the nesting from which goValueWalker remembers the
// pointers on its path, as encoding/json does: a value that contains itself
// is nested without end, so it is caught there, while ordinary values pay
// nothing.
const cycleCheckDepth = 1000

// maxWalkDepth bounds goValueWalker, whose depth counts pointers and
// interfaces besides JSON levels; the JSON that encoding/json writes is held
// to maxDepth afterwards (see appendValue).
const maxWalkDepth = 10000

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	outputType        = reflect.TypeFor[Output]()
	outputPtrType     = reflect.TypeFor[*Output]()
)

type goValueWalker struct {
	onPath map[[2]uintptr]bool // pointer and length of the maps, slices and pointers being walked, past cycleCheckDepth
}

var (
	errCycle   = errors.New("the value contains itself")
	errTooDeep = fmt.Errorf("nested more than %d deep", maxDepth)
)

func (w *goValueWalker) walk(v reflect.Value, depth int) error {
	if !v.IsValid() {
		return nil
	}
	if depth > maxWalkDepth {
		return errors.Join(ErrInvalidJSON, errTooDeep)
	}
	t := v.Type()
	// Only types declared in a package, and pointers to them, have methods.
	// Output is walked like any struct: its MarshalJSON writes its Items,
	// which may hold anything, itself included.
	if v.Kind() != reflect.Interface && t != outputType && t != outputPtrType && (t.PkgPath() != "" || t.Kind() == reflect.Pointer) {
		if own, err := checkMethods(v); own {
			return err
		}
	}
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return ErrInvalidUTF8
		}
	case reflect.Interface:
		return w.walk(v.Elem(), depth+1)
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if v.IsNil() {
			return nil
		}
		if v.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return nil // base64
		}
		if depth > cycleCheckDepth {
			key := [2]uintptr{v.Pointer(), 0}
			if v.Kind() == reflect.Slice {
				key[1] = uintptr(v.Len())
			}
			if w.onPath[key] {
				return errors.Join(ErrInvalidJSON, errCycle)
			}
			if w.onPath == nil {
				w.onPath = make(map[[2]uintptr]bool)
			}
			w.onPath[key] = true
			defer delete(w.onPath, key)
		}
		switch v.Kind() {
		case reflect.Pointer:
			return w.walk(v.Elem(), depth+1)
		case reflect.Slice:
			return w.walkElems(v, depth)
		}
		it := v.MapRange()
		for it.Next() {
			if err := checkKey(it.Key()); err != nil {
				return err
			}
			if err := w.walk(it.Value(), depth+1); err != nil {
				return err
			}
		}
	case reflect.Array:
		return w.walkElems(v, depth)
	case reflect.Struct:
		return w.walkFields(v, depth, nil)
	}
	return nil
}

// walkFields walks the fields of struct v that encoding/json writes. The
// fields of an embedded struct whose tag gives it no name are written as
// v's own, whatever methods the embedded type has (only v's own methods,
// promoted or not, count, and walk has looked at those): they are walked
// field by field, unless its type is already being flattened further out
// (outer), which encoding/json does not expand twice. A field that
// encoding/json drops because another of the same name hides it is still
// checked: Freeze may refuse such a value that json.Marshal writes.
func (w *goValueWalker) walkFields(v reflect.Value, depth int, outer []reflect.Type) error {
	t := v.Type()
	outer = append(outer, t)
	for i := range t.NumField() {
		f := t.Field(i)
		if !encoded(f) {
			continue
		}
		fv := v.Field(i)
		if flattened(f) {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			if slices.Contains(outer, fv.Type()) {
				continue
			}
			if err := w.walkFields(fv, depth+1, outer); err != nil {
				return err
			}
			continue
		}
		if err := w.walk(fv, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// flattened reports whether encoding/json writes the fields of struct field
// f as those of the struct that holds it: f embeds a struct, or a pointer
// to one, and its tag gives it no name.
func flattened(f reflect.StructField) bool {
	if !f.Anonymous {
		return false
	}
	if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" {
		return false
	}
	t := f.Type
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// encoded reports whether encoding/json writes struct field f, or the
// fields inside it: not when it is tagged "-", unexported (unless it
// embeds a struct, whose exported fields are promoted). Fields that
// encoding/json drops because another field of the same name hides them
// are still checked.
func encoded(f reflect.StructField) bool {
	if f.Tag.Get("json") == "-" {
		return false
	}
	if f.Anonymous {
		t := f.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		return f.IsExported() || t.Kind() == reflect.Struct
	}
	return f.IsExported()
}

// checkMethods reports whether encoding/json writes v with a method of its
// own, as it picks one: MarshalJSON (on *T when v is addressable, or on T)
// before MarshalText. What MarshalJSON writes, marshal checks; what
// MarshalText returns, encoding/json writes as a string with bytes that are
// not UTF-8 replaced, so it is checked here.
func checkMethods(v reflect.Value) (own bool, err error) {
	t := v.Type()
	addr := t.Kind() != reflect.Pointer && v.CanAddr()
	switch {
	case addr && reflect.PointerTo(t).Implements(marshalerType), t.Implements(marshalerType):
		return true, nil
	case addr && reflect.PointerTo(t).Implements(textMarshalerType):
		return true, checkText(v.Addr())
	case t.Implements(textMarshalerType):
		if t.Kind() == reflect.Pointer && v.IsNil() {
			return true, nil // written as null
		}
		return true, checkText(v)
	}
	return false, nil
}

// checkKey checks a map key as encoding/json writes it: a string key as it
// is, another key through its MarshalText if it has one (else it is a
// number).
func checkKey(k reflect.Value) error {
	if k.Kind() == reflect.String {
		if !utf8.ValidString(k.String()) {
			return ErrInvalidUTF8
		}
		return nil
	}
	if k.Type().Implements(textMarshalerType) {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return nil // written as ""
		}
		return checkText(k)
	}
	return nil
}

// checkText calls v's MarshalText and refuses text that is not UTF-8. An
// error of MarshalText is left for encoding/json to return, as it will.
func checkText(v reflect.Value) error {
	if !v.CanInterface() {
		return nil // reached through an unexported field: not written
	}
	b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
	if err == nil && !utf8.Valid(b) {
		return ErrInvalidUTF8
	}
	return nil
}

func (w *goValueWalker) walkElems(v reflect.Value, depth int) error {
	for i := range v.Len() {
		if err := w.walk(v.Index(i), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping off: '"', '\\' and control characters escaped, U+2028 and
// U+2029 escaped, everything else verbatim. s must be valid UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendUUID(b []byte, id uuid.UUID) []byte {
	var s [36]byte
	// uuid.UUID.MarshalText never fails; encode by hand to avoid allocating.
	const hex = "0123456789abcdef"
	j := 0
	for i, x := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hex[x>>4], hex[x&0xf]
		j += 2
	}
	return append(b, s[:]...)
}

// isNull reports whether t is sent as null: the zero time, or an instant so
// close to it that the microsecond wire format could not tell them apart.
func isNull(t time.Time) bool { return t.Truncate(time.Microsecond).IsZero() }

func checkTime(t time.Time) error {
	if isNull(t) {
		return nil
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return ErrTimeOutOfRange
	}
	return nil
}

func appendTimeOrNull(b []byte, t time.Time) []byte {
	if isNull(t) {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = AppendTime(b, t)
	return append(b, '"')
}

// AppendTime appends t as Python's datetime.isoformat() formats an aware UTC
// datetime: converted to UTC, "YYYY-MM-DDTHH:MM:SS", then ".ffffff" only when
// the microseconds are non-zero (nanoseconds truncated, never rounded), then
// "+00:00". t's UTC year should be within 1..9999, as Freeze checks.
func AppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		for div := 100000; div > 0; div /= 10 {
			b = append(b, byte('0'+us/div%10))
		}
	}
	return append(b, "+00:00"...)
}

// append2 appends 0 <= n < 100 as two digits.
func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// append4 appends 0 <= n < 10000 as four digits; other years (which Freeze
// refuses) are written in full, as time.Format would.
func append4(b []byte, n int) []byte {
	if n < 0 || n > 9999 {
		return strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// FormatTime returns AppendTime(nil, t) as a string.
func FormatTime(t time.Time) string { return string(AppendTime(nil, t)) }

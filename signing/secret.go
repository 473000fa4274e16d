package signing

import (
	"crypto/fips140"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// StandardSecretPrefix begins every Standard Webhooks secret string:
// "whsec_" followed by the standard base64 of the key.
const StandardSecretPrefix = "whsec_"

// GeneratedSecretBytes is how many random bytes GenerateSecret draws.
const GeneratedSecretBytes = 32

// redacted stands in for key material wherever a Secret is printed.
const redacted = "[redacted]"

// fipsMinKeyLen is the shortest HMAC key crypto/hmac accepts (instead of
// panicking) when the program runs with GODEBUG=fips140=only.
const fipsMinKeyLen = 112 / 8

// Secret is one signing secret: an ID that records which secret signed a
// delivery, and key material that is never printed.
//
// A Secret made by NewSecret holds up to two keys derived from its string:
//
//   - The hex-scheme key is the secret string's bytes, exactly as given,
//     prefix included: for "whsec_MfKQ..." it is the 38 bytes "whsec_MfKQ...".
//   - The Standard Webhooks key exists only when the string has the form
//     "whsec_<base64>"; it is the base64-decoded part after the prefix.
//     A string without the prefix is never base64-decoded: using it for
//     Standard Webhooks fails with ErrNotStandardSecret.
//
// The key material never appears in fmt output for any verb (including %v,
// %+v, %#v, %s, %q and %x, and inside structs and slices), String, GoString,
// JSON or slog output, or in any error of this package: all show the ID and
// "[redacted]". It is held behind a pointer, so even a Secret in an
// unexported struct field, which fmt prints without calling its methods,
// shows only an address.
//
// A Secret is immutable and safe for concurrent use; copies share one key
// and one pool of reusable HMAC states. The zero Secret has no key: signing
// or verifying with it fails with ErrEmptySecret, and NewKeyRing and
// NewVerifier refuse it.
type Secret struct {
	id  uuid.UUID
	key *keyMaterial
}

// keyMaterial holds a pool of keyed HMAC states per key of one Secret.
// Pooled states go back to the keyed initial state with Reset, which costs
// far less than hmac.New.
//
// The key bytes are captured only by the pools' New functions and held
// inside pooled HMAC states, never in a field fmt can reach by reflection:
// fmt prints a func or an unsafe.Pointer as an address. (A []byte field
// here would leak, because for verbs such as %s and %d fmt dereferences a
// pointer it meets in an unexported field and prints what it points to.)
type keyMaterial struct {
	hasStd  bool // the secret string had the whsec_ prefix
	hexPool sync.Pool
	stdPool sync.Pool
}

// macState is one reusable HMAC-SHA256 state with scratch space.
type macState struct {
	mac hash.Hash
	sum [sha256.Size]byte
	pre []byte // "<msgID>.<timestamp>." for Standard Webhooks
}

// maxPooledScratch bounds the scratch buffer a pooled state keeps, so one
// huge message id does not pin memory.
const maxPooledScratch = 1024

// NewSecret returns the secret with the given id and secret string. The
// string must be non-empty (ErrEmptySecret), with no leading or trailing
// white space (usually a newline read from a file) and no ASCII control
// characters (ErrInvalidSecret). When it begins with "whsec_", the rest must
// be standard base64, padded or not, of at least one byte (ErrInvalidSecret
// otherwise). See Secret for which key each scheme uses. Any id is
// accepted, uuid.Nil included. The error never contains the secret.
func NewSecret(id uuid.UUID, secret string) (Secret, error) {
	if secret == "" {
		return Secret{}, fmt.Errorf("new secret %s: %w", id, ErrEmptySecret)
	}
	if strings.TrimSpace(secret) != secret {
		return Secret{}, fmt.Errorf("new secret %s: leading or trailing white space: %w", id, ErrInvalidSecret)
	}
	if strings.ContainsFunc(secret, isControl) {
		return Secret{}, fmt.Errorf("new secret %s: control character: %w", id, ErrInvalidSecret)
	}
	hexKey := []byte(secret)
	var stdKey []byte
	rest, hasStd := strings.CutPrefix(secret, StandardSecretPrefix)
	if hasStd {
		key, err := decodeStandardKey(rest)
		if err != nil {
			return Secret{}, fmt.Errorf("new secret %s: %s part is not base64 of a non-empty key: %w", id, StandardSecretPrefix, ErrInvalidSecret)
		}
		stdKey = key
	}
	if fips140.Enforced() && (len(hexKey) < fipsMinKeyLen || (hasStd && len(stdKey) < fipsMinKeyLen)) {
		return Secret{}, fmt.Errorf("new secret %s: key shorter than 112 bits in FIPS 140-only mode: %w", id, ErrInvalidSecret)
	}
	km := &keyMaterial{hasStd: hasStd}
	km.hexPool.New = func() any { return newMACState(hexKey) }
	if hasStd {
		km.stdPool.New = func() any { return newMACState(stdKey) }
	}
	return Secret{id: id, key: km}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// decodeStandardKey decodes the base64 part of a whsec_ secret.
func decodeStandardKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, ErrInvalidSecret
	}
	return key, nil
}

func newMACState(key []byte) *macState {
	st := &macState{mac: hmac.New(sha256.New, key)}
	// The first Reset saves the keyed inner and outer states, so every later
	// Reset restores them instead of hashing the padded key again.
	st.mac.Reset()
	return st
}

// GenerateSecret returns a fresh Standard Webhooks secret string:
// "whsec_" and the standard base64 of GeneratedSecretBytes bytes from
// crypto/rand. Pass it to NewSecret, and store it where the host keeps
// secrets; it works for both schemes. It is safe for concurrent use.
func GenerateSecret() string {
	var b [GeneratedSecretBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error.
	return StandardSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// ID returns the secret's id; uuid.Nil for the zero Secret.
func (s Secret) ID() uuid.UUID { return s.id }

// valid reports whether s was made by NewSecret.
func (s Secret) valid() bool { return s.key != nil }

// hasStandardKey reports whether s can sign and verify Standard Webhooks.
func (s Secret) hasStandardKey() bool { return s.valid() && s.key.hasStd }

// SignHex returns the hex-scheme signature of body: 64 lowercase hex
// characters of HMAC-SHA256(hex-scheme key, body). It fails only for the
// zero Secret (ErrEmptySecret).
func (s Secret) SignHex(body []byte) (string, error) {
	if !s.valid() {
		return "", fmt.Errorf("sign hex: %w", ErrEmptySecret)
	}
	var sum [sha256.Size]byte
	s.key.hexMAC(body, &sum)
	var out [2 * sha256.Size]byte
	encodeHexLower(out[:], sum[:])
	return string(out[:]), nil
}

// SignStandard returns one Standard Webhooks v1 signature entry,
// "v1,<base64 of HMAC-SHA256(key, msgID + "." + ts + "." + body)>", where
// ts is written in decimal. It fails for the zero Secret (ErrEmptySecret)
// and for a secret without the whsec_ prefix (ErrNotStandardSecret). It does
// not check msgID; Signer.Sign does.
func (s Secret) SignStandard(msgID string, ts int64, body []byte) (string, error) {
	if !s.valid() {
		return "", fmt.Errorf("sign standard webhooks: %w", ErrEmptySecret)
	}
	if !s.hasStandardKey() {
		return "", fmt.Errorf("sign standard webhooks: secret %s: %w", s.id, ErrNotStandardSecret)
	}
	var sum [sha256.Size]byte
	s.key.stdMAC(msgID, ts, body, &sum)
	var out [len(standardVersion) + 1 + standardSigB64Len]byte
	n := copy(out[:], standardVersion+",")
	base64.StdEncoding.Encode(out[n:], sum[:])
	return string(out[:]), nil
}

// hexMAC writes HMAC-SHA256(hex key, body) to out.
func (k *keyMaterial) hexMAC(body []byte, out *[sha256.Size]byte) {
	st := k.hexPool.Get().(*macState)
	st.mac.Write(body)
	st.mac.Sum(st.sum[:0])
	*out = st.sum
	st.mac.Reset()
	k.hexPool.Put(st)
}

// stdMAC writes HMAC-SHA256(standard key, msgID "." ts "." body) to out.
// The caller has checked hasStd.
func (k *keyMaterial) stdMAC(msgID string, ts int64, body []byte, out *[sha256.Size]byte) {
	st := k.stdPool.Get().(*macState)
	st.pre = append(st.pre[:0], msgID...)
	st.pre = append(st.pre, '.')
	st.pre = strconv.AppendInt(st.pre, ts, 10)
	st.pre = append(st.pre, '.')
	st.mac.Write(st.pre)
	st.mac.Write(body)
	st.mac.Sum(st.sum[:0])
	*out = st.sum
	st.mac.Reset()
	if cap(st.pre) > maxPooledScratch {
		st.pre = nil
	}
	k.stdPool.Put(st)
}

const hexDigits = "0123456789abcdef"

// encodeHexLower is hex.Encode; kept local so the destination provably
// stays on the caller's stack.
func encodeHexLower(dst, src []byte) {
	for i, b := range src {
		dst[2*i] = hexDigits[b>>4]
		dst[2*i+1] = hexDigits[b&0x0f]
	}
}

// String returns "Secret{ID:<id> Key:[redacted]}". It never shows the key.
func (s Secret) String() string {
	return "Secret{ID:" + s.id.String() + " Key:" + redacted + "}"
}

// GoString returns `signing.Secret{ID:"<id>", Key:"[redacted]"}` for %#v.
// It never shows the key.
func (s Secret) GoString() string {
	return `signing.Secret{ID:"` + s.id.String() + `", Key:"` + redacted + `"}`
}

// Format implements fmt.Formatter so that every verb, not only %v and %s,
// prints the redacted form: %#v prints GoString, %q the quoted String, and
// every other verb String.
func (s Secret) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s) }

// MarshalJSON returns {"id":"<id>","key":"[redacted]"}. It never shows the
// key. A Secret cannot be read back from JSON.
func (s Secret) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID  uuid.UUID `json:"id"`
		Key string    `json:"key"`
	}{s.id, redacted})
}

// LogValue implements slog.LogValuer: a group with the id and
// key=[redacted]. It never shows the key.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", s.id.String()),
		slog.String("key", redacted),
	)
}

// redactedFormatter is what formatRedacted needs.
type redactedFormatter interface {
	fmt.Stringer
	fmt.GoStringer
}

func formatRedacted(f fmt.State, verb rune, v redactedFormatter) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, v.GoString())
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(v.String()))
	default:
		_, _ = io.WriteString(f, v.String())
	}
}

// KeyRing is the set of active secrets: one primary and any number of
// others kept during a rotation. Every secret in the ring signs Standard
// Webhooks messages (so receivers holding either the old or the new secret
// verify them); the hex scheme, which carries a single signature, is signed
// by the primary only. Record Primary().ID() as the secret that signed.
//
// To rotate: add the new secret as a non-primary, let receivers learn it,
// make it the primary, then drop the old one once no receiver needs it.
//
// A KeyRing is immutable and safe for concurrent use. The zero KeyRing is
// empty; NewSigner refuses it. Printing it, in any form, shows secret ids
// only.
type KeyRing struct {
	secrets []Secret // secrets[0] is the primary
}

// NewKeyRing returns a ring of primary and others, in that order. It fails
// with ErrEmptySecret when any secret is the zero Secret and with
// ErrDuplicateSecretID when two secrets share an id. The error names the
// position (0 is the primary) and id, never the key.
func NewKeyRing(primary Secret, others ...Secret) (KeyRing, error) {
	all := make([]Secret, 0, 1+len(others))
	all = append(all, primary)
	all = append(all, others...)
	seen := make(map[uuid.UUID]struct{}, len(all))
	for i, s := range all {
		if !s.valid() {
			return KeyRing{}, fmt.Errorf("new key ring: secret %d (id %s): %w", i, s.id, ErrEmptySecret)
		}
		if _, dup := seen[s.id]; dup {
			return KeyRing{}, fmt.Errorf("new key ring: secret %d: id %s: %w", i, s.id, ErrDuplicateSecretID)
		}
		seen[s.id] = struct{}{}
	}
	return KeyRing{secrets: all}, nil
}

// Primary returns the primary secret; the zero Secret for the zero KeyRing.
func (r KeyRing) Primary() Secret {
	if len(r.secrets) == 0 {
		return Secret{}
	}
	return r.secrets[0]
}

// Secrets returns a copy of all secrets, primary first.
func (r KeyRing) Secrets() []Secret {
	return append([]Secret(nil), r.secrets...)
}

// Len returns the number of secrets in the ring; 0 for the zero KeyRing.
func (r KeyRing) Len() int { return len(r.secrets) }

// ids returns the secret ids as strings, primary first.
func (r KeyRing) ids() []string {
	ids := make([]string, len(r.secrets))
	for i, s := range r.secrets {
		ids[i] = s.id.String()
	}
	return ids
}

// String returns "KeyRing{Primary:<id> IDs:[<id> <id>]}". It never shows a
// key.
func (r KeyRing) String() string {
	return "KeyRing{Primary:" + r.Primary().id.String() + " IDs:[" + strings.Join(r.ids(), " ") + "]}"
}

// GoString returns `signing.KeyRing{Primary:"<id>", IDs:[]string{...}}` for
// %#v. It never shows a key.
func (r KeyRing) GoString() string {
	return fmt.Sprintf("signing.KeyRing{Primary:%q, IDs:%#v}", r.Primary().id.String(), r.ids())
}

// Format implements fmt.Formatter like Secret.Format.
func (r KeyRing) Format(f fmt.State, verb rune) { formatRedacted(f, verb, r) }

// MarshalJSON returns {"primary_id":"<id>","secret_ids":["<id>",...]}. It
// never shows a key.
func (r KeyRing) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		PrimaryID uuid.UUID `json:"primary_id"`
		SecretIDs []string  `json:"secret_ids"`
	}{r.Primary().id, r.ids()})
}

// LogValue implements slog.LogValuer: a group with primary_id and
// secret_ids. It never shows a key.
func (r KeyRing) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("primary_id", r.Primary().id.String()),
		slog.Any("secret_ids", r.ids()),
	)
}

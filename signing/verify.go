package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// DefaultTolerance is how far a Standard Webhooks timestamp may lie from
// the verifier's clock, in either direction, when
// VerifierConfig.Tolerance is zero.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBodyBytes is the largest body Verifier.Middleware reads when
// VerifierConfig.MaxBodyBytes is zero: 1 MiB.
const DefaultMaxBodyBytes int64 = 1 << 20

// VerifierConfig configures a Verifier. The zero value of each field except
// Secrets means its default.
type VerifierConfig struct {
	// Secrets are the secrets a signature may have been made with; a
	// signature by any one of them is accepted, which is how a receiver
	// rides through a sender's rotation. Required, none of them the zero
	// Secret. With SchemeStandard every one must be a whsec_ secret. The
	// slice is copied.
	Secrets []Secret

	// Schemes selects the schemes Verify and Middleware accept. Zero means
	// DefaultSchemes (SchemeStandard). Accepting SchemeHex as well means
	// accepting requests that carry no timestamp: whoever captured one signed
	// request can replay it, with its webhook-* headers removed, for ever.
	// VerifyHex and VerifyStandard check their scheme whatever this says.
	Schemes Scheme

	// Prefix begins the hex-scheme signature header name,
	// "<Prefix>-Signature", with the same rules as SignerConfig.Prefix.
	// Empty means DefaultPrefix.
	Prefix string

	// Tolerance is how far a Standard Webhooks timestamp may lie before or
	// after Now; a timestamp exactly Tolerance away is accepted. Zero means
	// DefaultTolerance; negative is an error.
	Tolerance time.Duration

	// Now reads the current time. Nil means time.Now. Tests set a fixed
	// clock. It must be safe for concurrent use.
	Now func() time.Time

	// MaxBodyBytes caps the body Middleware reads; a longer body is answered
	// 413. Zero means DefaultMaxBodyBytes; negative is an error.
	MaxBodyBytes int64
}

// Verifier checks the signatures of incoming webhook requests, in constant
// time, against several secrets. Make one with NewVerifier.
//
// A Verifier is immutable and safe for concurrent use. A nil or zero
// Verifier accepts nothing: its methods return ErrInvalidConfig and its
// Middleware answers 500.
type Verifier struct {
	secrets   []Secret
	schemes   Scheme
	hexHeader string
	tolerance time.Duration
	now       func() time.Time
	maxBody   int64
}

// Verified describes a request whose signature checked out.
type Verified struct {
	// Scheme is the one scheme that was verified.
	Scheme Scheme
	// SecretID is the id of the first configured secret that matched.
	SecretID uuid.UUID
	// MessageID is the webhook-id; empty for the hex scheme. Use it to
	// drop duplicates: a sender keeps it across retries.
	MessageID string
	// Timestamp is the webhook-timestamp; zero for the hex scheme.
	Timestamp time.Time
}

// NewVerifier validates cfg and returns a Verifier. It fails with
// ErrInvalidConfig for no Secrets, unknown Schemes bits, or a negative
// Tolerance or MaxBodyBytes; with ErrEmptySecret for a zero Secret; with
// ErrNotStandardSecret when Schemes includes SchemeStandard and a secret
// has no whsec_ form; and with ErrInvalidPrefix for a bad Prefix. The error
// names the field.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	schemes, err := resolveSchemes("VerifierConfig", cfg.Schemes)
	if err != nil {
		return nil, err
	}
	if len(cfg.Secrets) == 0 {
		return nil, fmt.Errorf("signing: VerifierConfig.Secrets is empty; give at least one secret from NewSecret: %w", ErrInvalidConfig)
	}
	for i, s := range cfg.Secrets {
		if !s.valid() {
			return nil, fmt.Errorf("signing: VerifierConfig.Secrets[%d] is the zero Secret; make it with NewSecret: %w", i, ErrEmptySecret)
		}
		if schemes&SchemeStandard != 0 && !s.hasStandardKey() {
			return nil, fmt.Errorf("signing: VerifierConfig.Secrets[%d] (id %s) cannot verify Standard Webhooks; use the sender's %s secret or set Schemes to SchemeHex: %w",
				i, s.id, StandardSecretPrefix, ErrNotStandardSecret)
		}
	}
	if cfg.Tolerance < 0 {
		return nil, fmt.Errorf("signing: VerifierConfig.Tolerance %s is negative; use 0 for DefaultTolerance: %w", cfg.Tolerance, ErrInvalidConfig)
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("signing: VerifierConfig.MaxBodyBytes %d is negative; use 0 for DefaultMaxBodyBytes: %w", cfg.MaxBodyBytes, ErrInvalidConfig)
	}
	sig, _, err := hexHeaderNames("VerifierConfig", cfg.Prefix)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		secrets:   append([]Secret(nil), cfg.Secrets...),
		schemes:   schemes,
		hexHeader: sig,
		tolerance: cfg.Tolerance,
		now:       cfg.Now,
		maxBody:   cfg.MaxBodyBytes,
	}
	if v.tolerance == 0 {
		v.tolerance = DefaultTolerance
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxBody == 0 {
		v.maxBody = DefaultMaxBodyBytes
	}
	return v, nil
}

// ready reports a nil or zero Verifier.
func (v *Verifier) ready(op string) error {
	if v == nil || len(v.secrets) == 0 {
		return fmt.Errorf("%s: Verifier not made by NewVerifier: %w", op, ErrInvalidConfig)
	}
	return nil
}

// Verify checks h and body with the scheme the headers show, among those
// configured: Standard Webhooks when any webhook-* header is present and
// SchemeStandard is accepted, else the hex scheme when <Prefix>-Signature is
// present and SchemeHex is accepted. With neither it fails with
// ErrMissingHeader; otherwise it returns what VerifyStandard or VerifyHex
// returns.
func (v *Verifier) Verify(h http.Header, body []byte) (Verified, error) {
	if err := v.ready("verify"); err != nil {
		return Verified{}, err
	}
	if v.schemes&SchemeStandard != 0 &&
		(h[HeaderWebhookID] != nil || h[HeaderWebhookTimestamp] != nil || h[HeaderWebhookSignature] != nil) {
		return v.VerifyStandard(h, body)
	}
	if v.schemes&SchemeHex != 0 && h[v.hexHeader] != nil {
		return v.VerifyHex(h, body)
	}
	return Verified{}, fmt.Errorf("verify: no signature header for %s: %w", v.schemes, ErrMissingHeader)
}

// VerifyStandard checks a Standard Webhooks v1 request: the webhook-id,
// webhook-timestamp and webhook-signature headers of h against body. It
// fails, in this order of checks, with ErrMissingHeader, ErrMalformedHeader
// (a webhook-signature without one well-formed entry: entries that are not
// well formed are skipped, as the Standard Webhooks libraries skip them),
// ErrTimestampTooOld or ErrTimestampTooNew (outside Tolerance of Now), and
// ErrNoMatchingSignature
// when no v1 entry was made by a secret with a whsec_ form over exactly
// these id, timestamp and body. Entries of other versions are ignored.
// Several webhook-signature header lines are read as one list. With no
// whsec_ secret to check against (possible only when Schemes leaves out
// SchemeStandard) it fails with ErrNotStandardSecret.
func (v *Verifier) VerifyStandard(h http.Header, body []byte) (Verified, error) {
	const op = "verify standard webhooks"
	if err := v.ready(op); err != nil {
		return Verified{}, err
	}
	msgID := firstValue(h, HeaderWebhookID)
	if msgID == "" {
		return Verified{}, fmt.Errorf("%s: header %s: %w", op, HeaderWebhookID, ErrMissingHeader)
	}
	tsText := firstValue(h, HeaderWebhookTimestamp)
	if tsText == "" {
		return Verified{}, fmt.Errorf("%s: header %s: %w", op, HeaderWebhookTimestamp, ErrMissingHeader)
	}
	sigLines := h[HeaderWebhookSignature]
	if isBlank(sigLines) {
		return Verified{}, fmt.Errorf("%s: header %s: %w", op, HeaderWebhookSignature, ErrMissingHeader)
	}
	ts, ok := parseUnixSeconds(tsText)
	if !ok {
		return Verified{}, fmt.Errorf("%s: header %s is not unix seconds: %w", op, HeaderWebhookTimestamp, ErrMalformedHeader)
	}

	// Read every entry before comparing any, and keep the decoded v1 MACs
	// (on the stack for the usual one or two). Entries that are not well
	// formed are skipped, as the Standard Webhooks libraries skip them; a
	// header with none that is fails here.
	var stack [4][sha256.Size]byte
	macs := stack[:0]
	wellFormed := false
	var malformed error
	for _, line := range sigLines {
		for rest := line; ; {
			var e sigEntry
			var more bool
			var err error
			e, rest, more, err = nextSigEntry(rest)
			if !more {
				break
			}
			if err != nil {
				malformed = err
				continue
			}
			wellFormed = true
			if e.version == standardVersion {
				macs = append(macs, e.mac)
			}
		}
	}
	if !wellFormed { // isBlank above: there was an entry, so malformed is set
		return Verified{}, fmt.Errorf("%s: header %s has no well-formed entry: %w", op, HeaderWebhookSignature, malformed)
	}

	// Clamp so time.Unix cannot overflow; 2^62 s is beyond any tolerance.
	// (time.Time.Sub saturates, so neither difference overflows.)
	sent := time.Unix(min(ts, maxUnixSeconds), 0)
	now := v.now()
	if age := now.Sub(sent); age > v.tolerance {
		return Verified{}, fmt.Errorf("%s: timestamp %d is %s older than now, tolerance %s: %w",
			op, ts, age, v.tolerance, ErrTimestampTooOld)
	}
	if ahead := sent.Sub(now); ahead > v.tolerance {
		return Verified{}, fmt.Errorf("%s: timestamp %d is %s ahead of now, tolerance %s: %w",
			op, ts, ahead, v.tolerance, ErrTimestampTooNew)
	}

	usable := false
	for _, s := range v.secrets {
		if !s.hasStandardKey() {
			continue
		}
		usable = true
		if len(macs) == 0 {
			break
		}
		var want [sha256.Size]byte
		s.key.stdMAC(msgID, ts, body, &want)
		for i := range macs {
			if hmac.Equal(macs[i][:], want[:]) {
				return Verified{Scheme: SchemeStandard, SecretID: s.id, MessageID: msgID, Timestamp: sent}, nil
			}
		}
	}
	if !usable {
		return Verified{}, fmt.Errorf("%s: no secret has a %s form: %w", op, StandardSecretPrefix, ErrNotStandardSecret)
	}
	return Verified{}, fmt.Errorf("%s: %w", op, ErrNoMatchingSignature)
}

// VerifyHex checks a hex-scheme request: the <Prefix>-Signature header of h
// against body, with every configured secret. It fails with
// ErrMissingHeader, ErrMalformedHeader (no line is 64 hexadecimal
// characters), or ErrNoMatchingSignature. Several header lines are each
// tried; a line that is not 64 hexadecimal characters is skipped, as
// VerifyStandard skips a malformed signature. The hex scheme has no
// timestamp, so VerifyHex does not stop replays.
func (v *Verifier) VerifyHex(h http.Header, body []byte) (Verified, error) {
	const op = "verify hex signature"
	if err := v.ready(op); err != nil {
		return Verified{}, err
	}
	lines := h[v.hexHeader]
	if isBlank(lines) {
		return Verified{}, fmt.Errorf("%s: header %s: %w", op, v.hexHeader, ErrMissingHeader)
	}
	var stack [2][sha256.Size]byte
	macs := stack[:0]
	for _, line := range lines {
		if mac, ok := decodeHexMAC(trimOWS(line)); ok {
			macs = append(macs, mac)
		}
	}
	if len(macs) == 0 {
		return Verified{}, fmt.Errorf("%s: header %s is not 64 hex digits: %w", op, v.hexHeader, ErrMalformedHeader)
	}
	for _, s := range v.secrets {
		var want [sha256.Size]byte
		s.key.hexMAC(body, &want)
		for i := range macs {
			if hmac.Equal(macs[i][:], want[:]) {
				return Verified{Scheme: SchemeHex, SecretID: s.id}, nil
			}
		}
	}
	return Verified{}, fmt.Errorf("%s: %w", op, ErrNoMatchingSignature)
}

// maxUnixSeconds bounds the timestamps handed to time.Unix.
const maxUnixSeconds = 1 << 62

// firstValue is h.Get for a key already in canonical form, without
// canonicalizing it again on every request.
func firstValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// isOWS reports HTTP optional white space: space or horizontal tab.
func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS removes leading and trailing spaces and tabs.
func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// isBlank reports whether every value is empty or white space.
func isBlank(values []string) bool {
	for _, s := range values {
		if trimOWS(s) != "" {
			return false
		}
	}
	return true
}

// parseUnixSeconds parses a webhook-timestamp: decimal digits only, no
// sign, fitting in an int64.
func parseUnixSeconds(s string) (int64, bool) {
	s = trimOWS(s)
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// decodeHexMAC decodes 64 hexadecimal digits of either case.
func decodeHexMAC(s string) (mac [sha256.Size]byte, ok bool) {
	if len(s) != 2*sha256.Size {
		return mac, false
	}
	for i := range mac {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return mac, false
		}
		mac[i] = hi<<4 | lo
	}
	return mac, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// sigEntry is one entry of a webhook-signature header: "<version>,<value>".
type sigEntry struct {
	version string
	value   string
	mac     [sha256.Size]byte // decoded value, for version v1 only
}

// strictStd is standard base64 that rejects non-zero padding bits, so a
// MAC has exactly one accepted spelling.
var strictStd = base64.StdEncoding.Strict()

// nextSigEntry reads the first entry of a webhook-signature header value
// and returns it with the rest of the value. more is false when only
// separators (spaces and tabs) remain. An entry that is not well formed is
// returned as err (ErrMalformedHeader), with more true and rest after it,
// so that the caller can skip it and read on.
//
// An entry is a version of ASCII letters and digits, a comma, and a value
// of printable ASCII other than space and comma; text from a second comma
// to the next separator is ignored, as the Standard Webhooks libraries do
// (so "v1,<mac>," from header lines a proxy joined with ", " still reads
// as one entry). A v1 value must be the standard, padded base64 of exactly
// 32 bytes.
func nextSigEntry(s string) (e sigEntry, rest string, more bool, err error) {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	if s == "" {
		return sigEntry{}, "", false, nil
	}
	end, comma, comma2 := 0, -1, -1
	for ; end < len(s) && !isOWS(s[end]); end++ {
		if s[end] == ',' {
			if comma < 0 {
				comma = end
			} else if comma2 < 0 {
				comma2 = end
			}
		}
	}
	rest = s[end:]
	if comma2 < 0 {
		comma2 = end
	}
	if comma <= 0 || comma == comma2-1 {
		return sigEntry{}, rest, true, fmt.Errorf("entry is not <version>,<signature>: %w", ErrMalformedHeader)
	}
	version, value := s[:comma], s[comma+1:comma2]
	for i := 0; i < len(version); i++ {
		if c := version[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return sigEntry{}, rest, true, fmt.Errorf("signature version is not letters and digits: %w", ErrMalformedHeader)
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c <= ' ' || c >= 0x7f {
			return sigEntry{}, rest, true, fmt.Errorf("signature is not printable ASCII: %w", ErrMalformedHeader)
		}
	}
	e = sigEntry{version: version, value: value}
	if version == standardVersion {
		if len(value) != standardSigB64Len {
			return sigEntry{}, rest, true, fmt.Errorf("v1 signature is not %d base64 characters: %w", standardSigB64Len, ErrMalformedHeader)
		}
		var src [standardSigB64Len]byte
		copy(src[:], value)
		var dst [sha256.Size + 1]byte
		n, derr := strictStd.Decode(dst[:], src[:])
		if derr != nil || n != sha256.Size {
			return sigEntry{}, rest, true, fmt.Errorf("v1 signature is not base64 of %d bytes: %w", sha256.Size, ErrMalformedHeader)
		}
		copy(e.mac[:], dst[:n])
	}
	return e, rest, true, nil
}

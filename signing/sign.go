package signing

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Scheme is a set of signature schemes; combine values with |.
type Scheme uint8

const (
	// SchemeHex is the classic hex body HMAC:
	//
	//	<Prefix>-Signature: <64 lowercase hex of HMAC-SHA256(key, body)>
	//	<Prefix>-Request-Id: <uuid>
	//
	// It carries no timestamp, so on its own it does not stop a replayed
	// request. Only the primary secret signs it.
	SchemeHex Scheme = 1 << iota

	// SchemeStandard is Standard Webhooks v1 (standardwebhooks.com):
	//
	//	webhook-id: <message id>
	//	webhook-timestamp: <unix seconds>
	//	webhook-signature: v1,<base64 of HMAC-SHA256(key, id "." timestamp "." body)> ...
	//
	// Every secret of the key ring signs it, space-separated.
	SchemeStandard
)

// DefaultSchemes is what a zero SignerConfig.Schemes or
// VerifierConfig.Schemes means: Standard Webhooks only, the scheme that
// resists replay. Turn SchemeHex on explicitly where receivers expect it.
const DefaultSchemes = SchemeStandard

// allSchemes is every defined Scheme bit.
const allSchemes = SchemeHex | SchemeStandard

// String returns "hex", "standard-webhooks", "hex|standard-webhooks", "none"
// for the empty set, or the number for unknown bits.
func (s Scheme) String() string {
	switch s {
	case 0:
		return "none"
	case SchemeHex:
		return "hex"
	case SchemeStandard:
		return "standard-webhooks"
	case SchemeHex | SchemeStandard:
		return "hex|standard-webhooks"
	default:
		return "Scheme(" + strconv.Itoa(int(s)) + ")"
	}
}

// Header names. net/http canonicalizes header names, so these are the
// canonical forms of the lower-case Standard Webhooks names webhook-id,
// webhook-timestamp and webhook-signature (HTTP header names are
// case-insensitive).
const (
	// HeaderWebhookID carries the Standard Webhooks message id.
	HeaderWebhookID = "Webhook-Id"
	// HeaderWebhookTimestamp carries the Standard Webhooks unix timestamp.
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	// HeaderWebhookSignature carries the Standard Webhooks signatures.
	HeaderWebhookSignature = "Webhook-Signature"
)

// Hex-scheme header names are a prefix followed by these suffixes.
const (
	hexSignatureSuffix = "-Signature"
	hexRequestIDSuffix = "-Request-Id"
)

const (
	// DefaultPrefix is the hex-scheme header prefix used when
	// SignerConfig.Prefix or VerifierConfig.Prefix is empty, giving the
	// headers Hookline-Signature and Hookline-Request-Id.
	DefaultPrefix = "Hookline"

	// MaxPrefixLen is the longest hex-scheme header prefix accepted.
	MaxPrefixLen = 64

	// MaxMessageIDLen is the longest message id Signer.Sign accepts.
	MaxMessageIDLen = 256
)

// standardVersion is the Standard Webhooks signature version this package
// produces and checks.
const standardVersion = "v1"

// standardSigB64Len is the length of the standard base64 of a SHA-256 MAC.
const standardSigB64Len = (sha256.Size + 2) / 3 * 4

// SignerConfig configures a Signer. The zero value of each field except
// Keys means its default.
type SignerConfig struct {
	// Keys holds the active secrets. Required: build it with NewKeyRing.
	// With SchemeStandard every secret in it must be a whsec_ secret.
	Keys KeyRing

	// Schemes selects the schemes Sign applies; SchemeHex|SchemeStandard
	// sends both. Zero means DefaultSchemes (SchemeStandard).
	Schemes Scheme

	// Prefix begins the hex-scheme header names: "<Prefix>-Signature" and
	// "<Prefix>-Request-Id", canonicalized (so "runflow" gives
	// Runflow-Signature). It must be 1 to MaxPrefixLen ASCII letters, digits
	// and hyphens, starting and ending with a letter or digit, and not
	// "Webhook" in any case (Webhook-Signature is the Standard Webhooks
	// header). Empty means DefaultPrefix. Always validated; used only when
	// Schemes includes SchemeHex.
	Prefix string
}

// Signer writes signature headers for outgoing webhook requests. It is
// deterministic: the message id, request id and timestamp are arguments,
// never read from a clock or a random source.
//
// Make one with NewSigner. A Signer is immutable and safe for concurrent
// use; to rotate secrets, make a new Signer from the new KeyRing and swap it
// in. The zero Signer, like a nil one, signs nothing: Sign returns
// ErrInvalidConfig.
type Signer struct {
	keys      KeyRing
	schemes   Scheme
	hexHeader string // canonical "<Prefix>-Signature"
	reqHeader string // canonical "<Prefix>-Request-Id"
}

// NewSigner validates cfg and returns a Signer. It fails with
// ErrInvalidConfig for an empty Keys or unknown Schemes bits, with
// ErrInvalidPrefix for a bad Prefix, and with ErrNotStandardSecret when
// Schemes includes SchemeStandard and a secret in Keys has no whsec_ form.
// The error names the field.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	schemes, err := resolveSchemes("SignerConfig", cfg.Schemes)
	if err != nil {
		return nil, err
	}
	if cfg.Keys.Len() == 0 {
		return nil, fmt.Errorf("signing: SignerConfig.Keys is empty; build it with NewKeyRing: %w", ErrInvalidConfig)
	}
	if schemes&SchemeStandard != 0 {
		for i, s := range cfg.Keys.secrets {
			if !s.hasStandardKey() {
				return nil, fmt.Errorf("signing: SignerConfig.Keys secret %d (id %s) cannot sign Standard Webhooks; use a %s secret (see GenerateSecret) or set Schemes to SchemeHex: %w",
					i, s.id, StandardSecretPrefix, ErrNotStandardSecret)
			}
		}
	}
	sig, req, err := hexHeaderNames("SignerConfig", cfg.Prefix)
	if err != nil {
		return nil, err
	}
	return &Signer{keys: cfg.Keys, schemes: schemes, hexHeader: sig, reqHeader: req}, nil
}

// Keys returns the key ring the Signer signs with. Record
// Keys().Primary().ID() as the secret that signed.
func (s *Signer) Keys() KeyRing {
	if s == nil {
		return KeyRing{}
	}
	return s.keys
}

// resolveSchemes applies the default and rejects unknown bits.
func resolveSchemes(config string, s Scheme) (Scheme, error) {
	if s == 0 {
		return DefaultSchemes, nil
	}
	if s&^allSchemes != 0 {
		return 0, fmt.Errorf("signing: %s.Schemes has unknown bits (%s); use SchemeHex, SchemeStandard or both: %w", config, s, ErrInvalidConfig)
	}
	return s, nil
}

// hexHeaderNames validates prefix and returns the canonical hex-scheme
// signature and request-id header names.
func hexHeaderNames(config, prefix string) (sig, req string, err error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !validPrefix(prefix) {
		return "", "", fmt.Errorf("signing: %s.Prefix %q must be 1 to %d ASCII letters, digits and inner hyphens, like %q: %w",
			config, truncate(prefix, MaxPrefixLen+1), MaxPrefixLen, DefaultPrefix, ErrInvalidPrefix)
	}
	sig = textproto.CanonicalMIMEHeaderKey(prefix + hexSignatureSuffix)
	req = textproto.CanonicalMIMEHeaderKey(prefix + hexRequestIDSuffix)
	if sig == HeaderWebhookSignature {
		// "Webhook" would make the hex signature overwrite, or be read
		// as, the Standard Webhooks one.
		return "", "", fmt.Errorf("signing: %s.Prefix %q would name the hex signature header %s, which is the Standard Webhooks signature header; choose another prefix: %w",
			config, prefix, sig, ErrInvalidPrefix)
	}
	return sig, req, nil
}

func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > MaxPrefixLen || p[0] == '-' || p[len(p)-1] == '-' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Sign sets the signature headers of the configured schemes on h, replacing
// any earlier values, for one attempt to send body:
//
//   - SchemeHex: <Prefix>-Signature, the primary secret's hex signature of
//     body, and <Prefix>-Request-Id, requestID.
//   - SchemeStandard: Webhook-Id, msgID; Webhook-Timestamp, ts in unix
//     seconds; Webhook-Signature, one "v1,<base64>" entry per secret of
//     the key ring, primary first, space-separated.
//
// body must be exactly the bytes that will be sent. msgID and ts are
// checked only when SchemeStandard is on; msgID should stay the same on
// every retry of one message. Sign fails with ErrInvalidMessage for a nil h,
// a msgID that is empty, longer than MaxMessageIDLen or holds bytes other
// than printable ASCII without space and dot (the specification asks for no
// dots: see checkMessageID), or a zero or pre-1970 ts; it then
// leaves h unchanged. It is safe for concurrent use with distinct h.
func (s *Signer) Sign(h http.Header, msgID string, requestID uuid.UUID, ts time.Time, body []byte) error {
	if s == nil || s.keys.Len() == 0 {
		return fmt.Errorf("sign: Signer not made by NewSigner: %w", ErrInvalidConfig)
	}
	if h == nil {
		return fmt.Errorf("sign: nil http.Header: %w", ErrInvalidMessage)
	}
	hexOn := s.schemes&SchemeHex != 0
	stdOn := s.schemes&SchemeStandard != 0
	var unix int64
	n := 0
	if hexOn {
		n += 2
	}
	if stdOn {
		if err := checkMessageID(msgID); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		unix = ts.Unix()
		if ts.IsZero() || unix < 0 {
			return fmt.Errorf("sign: timestamp %s is zero or before 1970: %w", ts.UTC().Format(time.RFC3339), ErrInvalidMessage)
		}
		n += 3
	}
	// One backing array for every header value; each header gets a
	// capacity-limited slice of it, so an append by the caller reallocates
	// instead of overwriting a neighbour.
	vals := make([]string, n)
	i := 0
	if hexOn {
		var sum [sha256.Size]byte
		s.keys.secrets[0].key.hexMAC(body, &sum)
		var out [2 * sha256.Size]byte
		encodeHexLower(out[:], sum[:])
		vals[0] = string(out[:])
		vals[1] = requestID.String()
		h[s.hexHeader] = vals[0:1:1]
		h[s.reqHeader] = vals[1:2:2]
		i = 2
	}
	if stdOn {
		vals[i] = msgID
		vals[i+1] = strconv.FormatInt(unix, 10)
		vals[i+2] = s.standardSignatures(msgID, unix, body)
		h[HeaderWebhookID] = vals[i : i+1 : i+1]
		h[HeaderWebhookTimestamp] = vals[i+1 : i+2 : i+2]
		h[HeaderWebhookSignature] = vals[i+2 : i+3 : i+3]
	}
	return nil
}

// standardSignatures returns the webhook-signature value: one v1 entry per
// secret, primary first, space-separated.
func (s *Signer) standardSignatures(msgID string, ts int64, body []byte) string {
	const entryLen = len(standardVersion) + 1 + standardSigB64Len
	secrets := s.keys.secrets
	var b strings.Builder
	b.Grow(len(secrets)*(entryLen+1) - 1)
	for i, sec := range secrets {
		var sum [sha256.Size]byte
		sec.key.stdMAC(msgID, ts, body, &sum)
		var out [entryLen + 1]byte
		out[0] = ' '
		n := copy(out[1:], standardVersion+",")
		base64.StdEncoding.Encode(out[1+n:], sum[:])
		if i == 0 {
			b.Write(out[1:])
		} else {
			b.Write(out[:])
		}
	}
	return b.String()
}

// checkMessageID enforces what Sign accepts as a message id.
func checkMessageID(id string) error {
	if id == "" {
		return fmt.Errorf("empty message id: %w", ErrInvalidMessage)
	}
	if len(id) > MaxMessageIDLen {
		return fmt.Errorf("message id longer than %d bytes: %w", MaxMessageIDLen, ErrInvalidMessage)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("message id byte %d is not printable ASCII without space: %w", i, ErrInvalidMessage)
		}
		if id[i] == '.' {
			// The signed content is id.timestamp.body: an id "a.<digits>"
			// would let the same signature verify as id "a" at timestamp
			// <digits> (any time chosen) over a body prefixed with the real
			// timestamp. The Standard Webhooks specification asks that ids never
			// include one.
			return fmt.Errorf("message id byte %d is a dot, which would let the signed content be split differently: %w", i, ErrInvalidMessage)
		}
	}
	return nil
}

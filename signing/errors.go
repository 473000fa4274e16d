package signing

import "errors"

// Verification errors. The Verifier methods return them wrapped with detail
// (which header, by how much a timestamp missed the window); test for them
// with errors.Is. None of them, wrapped or not, ever contains key material.
var (
	// ErrMissingHeader means a header the scheme needs is absent or empty:
	// webhook-id, webhook-timestamp or webhook-signature for Standard
	// Webhooks, <Prefix>-Signature for the hex scheme. Verifier.Verify also
	// returns it when no header of any accepted scheme is present.
	ErrMissingHeader = errors.New("signing: missing signature header")

	// ErrMalformedHeader means a signature header is present but cannot be
	// parsed: a webhook-timestamp that is not a non-negative decimal integer,
	// a webhook-signature none of whose entries is well formed (an entry is
	// "<version>,<value>", and a v1 value the standard base64 of 32 bytes;
	// malformed entries beside a well-formed one are skipped), or
	// <Prefix>-Signature lines none of which is 64 hexadecimal characters.
	ErrMalformedHeader = errors.New("signing: malformed signature header")

	// ErrNoMatchingSignature means the headers were well formed but no
	// signature in them was made by any of the verifier's secrets over these
	// exact bytes: the body, message id or timestamp was changed, or the
	// sender used a secret the receiver does not hold. A header holding only
	// entries of unknown versions (for example "v1a,...") also ends here.
	ErrNoMatchingSignature = errors.New("signing: no matching signature")

	// ErrTimestampTooOld means the webhook-timestamp lies further in the
	// past than the verifier's tolerance allows: a stale or replayed message.
	ErrTimestampTooOld = errors.New("signing: message timestamp too old")

	// ErrTimestampTooNew means the webhook-timestamp lies further in the
	// future than the verifier's tolerance allows: a clock far off, or a
	// message forged ahead of time.
	ErrTimestampTooNew = errors.New("signing: message timestamp too new")
)

// Secret and key ring errors, returned by NewSecret, NewKeyRing and by the
// constructors and methods that check the secrets they are given.
var (
	// ErrEmptySecret means a secret has no key material: NewSecret got an
	// empty string, or a zero Secret (one not made by NewSecret) was used.
	ErrEmptySecret = errors.New("signing: empty secret")

	// ErrInvalidSecret means NewSecret rejected a non-empty secret string:
	// it has leading or trailing white space or an ASCII control character,
	// its whsec_ part is not valid base64 or decodes to nothing, or the key
	// is shorter than 112 bits while the program runs in FIPS 140-only mode.
	ErrInvalidSecret = errors.New("signing: invalid secret")

	// ErrNotStandardSecret means a secret without the whsec_ prefix was used
	// for Standard Webhooks, which needs the base64-decoded key of a
	// "whsec_<base64>" secret. Such a secret can sign and verify only the hex
	// scheme.
	ErrNotStandardSecret = errors.New("signing: secret is not a whsec_ secret")

	// ErrDuplicateSecretID means NewKeyRing was given two secrets with the
	// same ID.
	ErrDuplicateSecretID = errors.New("signing: duplicate secret id")
)

// Configuration and argument errors.
var (
	// ErrInvalidPrefix means a hex-scheme header prefix is not 1 to
	// MaxPrefixLen ASCII letters, digits and inner hyphens, so it could not
	// safely begin an HTTP header name.
	ErrInvalidPrefix = errors.New("signing: invalid header prefix")

	// ErrInvalidConfig means a SignerConfig or VerifierConfig was rejected
	// (the wrapping error names the field and how to fix it), or a method
	// was called on a nil or zero Signer or Verifier instead of one made by
	// NewSigner or NewVerifier.
	ErrInvalidConfig = errors.New("signing: invalid configuration")

	// ErrInvalidMessage means Signer.Sign was given something it will not
	// sign: a nil header map, a message id that is empty, longer than
	// MaxMessageIDLen or not printable ASCII without spaces and dots, or a zero or
	// pre-1970 timestamp.
	ErrInvalidMessage = errors.New("signing: invalid message")
)

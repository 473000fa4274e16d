// Package signing signs outgoing webhook requests and verifies incoming
// ones, with two schemes that can be sent together.
//
// # Schemes
//
// SchemeHex, the classic contract, is one header with the hex HMAC-SHA256
// of the raw body, and one with a request id for log correlation:
//
//	Hookline-Signature: 5b0f...e3 (64 lowercase hex characters)
//	Hookline-Request-Id: 0190a5b4-7c1e-7d1a-9b7e-3c1f0c2d4e5f
//
// The header prefix ("Hookline") is configurable, for example "Runflow".
//
// SchemeStandard is Standard Webhooks v1 (https://www.standardwebhooks.com):
//
//	webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek
//	webhook-timestamp: 1614265330
//	webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
//
// The signature is the base64 of HMAC-SHA256(key, id + "." + timestamp +
// "." + body). It binds the id and the time as well as the body, so a
// receiver can refuse stale messages and replays; it is the default.
// During a secret rotation every active secret signs, and the entries are
// space-separated.
//
// # Secrets
//
// A Secret is an id (recorded as the secret that signed a delivery) and a
// secret string. Standard Webhooks secrets are "whsec_" followed by the
// base64 of the key; GenerateSecret makes one. For the hex scheme the key
// is the secret string's bytes as given, prefix included; for Standard
// Webhooks it is the base64-decoded part after "whsec_", and a string
// without that prefix is refused with ErrNotStandardSecret. One whsec_
// secret thus serves both schemes.
//
// Key material never appears in fmt output of any verb, String, GoString,
// JSON, slog records or errors: only the id and "[redacted]" do.
//
// # Sender
//
// Build a KeyRing of the active secrets and a Signer once, then sign every
// attempt. The message id and timestamp are arguments, so signing is
// deterministic and a test can fix the clock:
//
//	secret, err := signing.NewSecret(secretID, os.Getenv("WEBHOOK_SECRET"))
//	if err != nil { ... }
//	ring, err := signing.NewKeyRing(secret)
//	if err != nil { ... }
//	signer, err := signing.NewSigner(signing.SignerConfig{
//		Keys:    ring,
//		Schemes: signing.SchemeHex | signing.SchemeStandard,
//		Prefix:  "Runflow",
//	})
//	if err != nil { ... }
//
//	// For each attempt, with the exact bytes that will be sent:
//	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
//	if err != nil { ... }
//	err = signer.Sign(req.Header, deliveryID.String(), attemptID, clock.Now(), body)
//
// Keep the message id the same on every retry of one message, so a receiver
// can drop duplicates. Sign reuses keyed HMAC states, so it costs no more
// than a bare crypto/hmac computation.
//
// To rotate: sign with NewKeyRing(old, new) until receivers hold the new
// secret, then NewKeyRing(new, old), then NewKeyRing(new). Receivers
// holding either secret accept Standard Webhooks messages throughout. The
// hex scheme carries one signature, by the primary secret.
//
// # Receiver
//
// Wrap the webhook handler in a Verifier's Middleware. It reads the body
// under a size cap (1 MiB by default; larger is 413), verifies it (any
// verification failure is a bare 401; see Verifier.Middleware for the
// rest), and hands the exact bytes on:
//
//	secret, err := signing.NewSecret(uuid.Nil, os.Getenv("WEBHOOK_SECRET"))
//	if err != nil { ... }
//	verifier, err := signing.NewVerifier(signing.VerifierConfig{
//		Secrets: []signing.Secret{secret},
//	})
//	if err != nil { ... }
//	mux.Handle("POST /webhooks", verifier.Middleware(http.HandlerFunc(
//		func(w http.ResponseWriter, r *http.Request) {
//			body, _ := io.ReadAll(r.Body) // the verified bytes
//			vd, _ := signing.VerifiedFromContext(r.Context())
//			// vd.MessageID identifies duplicates.
//		})))
//
// Verifier.Verify, VerifyStandard and VerifyHex check a header and a body
// directly and return errors to test with errors.Is: ErrMissingHeader,
// ErrMalformedHeader, ErrTimestampTooOld, ErrTimestampTooNew and
// ErrNoMatchingSignature. Comparisons are constant-time. Standard Webhooks
// timestamps must lie within VerifierConfig.Tolerance (5 minutes by
// default) of VerifierConfig.Now, before or after. A Verifier accepts only
// Standard Webhooks unless VerifierConfig.Schemes adds SchemeHex, because a
// hex signature alone does not stop a replayed request.
package signing

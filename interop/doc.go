// Package interop holds no code, only tests. They prove that hookline's wire
// contract holds against implementations hookline did not write:
//
//   - The npm package standardwebhooks (the Standard Webhooks reference
//     library for JavaScript, version pinned in package.json and
//     package-lock.json) verifies Standard Webhooks signatures made by
//     signing.Signer, including every secret of a rotation on its own, and
//     rejects them when the body, message id, timestamp or signature is
//     changed. In the other direction signing.Verifier accepts the package's
//     signatures, which are byte-identical to Secret.SignStandard's.
//   - Receivers written from the classic hex algorithm, in Node
//     (crypto.createHmac and crypto.timingSafeEqual) and in Python
//     (hmac.new and hmac.compare_digest), accept the hex scheme's signatures
//     under a custom header prefix and reject tampered ones.
//   - A Python receiver reads frozen payloads (payload.Freeze) with
//     json.loads, round-trips created_at and completed_at through
//     datetime.fromisoformat and isoformat() to the identical strings and
//     instants, and re-serializes the payload with
//     json.dumps(separators=(",", ":"), ensure_ascii=False) to the exact
//     frozen bytes, key order of raw metadata included.
//
// The tests run with go test ./... (and so in CI). They need node, npm and
// python3 on PATH; without them they skip with a message, except under
// CI=true, where they fail. The first run installs the pinned package into
// interop/node_modules with npm ci (again whenever package-lock.json
// changes); an unreachable registry skips, or fails under CI=true.
//
// # Known differences
//
// These are differences between hookline and the independent
// implementations that do not affect hookline's deliveries; the tests pin
// each one down so a change is noticed:
//
//   - standardwebhooks 1.1.1 turns a Buffer body into a JavaScript string
//     (UTF-8, invalid bytes replaced by U+FFFD) before signing or
//     verifying, so it cannot verify a body that is not valid UTF-8, and
//     signs the replaced bytes instead of the ones it was given. hookline
//     signs raw bytes; frozen payloads are always valid UTF-8.
//   - standardwebhooks accepts a secret without the whsec_ prefix as bare
//     base64; hookline uses such a string only as a hex-scheme key and
//     refuses it for Standard Webhooks (ErrNotStandardSecret). Give hookline
//     "whsec_" followed by the same base64.
//   - Python's json.dumps writes U+2028 and U+2029 raw where hookline, like
//     encoding/json, escapes them in strings it encodes; writes floats below
//     1e-4 with an exponent of at least two digits (1e-05 and 1e-07 where
//     Go writes 0.00001 and 1e-7); and normalizes what hookline keeps
//     verbatim from raw JSON (escapes such as \u00e9 and \/, numbers such
//     as 1.50 or 1E2, duplicate keys, of which it keeps the last as
//     encoding/json does). Python reads the same values from such
//     payloads; only its re-serialized bytes differ. Everything else
//     (key order, '<', '>' and '&' unescaped, control characters, big
//     integers) comes back byte for byte.
package interop

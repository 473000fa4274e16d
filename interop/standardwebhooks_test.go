package interop

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/signing"
)

// npmPackage is the independent Standard Webhooks implementation these
// tests run against, pinned in package.json and package-lock.json.
const npmPackage = "standardwebhooks"

// Messages the npm package throws, by class name and message.
const (
	jsVerificationError = "WebhookVerificationError"
	jsNoMatch           = "No matching signature found"
)

// swCase is one message for sw_verify.mjs: a body and headers signed by
// hookline, checked once with each secret on its own.
type swCase struct {
	Name      string            `json:"name"`
	Body      []byte            `json:"body"`
	Headers   map[string]string `json:"headers"`
	Secrets   []string          `json:"secrets"`
	ParseJSON bool              `json:"parse_json"`

	want []swWant // one per secret; not sent
}

// swWant is what the Node receiver must answer for one secret.
type swWant struct {
	ok      bool
	errName string // for a rejection: the JavaScript error class
	errMsg  string // and a part of its message
	why     string
}

type swVerifyOutput struct {
	Version string `json:"version"`
	Results []struct {
		Name   string `json:"name"`
		Checks []struct {
			OK        bool   `json:"ok"`
			ErrorName string `json:"error_name"`
			Error     string `json:"error"`
			Parsed    any    `json:"parsed"`
		} `json:"checks"`
	} `json:"results"`
}

// TestStandardWebhooksVerifiesHookline signs random bodies with hookline's
// Signer and has the npm standardwebhooks package verify them in one node
// process: every secret of a key ring must verify on its own (rotation),
// and a changed body, message id, timestamp or signature, or a secret
// that did not sign, must be rejected.
func TestStandardWebhooksVerifiesHookline(t *testing.T) {
	t.Parallel()
	testenv.LookTool(t, "node")
	requireNodeModules(t)
	rng := newRand(t, 1)
	// The package checks the timestamp against its own Date.now() with a
	// fixed 5-minute tolerance, so sign at one fixed instant near now.
	now := time.Now().Truncate(time.Second)

	const n = 50
	var cases []swCase
	for i := range n {
		var body []byte
		kind := "random"
		switch i {
		case 0:
			kind, body = "empty", []byte{}
		case 1:
			kind, body = "64KiB", bigBody(rng, 64<<10)
		case 2:
			kind, body = "frozen", frozenSample(t)
		case 3:
			kind, body = "non-ascii", []byte("Grüße, 世界 😀 𝄞 \u2028\u2029 <>&\"\\ \x00\x7f")
		default:
			body = randomBody(rng)
		}
		secrets := []string{signing.GenerateSecret()}
		switch {
		case i%10 == 4:
			kind += "/rotation"
			secrets = append(secrets, signing.GenerateSecret())
		case i%10 == 9:
			kind += "/rotation-of-3"
			secrets = append(secrets, signing.GenerateSecret(), signing.GenerateSecret())
		case i%5 == 2:
			// Key lengths around SHA-256's 64-byte block, where HMAC
			// hashes long keys first, and tiny ones.
			keyLen := []int{1, 16, 24, 63, 64, 65, 100}[rng.IntN(7)]
			kind += "/key-" + strconv.Itoa(keyLen)
			secrets = []string{whsecOfLen(rng, keyLen)}
		}
		msgID := randomMessageID(rng)
		signer := mustSigner(t, signing.SignerConfig{Schemes: signing.SchemeStandard}, secrets...)
		h := http.Header{}
		require.NoError(t, signer.Sign(h, msgID, uuid.Nil, now, body))

		name := fmt.Sprintf("%02d-%s", i, kind)
		good := swCase{Name: name, Body: body, Headers: flatHeader(h), ParseJSON: i == 2}
		for _, s := range secrets {
			good.Secrets = append(good.Secrets, s)
			good.want = append(good.want, swWant{ok: true, why: "a secret that signed must verify on its own"})
		}
		good.Secrets = append(good.Secrets, signing.GenerateSecret())
		good.want = append(good.want, swWant{errName: jsVerificationError, errMsg: jsNoMatch, why: "a secret that did not sign must not verify"})
		cases = append(cases, good)

		bad := swCase{Name: name, Body: body, Headers: flatHeader(h), Secrets: secrets}
		switch i % 4 {
		case 0:
			bad.Name += "/tampered-body"
			bad.Body = flipASCIIBit(rng, body)
		case 1:
			bad.Name += "/tampered-id"
			bad.Headers[signing.HeaderWebhookID] = msgID + "x"
		case 2:
			bad.Name += "/tampered-timestamp"
			bad.Headers[signing.HeaderWebhookTimestamp] = strconv.FormatInt(now.Unix()+1, 10)
		case 3:
			bad.Name += "/tampered-signature"
			bad.Headers[signing.HeaderWebhookSignature] = flipBase64Char(rng, h.Get(signing.HeaderWebhookSignature))
		}
		for range secrets {
			bad.want = append(bad.want, swWant{errName: jsVerificationError, errMsg: jsNoMatch, why: "a changed message must not verify"})
		}
		cases = append(cases, bad)
	}

	{
		// hookline accepts a whsec_ secret whose base64 is unpadded (the
		// form some tools print), and so does the package: both spellings
		// of one key verify. (The package refuses unpadded base64 shorter
		// than 4 characters, keys of 1 or 2 bytes, which no one uses.)
		key := make([]byte, 32)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		unpadded := signing.StandardSecretPrefix + base64.RawStdEncoding.EncodeToString(key)
		padded := signing.StandardSecretPrefix + base64.StdEncoding.EncodeToString(key)
		body := []byte(`{"unpadded":true}`)
		h := http.Header{}
		require.NoError(t, mustSigner(t, signing.SignerConfig{}, unpadded).Sign(h, "msg_unpadded", uuid.Nil, now, body))
		cases = append(cases, swCase{
			Name: "unpadded-secret", Body: body, Headers: flatHeader(h), Secrets: []string{unpadded, padded},
			want: []swWant{
				{ok: true, why: "the package must accept the unpadded whsec_ secret hookline signed with"},
				{ok: true, why: "the padded spelling of the same key must verify"},
			},
		})
	}

	{
		// webhook-signature values shaped by a proxy or another sender: a
		// malformed entry beside the right one, header lines joined with
		// ", ". The package skips what it cannot read, and hookline's
		// Verifier must agree.
		secret := signing.GenerateSecret()
		body := []byte(`{"odd":"headers"}`)
		h := http.Header{}
		require.NoError(t, mustSigner(t, signing.SignerConfig{}, secret).Sign(h, "msg_odd_headers", uuid.Nil, now, body))
		sig := h.Get(signing.HeaderWebhookSignature)
		wrong := "v1," + base64.StdEncoding.EncodeToString(make([]byte, 32))
		v, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{mustSecret(t, secret)}, Now: func() time.Time { return now }})
		require.NoError(t, err)
		for _, odd := range []struct{ name, value string }{
			{"malformed-after", sig + " v1,abc"},
			{"malformed-before", "v1,abc " + sig},
			{"joined-lines", wrong + ", " + sig},
			{"joined-lines-right-first", sig + ", " + wrong},
		} {
			oh := h.Clone()
			oh.Set(signing.HeaderWebhookSignature, odd.value)
			_, err := v.VerifyStandard(oh, body)
			require.NoError(t, err, "hookline must verify %s: %q", odd.name, odd.value)
			cases = append(cases, swCase{
				Name: "odd-header/" + odd.name, Body: body, Headers: flatHeader(oh), Secrets: []string{secret},
				want: []swWant{{ok: true, why: "the package skips entries it cannot read"}},
			})
		}
	}

	// A documented difference (see doc.go), pinned so a change is noticed.
	{
		// The package decodes a Buffer body as UTF-8 (invalid bytes become
		// U+FFFD) before computing the MAC, so it cannot verify bytes that
		// are not UTF-8. hookline signs the raw bytes. Frozen payloads are
		// always valid UTF-8, so no delivery is affected.
		body := []byte("{\"a\":\"\xff\xfe\"}")
		secret := signing.GenerateSecret()
		h := http.Header{}
		require.NoError(t, mustSigner(t, signing.SignerConfig{}, secret).Sign(h, "msg_invalid_utf8", uuid.Nil, now, body))
		cases = append(cases, swCase{
			Name: "documented/invalid-utf8-body", Body: body, Headers: flatHeader(h), Secrets: []string{secret},
			want: []swWant{{errName: jsVerificationError, errMsg: jsNoMatch, why: "standardwebhooks verifies the UTF-8 decoding of the body, not its bytes"}},
		})
	}
	var out swVerifyOutput
	runNode(t, "sw_verify.mjs", map[string]any{"cases": cases}, &out)
	require.Equal(t, pinnedVersion(t, npmPackage), out.Version, "node loaded a different %s than package-lock.json pins", npmPackage)
	require.Len(t, out.Results, len(cases))

	verified, rejected := 0, 0
	for i, c := range cases {
		got := out.Results[i]
		require.Equal(t, c.Name, got.Name)
		require.Len(t, got.Checks, len(c.want), c.Name)
		for j, w := range c.want {
			g := got.Checks[j]
			msg := fmt.Sprintf("case %s, secret %d (%s): %s; node said ok=%v %s: %s",
				c.Name, j, c.Secrets[j], w.why, g.OK, g.ErrorName, g.Error)
			if w.ok {
				if assert.True(t, g.OK, msg) {
					verified++
				}
				if c.ParseJSON && g.OK {
					var want any
					require.NoError(t, json.Unmarshal(c.Body, &want))
					assert.Equal(t, want, g.Parsed, "case %s: the package must return the parsed payload", c.Name)
				}
				continue
			}
			if assert.False(t, g.OK, msg) &&
				assert.Equal(t, w.errName, g.ErrorName, msg) &&
				assert.Contains(t, g.Error, w.errMsg, msg) {
				rejected++
			}
		}
	}
	t.Logf("%s %s: %d signatures verified, %d rejected as expected", npmPackage, out.Version, verified, rejected)
}

// flipBase64Char changes one character inside the base64 of every v1
// entry of a webhook-signature value, away from the padding, so each
// decoded MAC changes. Its random draws do not depend on the signature, so
// a seed replays the same cases whatever the secrets.
func flipBase64Char(rng *rand.Rand, sig string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	entries := strings.Fields(sig)
	for k, e := range entries {
		b := []byte(e)
		i := len("v1,") + rng.IntN(40)
		shift := 1 + rng.IntN(len(alphabet)-1)
		b[i] = alphabet[(strings.IndexByte(alphabet, b[i])+shift)%len(alphabet)]
		entries[k] = string(b)
	}
	return strings.Join(entries, " ")
}

// swSignCase is one message for sw_sign.mjs to sign.
type swSignCase struct {
	Name    string   `json:"name"`
	Secrets []string `json:"secrets"`
	MsgID   string   `json:"msg_id"`
	TimeMS  int64    `json:"time_ms"`
	Body    []byte   `json:"body"`
}

type swSignOutput struct {
	Version string `json:"version"`
	Results []struct {
		Name       string            `json:"name"`
		Signatures []string          `json:"signatures"`
		Headers    map[string]string `json:"headers"`
	} `json:"results"`
}

// TestHooklineVerifiesStandardWebhooks is the reverse direction: the npm
// standardwebhooks package signs (Webhook.sign), and hookline's Verifier,
// its clock set to the signing time, must accept the headers a Node sender
// writes, with each secret of a rotation on its own. The package's
// signatures must also be byte-identical to Secret.SignStandard's.
func TestHooklineVerifiesStandardWebhooks(t *testing.T) {
	t.Parallel()
	testenv.LookTool(t, "node")
	requireNodeModules(t)
	rng := newRand(t, 2)

	const n = 50
	var cases []swSignCase
	for i := range n {
		c := swSignCase{
			Name:    fmt.Sprintf("%02d", i),
			Secrets: []string{signing.GenerateSecret()},
			MsgID:   randomMessageID(rng),
			// Any instant from 2001 to 2096, with milliseconds that the
			// package floors away.
			TimeMS: 1_000_000_000_000 + rng.Int64N(3_000_000_000_000),
		}
		switch i {
		case 0:
			c.Name += "-empty"
			c.Body = []byte{}
		case 1:
			c.Name += "-64KiB"
			c.Body = bigBody(rng, 64<<10)
		case 2:
			c.Name += "-frozen"
			c.Body = frozenSample(t)
		case 3:
			c.Name += "-epoch"
			c.TimeMS = 999 // webhook-timestamp: 0
		default:
			c.Body = randomBody(rng)
		}
		switch {
		case i%8 == 5:
			c.Name += "-rotation"
			c.Secrets = append(c.Secrets, signing.GenerateSecret())
		case i%5 == 1:
			keyLen := []int{1, 16, 24, 63, 64, 65, 100}[rng.IntN(7)]
			c.Name += "-key-" + strconv.Itoa(keyLen)
			c.Secrets = []string{whsecOfLen(rng, keyLen)}
		}
		cases = append(cases, c)
	}
	// Documented differences (see doc.go).
	invalidUTF8 := swSignCase{Name: "documented-invalid-utf8", Secrets: []string{signing.GenerateSecret()},
		MsgID: "msg_invalid_utf8", TimeMS: 1_780_000_000_000, Body: []byte("a\xff\xfeb")}
	bareKey := make([]byte, 32)
	for i := range bareKey {
		bareKey[i] = byte(rng.Uint32())
	}
	bare := base64.StdEncoding.EncodeToString(bareKey)
	bareSecret := swSignCase{Name: "documented-bare-base64-secret", Secrets: []string{bare},
		MsgID: "msg_bare", TimeMS: 1_780_000_000_000, Body: []byte(`{"bare":true}`)}
	cases = append(cases, invalidUTF8, bareSecret)

	var out swSignOutput
	runNode(t, "sw_sign.mjs", map[string]any{"cases": cases}, &out)
	require.Equal(t, pinnedVersion(t, npmPackage), out.Version, "node loaded a different %s than package-lock.json pins", npmPackage)
	require.Len(t, out.Results, len(cases))

	verify := func(sec signing.Secret, at time.Time, h http.Header, body []byte) (signing.Verified, error) {
		v, err := signing.NewVerifier(signing.VerifierConfig{
			Secrets: []signing.Secret{sec},
			Now:     func() time.Time { return at },
		})
		require.NoError(t, err)
		return v.Verify(h, body)
	}

	verified := 0
	for i, c := range cases[:n] {
		got := out.Results[i]
		require.Equal(t, c.Name, got.Name)
		at := time.UnixMilli(c.TimeMS)
		ts := c.TimeMS / 1000
		// net/http canonicalizes the lower-case names a Node sender writes.
		h := http.Header{}
		for k, v := range got.Headers {
			h.Add(k, v)
		}
		require.Equal(t, strconv.FormatInt(ts, 10), h.Get(signing.HeaderWebhookTimestamp), "case %s", c.Name)

		for j, s := range c.Secrets {
			sec := mustSecret(t, s)
			want, err := sec.SignStandard(c.MsgID, ts, c.Body)
			require.NoError(t, err)
			assert.Equal(t, want, got.Signatures[j], "case %s secret %d: the package's signature must equal Secret.SignStandard's", c.Name, j)

			vd, err := verify(sec, at, h, c.Body)
			if !assert.NoError(t, err, "case %s secret %d (%s): hookline must verify the package's signature", c.Name, j, s) {
				continue
			}
			verified++
			assert.Equal(t, signing.SchemeStandard, vd.Scheme)
			assert.Equal(t, sec.ID(), vd.SecretID)
			assert.Equal(t, c.MsgID, vd.MessageID)
			assert.True(t, vd.Timestamp.Equal(time.Unix(ts, 0)), "case %s: timestamp %s", c.Name, vd.Timestamp)

			_, err = verify(sec, at, h, flipASCIIBit(rng, c.Body))
			assert.ErrorIs(t, err, signing.ErrNoMatchingSignature, "case %s: a changed body must not verify", c.Name)
		}
		_, err := verify(mustSecret(t, signing.GenerateSecret()), at, h, c.Body)
		assert.ErrorIs(t, err, signing.ErrNoMatchingSignature, "case %s: a secret that did not sign must not verify", c.Name)
	}

	// The package signed the UTF-8 decoding of "a\xff\xfeb", with each
	// invalid byte replaced by U+FFFD, not the bytes it was given.
	{
		got := out.Results[n]
		require.Equal(t, invalidUTF8.Name, got.Name)
		h := http.Header{}
		for k, v := range got.Headers {
			h.Add(k, v)
		}
		sec := mustSecret(t, invalidUTF8.Secrets[0])
		at := time.UnixMilli(invalidUTF8.TimeMS)
		_, err := verify(sec, at, h, invalidUTF8.Body)
		assert.ErrorIs(t, err, signing.ErrNoMatchingSignature, "standardwebhooks is expected not to sign invalid UTF-8 bytes as given")
		_, err = verify(sec, at, h, []byte("a\ufffd\ufffdb"))
		assert.NoError(t, err, "standardwebhooks is expected to sign the body with invalid bytes replaced by U+FFFD")
	}
	// The package takes a secret without the whsec_ prefix as bare base64;
	// hookline does not (for Standard Webhooks it needs the prefix), and
	// verifies once the prefix is added.
	{
		got := out.Results[n+1]
		require.Equal(t, bareSecret.Name, got.Name)
		h := http.Header{}
		for k, v := range got.Headers {
			h.Add(k, v)
		}
		_, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{mustSecret(t, bare)}})
		assert.ErrorIs(t, err, signing.ErrNotStandardSecret, "hookline must refuse a secret without whsec_ for Standard Webhooks")
		_, err = verify(mustSecret(t, signing.StandardSecretPrefix+bare), time.UnixMilli(bareSecret.TimeMS), h, bareSecret.Body)
		assert.NoError(t, err, "whsec_ plus the package's bare base64 secret must verify")
	}
	t.Logf("hookline verified %d signatures made by %s %s", verified, npmPackage, out.Version)
}

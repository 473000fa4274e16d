package signing

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// signatureHeaderSeeds are webhook-signature values, good and bad, that
// run as ordinary tests and seed the fuzzer.
var signatureHeaderSeeds = []string{
	"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	"v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	"  \tv1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\t  ",
	"v2,anything-goes,even,commas",
	"",
	" ",
	"v1",
	"v1,",
	",abc",
	"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
	"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",
	"v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	"v1,!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
	"v-1,abc",
	"v1,abc\x00",
	"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=,v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	"ü,ü",
}

// FuzzParseSignatureHeader checks that parsing never panics, fails only
// with ErrMalformedHeader, and that what it accepts formats back to a value
// that parses to the same entries (and formats to the same text).
func FuzzParseSignatureHeader(f *testing.F) {
	for _, s := range signatureHeaderSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := parseSignatureHeader(s)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformedHeader)
			require.Nil(t, entries)
			return
		}
		require.NotEmpty(t, entries)
		out := formatSignatureHeader(entries)
		again, err := parseSignatureHeader(out)
		require.NoError(t, err, "formatted %q from %q", out, s)
		require.Equal(t, entries, again)
		require.Equal(t, out, formatSignatureHeader(again))
		for _, e := range entries {
			require.NotContains(t, e.version, ",")
			require.NotContains(t, e.value, " ")
			if e.version == standardVersion {
				// Strict base64 has one spelling per MAC.
				require.Equal(t, e.value, base64.StdEncoding.EncodeToString(e.mac[:]))
			} else {
				require.Equal(t, [32]byte{}, e.mac, "only v1 entries are decoded")
			}
		}
	})
}

func TestParseSignatureHeader(t *testing.T) {
	t.Parallel()
	mac, err := base64.StdEncoding.DecodeString("g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	require.NoError(t, err)
	entries, err := parseSignatureHeader(" v1a,xyz\tv1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=  ")
	require.NoError(t, err)
	require.Equal(t, []sigEntry{
		{version: "v1a", value: "xyz"},
		{version: "v1", value: "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", mac: [32]byte(mac)},
	}, entries)
	require.Equal(t, "v1a,xyz v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", formatSignatureHeader(entries))

	for _, bad := range []string{"", " ", "v1", "v1,", ",x", "v1,abc", "v-1,x", "v1,x\x7f", "a b", "v2,\x7f", "v2,ü", "v2,a\x00", "v2,a\rb", "v1,abc v1, ,x"} {
		_, err := parseSignatureHeader(bad)
		require.ErrorIs(t, err, ErrMalformedHeader, "%q", bad)
	}

	// Malformed entries are skipped; a value ends at a second comma.
	for in, want := range map[string]string{
		"a,b c":                "a,b",
		"v1,abc v2,x":          "v2,x",
		"v2,x, v3,y,":          "v2,x v3,y",
		"v2,x,junk\tv1,,":      "v2,x",
		"garbage v1,abc v2,ok": "v2,ok",
	} {
		entries, err := parseSignatureHeader(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, formatSignatureHeader(entries), "%q", in)
	}
}

// FuzzVerify feeds arbitrary headers and bodies to both schemes: no panic,
// and every failure is one of the documented sentinel errors.
func FuzzVerify(f *testing.F) {
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "", []byte(`{"test": 2432232314}`))
	f.Add("", "", "", "", []byte(nil))
	f.Add("m", "99999999999999999999", "v1,", "zz", []byte("x"))
	f.Add("m", "9223372036854775807", "v1a,x", "00", []byte("x"))
	f.Add("", "", "", strings.Repeat("a", 64), []byte("x"))

	sec, err := NewSecret(uuid.Nil, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(f, err)
	v, err := NewVerifier(VerifierConfig{
		Secrets: []Secret{sec},
		Schemes: SchemeHex | SchemeStandard,
		Now:     func() time.Time { return time.Unix(1614265330, 0) },
	})
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, id, ts, sig, hexSig string, body []byte) {
		h := http.Header{}
		for k, val := range map[string]string{HeaderWebhookID: id, HeaderWebhookTimestamp: ts, HeaderWebhookSignature: sig, "Hookline-Signature": hexSig} {
			if val != "" {
				h[k] = []string{val}
			}
		}
		vd, err := v.Verify(h, body)
		if err == nil {
			// Only the published example could get here; anything else is a
			// forgery.
			require.Equal(t, SchemeStandard, vd.Scheme)
			require.Equal(t, "msg_p5jXN8AQM9LWM0D4loKWxJek", vd.MessageID)
			require.Equal(t, `{"test": 2432232314}`, string(body))
			return
		}
		known := false
		for _, e := range []error{ErrMissingHeader, ErrMalformedHeader, ErrNoMatchingSignature, ErrTimestampTooOld, ErrTimestampTooNew} {
			if errors.Is(err, e) {
				known = true
			}
		}
		require.True(t, known, "undocumented error: %v", err)
		_, _ = v.VerifyHex(h, body)
		_, _ = v.VerifyStandard(h, body)
	})
}

// parseSignatureHeader parses a whole webhook-signature value into its well
// formed entries, skipping the others, as VerifyStandard reads it (a test's view of nextSigEntry). A value
// without a well-formed entry is ErrMalformedHeader.
func parseSignatureHeader(s string) ([]sigEntry, error) {
	var entries []sigEntry
	var lastErr error
	for rest := s; ; {
		e, r, more, err := nextSigEntry(rest)
		if !more {
			break
		}
		rest = r
		if err != nil {
			lastErr = err
			continue
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		if lastErr == nil {
			lastErr = fmt.Errorf("no signature entries: %w", ErrMalformedHeader)
		}
		return nil, lastErr
	}
	return entries, nil
}

// formatSignatureHeader writes entries as a webhook-signature value, one
// space between entries.
func formatSignatureHeader(entries []sigEntry) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.version)
		b.WriteByte(',')
		b.WriteString(e.value)
	}
	return b.String()
}

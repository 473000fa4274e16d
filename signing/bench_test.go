package signing_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/signing"
)

// Each benchmark runs hookline beside bare crypto/hmac over the same bytes:
// hmac.New(sha256.New, key), Write, Sum, then hex or base64 encoding, with
// everything that does not depend on the message (the decoded key, the
// "<id>.<timestamp>." prefix) prepared outside the loop, which favours the
// bare version.

var benchSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
}

func benchBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

var (
	sinkString string
	sinkBool   bool
)

func BenchmarkSignHex(b *testing.B) {
	key := []byte(swSecret)
	sec := mustSecret(b, idA, swSecret)
	signer := mustSigner(b, signing.SignerConfig{Keys: mustRing(b, sec), Schemes: signing.SchemeHex})
	for _, size := range benchSizes {
		body := benchBody(size.n)
		b.Run(size.name+"/crypto-hmac", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				m := hmac.New(sha256.New, key)
				m.Write(body)
				sinkString = hex.EncodeToString(m.Sum(nil))
			}
		})
		b.Run(size.name+"/hookline-Secret.SignHex", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				sinkString, _ = sec.SignHex(body)
			}
		})
		// Also sets <Prefix>-Request-Id, which bare hmac does not.
		b.Run(size.name+"/hookline-Signer.Sign", func(b *testing.B) { benchSignerSign(b, signer, body) })
	}
}

// benchSignerSign measures Signer.Sign of body into one reused header.
func benchSignerSign(b *testing.B, signer *signing.Signer, body []byte) {
	h := http.Header{}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := signer.Sign(h, swMsgID, requestID, time.Unix(swTimestamp, 0), body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignStandard(b *testing.B) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSecret, "whsec_"))
	if err != nil {
		b.Fatal(err)
	}
	prefix := []byte(swMsgID + "." + strconv.FormatInt(swTimestamp, 10) + ".")
	sec := mustSecret(b, idA, swSecret)
	signer := mustSigner(b, signing.SignerConfig{Keys: mustRing(b, sec)})
	for _, size := range benchSizes {
		body := benchBody(size.n)
		b.Run(size.name+"/crypto-hmac", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				m := hmac.New(sha256.New, key)
				m.Write(prefix)
				m.Write(body)
				sinkString = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
			}
		})
		b.Run(size.name+"/hookline-Secret.SignStandard", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				sinkString, _ = sec.SignStandard(swMsgID, swTimestamp, body)
			}
		})
		// Also formats the timestamp and sets three headers.
		b.Run(size.name+"/hookline-Signer.Sign", func(b *testing.B) { benchSignerSign(b, signer, body) })
	}
}

func BenchmarkVerifyStandard(b *testing.B) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSecret, "whsec_"))
	if err != nil {
		b.Fatal(err)
	}
	sec := mustSecret(b, idA, swSecret)
	v := mustVerifier(b, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Now: clockAt(swTimestamp)})
	for _, size := range benchSizes {
		body := benchBody(size.n)
		h := signedStandard(b, swMsgID, swTimestamp, body, sec)
		sigHeader := h.Get(signing.HeaderWebhookSignature)
		tsHeader := h.Get(signing.HeaderWebhookTimestamp)
		b.Run(size.name+"/crypto-hmac", func(b *testing.B) {
			// Parse the timestamp, decode the one signature, recompute, compare.
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				ts, err := strconv.ParseInt(tsHeader, 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				got, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sigHeader, "v1,"))
				if err != nil {
					b.Fatal(err)
				}
				m := hmac.New(sha256.New, key)
				m.Write([]byte(swMsgID + "." + strconv.FormatInt(ts, 10) + "."))
				m.Write(body)
				sinkBool = hmac.Equal(got, m.Sum(nil))
			}
			if !sinkBool {
				b.Fatal("bare verification failed")
			}
		})
		b.Run(size.name+"/hookline-Verifier.VerifyStandard", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := v.VerifyStandard(h, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

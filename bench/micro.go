package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
)

type microResult struct {
	name   string
	ns     float64
	allocs int64
	bytes  int64
}

// arm is one micro-benchmark.
type arm struct {
	name string
	f    func(b *testing.B)
}

// runArms runs every arm rounds times, taking turns (all arms once, then
// all again), so that a burst of machine noise falls on all of them rather
// than on one arm's only sample, and keeps each arm's fastest run. An arm
// that fails (b.Fatal: testing.Benchmark then reports no iterations) is an
// error, not a figure.
func runArms(arms []arm, rounds int) ([]microResult, error) {
	out := make([]microResult, len(arms))
	for r := range max(rounds, 1) {
		for i, a := range arms {
			res := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				a.f(b)
			})
			if res.N == 0 {
				return nil, fmt.Errorf("benchmark %s failed (it stopped before its first iteration ended)", a.name)
			}
			m := microResult{name: a.name, ns: float64(res.T.Nanoseconds()) / float64(res.N), allocs: res.AllocsPerOp(), bytes: res.AllocedBytesPerOp()}
			if r == 0 || m.ns < out[i].ns {
				out[i] = m
			}
		}
	}
	return out, nil
}

var (
	sinkString string
	sinkBool   bool
	sinkBytes  []byte
)

// signingBenches signs and verifies Standard Webhooks signatures of the same
// bytes with hookline, bare crypto/hmac (key decoded and the message id
// prepared outside the loop, which favours it) and the standard-webhooks Go
// library.
func signingBenches(sizes []int, rounds int) ([]microResult, error) {
	const secretStr = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	const msgID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secretStr, "whsec_"))
	if err != nil {
		return nil, err
	}
	sec, err := signing.NewSecret(uuid.New(), secretStr)
	if err != nil {
		return nil, err
	}
	ring, err := signing.NewKeyRing(sec)
	if err != nil {
		return nil, err
	}
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	if err != nil {
		return nil, err
	}
	verifier, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{sec}})
	if err != nil {
		return nil, err
	}
	wh, err := standardwebhooks.NewWebhook(secretStr)
	if err != nil {
		return nil, err
	}
	reqID := uuid.New()
	var arms []arm
	for _, n := range sizes {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte('a' + i%26)
		}
		ts := time.Now() // the verifiers check it against the clock
		tsStr := strconv.FormatInt(ts.Unix(), 10)
		h := http.Header{}
		if err := signer.Sign(h, msgID, reqID, ts, body); err != nil {
			return nil, err
		}
		swSig, err := wh.Sign(msgID, ts, body)
		if err != nil {
			return nil, err
		}
		if swSig != h.Get(signing.HeaderWebhookSignature) {
			return nil, fmt.Errorf("hookline and standard-webhooks signatures differ: %q vs %q", h.Get(signing.HeaderWebhookSignature), swSig)
		}
		if err := wh.Verify(body, h); err != nil {
			return nil, fmt.Errorf("standard-webhooks rejects hookline's signature: %w", err)
		}
		sz := sizeName(n)
		prefix := []byte(msgID + "." + tsStr + ".")
		sigHeader := h.Get(signing.HeaderWebhookSignature)

		arms = append(arms,
			arm{"sign_hookline_" + sz, func(b *testing.B) {
				hh := http.Header{}
				for b.Loop() {
					if err := signer.Sign(hh, msgID, reqID, ts, body); err != nil {
						b.Fatal(err)
					}
				}
			}},
			arm{"sign_hmac_" + sz, func(b *testing.B) {
				for b.Loop() {
					m := hmac.New(sha256.New, key)
					m.Write(prefix)
					m.Write(body)
					sinkString = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
				}
			}},
			arm{"sign_stdwebhooks_" + sz, func(b *testing.B) {
				for b.Loop() {
					sinkString, _ = wh.Sign(msgID, ts, body)
				}
			}},
			arm{"verify_hookline_" + sz, func(b *testing.B) {
				for b.Loop() {
					if _, err := verifier.VerifyStandard(h, body); err != nil {
						b.Fatal(err)
					}
				}
			}},
			arm{"verify_hmac_" + sz, func(b *testing.B) {
				for b.Loop() {
					t, err := strconv.ParseInt(h.Get(signing.HeaderWebhookTimestamp), 10, 64)
					if err != nil {
						b.Fatal(err)
					}
					got, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sigHeader, "v1,"))
					if err != nil {
						b.Fatal(err)
					}
					m := hmac.New(sha256.New, key)
					m.Write([]byte(h.Get(signing.HeaderWebhookID) + "." + strconv.FormatInt(t, 10) + "."))
					m.Write(body)
					sinkBool = hmac.Equal(got, m.Sum(nil))
				}
				if !sinkBool {
					b.Fatal("bare verification failed")
				}
			}},
			arm{"verify_stdwebhooks_" + sz, func(b *testing.B) {
				for b.Loop() {
					if err := wh.Verify(body, h); err != nil {
						b.Fatal(err)
					}
				}
			}},
		)
	}
	return runArms(arms, rounds)
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

// freezeBenches compares payload.Freeze with encoding/json.Marshal of the
// same content (which neither validates nor keeps the wire format).
func freezeBenches(rounds int) ([]microResult, int, error) {
	c := callbackTemplate
	frozen, err := payload.Freeze(c)
	if err != nil {
		return nil, 0, err
	}
	type wire struct {
		Event       string         `json:"event"`
		BatchID     string         `json:"batch_id"`
		Status      string         `json:"status"`
		Output      payload.Output `json:"output"`
		DurationMS  int64          `json:"duration_ms"`
		CreatedAt   time.Time      `json:"created_at"`
		CompletedAt time.Time      `json:"completed_at"`
		Metadata    any            `json:"metadata"`
	}
	w := wire{c.Event, c.BatchID.String(), c.Status, c.Output.(payload.Output), c.DurationMS, c.CreatedAt, c.CompletedAt, c.Metadata}
	if _, err := json.Marshal(w); err != nil {
		return nil, 0, err
	}
	res, err := runArms([]arm{
		{"freeze", func(b *testing.B) {
			for b.Loop() {
				sinkBytes, _ = payload.Freeze(c)
			}
		}},
		{"json_marshal", func(b *testing.B) {
			for b.Loop() {
				sinkBytes, _ = json.Marshal(w)
			}
		}},
	}, rounds)
	return res, len(frozen), err
}

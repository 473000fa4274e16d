package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// benchPayload is a ~1 KiB callback.
func benchPayload(batch uuid.UUID) payload.Callback {
	items := make([]json.RawMessage, 8)
	for i := range items {
		items[i] = json.RawMessage(fmt.Sprintf(`{"id":"item-%04d","status":"succeeded","result":{"rows":1234,"bytes":56789}}`, i))
	}
	c := callback(batch)
	c.Output = payload.Output{Items: items, Succeeded: 8, Total: 8}
	c.Metadata = json.RawMessage(`{"customer":"acme","region":"eu-west-1","tags":["nightly","export"],"note":"` + strings.Repeat("x", 180) + `"}`)
	return c
}

// BenchmarkThroughput compares, in one run, deliveries per second of 1 KiB
// callbacks to a loopback receiver through a Deliverer on the memory store
// with a bare net/http loop posting the same bytes at the same concurrency
// (the limit: one shared client, no signing, no records). The two arms
// alternate in rounds of b.N callbacks so that machine noise hits both.
//
//	go test -run='^$' -bench=Throughput -benchtime=5000x -count=3 ./delivery/
func BenchmarkThroughput(b *testing.B) {
	for _, c := range []int{16, 64} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			body, err := payload.Freeze(benchPayload(uuid.New()))
			if err != nil {
				b.Fatal(err)
			}

			const rounds = 3
			var bare, hook time.Duration
			for range rounds {
				bare += runBare(b, srv.URL, body, c, b.N)
				hook += runHookline(b, srv.URL, c, b.N)
			}
			n := float64(rounds * b.N)
			bareRate, hookRate := n/bare.Seconds(), n/hook.Seconds()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(bareRate, "bare-deliveries/s")
			b.ReportMetric(hookRate, "hookline-deliveries/s")
			b.ReportMetric(hookRate/bareRate, "ratio")
		})
	}
}

// runBare posts body n times from c goroutines sharing one client.
func runBare(b *testing.B, url string, body []byte, c, n int) time.Duration {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = c
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// defaultSigner signs with the default scheme (Standard Webhooks).
func defaultSigner(b *testing.B) *signing.Signer {
	ring, err := signing.NewKeyRing(newSecret(b))
	if err != nil {
		b.Fatal(err)
	}
	s, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// runHookline delivers n callbacks through a fresh Deliverer with c workers
// and waits until all have succeeded.
func runHookline(b *testing.B, url string, c, n int) time.Duration {
	var done atomic.Int64
	all := make(chan struct{})
	d, err := delivery.New(delivery.Config{
		Signer:               defaultSigner(b),
		Workers:              c,
		MaxPerHost:           c,    // one receiver: the per-host limit would be the bottleneck
		AllowPrivateNetworks: true, // the receiver is on loopback
		Observer: delivery.Observer{Done: func(rec *store.Delivery) {
			if rec.Status != store.StatusSucceeded {
				b.Errorf("delivery %s %s: %s", rec.ID, rec.Status, rec.FailureDetail)
			}
			if done.Add(1) == int64(n) {
				close(all)
			}
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer d.Stop(ctx)
	cbs := make([]payload.Callback, n)
	for i := range cbs {
		cbs[i] = benchPayload(uuid.New())
	}
	start := time.Now()
	for _, cb := range cbs {
		if _, err := d.Deliver(ctx, url, cb); err != nil {
			b.Fatal(err)
		}
	}
	<-all
	return time.Since(start)
}

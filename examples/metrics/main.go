// Command metrics wires a Deliverer's Observer hooks to expvar, the standard
// library's metrics registry, without hookline importing any metrics library.
// The same three hooks feed Prometheus counters or OpenTelemetry spans.
//
//	go run ./examples/metrics
//
// It delivers a few callbacks to a local receiver that fails some of them,
// then prints the counters (the values /debug/vars serves as
// hookline_attempts, hookline_deliveries, ...), and exits.
// With -serve ADDR it keeps serving /debug/vars instead.
package main

import (
	"context"
	"expvar"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// Metrics are the counters a host would export.
type Metrics struct {
	Attempts        *expvar.Map // by outcome: "ok" or a failure reason
	Deliveries      *expvar.Map // terminal deliveries by status
	StoreErrors     *expvar.Map // failed Store calls by operation
	ResponseTimeSum *expvar.Int // milliseconds, over all attempts
}

// NewMetrics registers the counters under prefix (expvar names are global,
// so each set needs its own prefix).
func NewMetrics(prefix string) *Metrics {
	return &Metrics{
		Attempts:        expvar.NewMap(prefix + "_attempts"),
		Deliveries:      expvar.NewMap(prefix + "_deliveries"),
		StoreErrors:     expvar.NewMap(prefix + "_store_errors"),
		ResponseTimeSum: expvar.NewInt(prefix + "_response_time_ms_sum"),
	}
}

// Observer returns the hooks that update m. They are cheap and safe for
// concurrent use, as the Observer's contract asks.
func (m *Metrics) Observer() delivery.Observer {
	return delivery.Observer{
		Attempt: func(d *store.Delivery, a store.Attempt) {
			outcome := "ok"
			if a.FailureReason != "" {
				outcome = string(a.FailureReason)
			}
			m.Attempts.Add(outcome, 1)
			m.ResponseTimeSum.Add(a.ResponseTimeMS)
		},
		Done:  func(d *store.Delivery) { m.Deliveries.Add(string(d.Status), 1) },
		Error: func(op string, err error) { m.StoreErrors.Add(op, 1) },
	}
}

func main() {
	serve := flag.String("serve", "", "keep serving /debug/vars on this address")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "metrics: unexpected argument %q; every setting is a flag\n", flag.Arg(0))
		os.Exit(2)
	}
	if err := run(os.Stdout, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, serve string) error {
	// A receiver that answers 503 to every third request.
	var n atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	receiver := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	go receiver.Serve(ln)
	defer receiver.Close()

	secret, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	if err != nil {
		return err
	}
	ring, err := signing.NewKeyRing(secret)
	if err != nil {
		return err
	}
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	if err != nil {
		return err
	}
	m := NewMetrics("hookline")
	d, err := delivery.New(delivery.Config{
		Signer:               signer,
		Observer:             m.Observer(),
		RetryPolicy:          delivery.ExponentialRetryPolicy(10*time.Millisecond, 100*time.Millisecond),
		PollInterval:         10 * time.Millisecond,
		AllowPrivateNetworks: true, // the receiver is on localhost
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Stop(ctx)

	const total = 9
	for range total {
		if _, err := d.Deliver(ctx, "http://"+ln.Addr().String()+"/hook", payload.Callback{
			Event: payload.EventBatchSucceeded, BatchID: uuid.New(), Status: payload.StatusSucceeded,
		}); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for deliveriesDone(m) < total {
		if time.Now().After(deadline) {
			return fmt.Errorf("deliveries did not finish in time")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if serve != "" {
		fmt.Fprintf(out, "serving http://%s/debug/vars\n", serve)
		return http.ListenAndServe(serve, nil) // expvar registers /debug/vars on the default mux
	}
	fmt.Fprintf(out, "attempts: %s\n", m.Attempts)
	fmt.Fprintf(out, "deliveries: %s\n", m.Deliveries)
	return nil
}

func deliveriesDone(m *Metrics) int64 {
	var sum int64
	m.Deliveries.Do(func(kv expvar.KeyValue) { sum += kv.Value.(*expvar.Int).Value() })
	return sum
}

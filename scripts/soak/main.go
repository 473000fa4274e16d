// Command soak runs hookline's Deliverer under a steady load for a bounded
// time and checks that it neither leaks nor loses work. It is not part of
// go test.
//
// Usage:
//
//	go run ./scripts/soak                  # 60 s, memory store
//	go run ./scripts/soak -duration 10m    # longer
//	go run ./scripts/soak -duration 30s -dsn postgres://postgres@127.0.0.1:5432/test
//
// Flags: -duration (default 60s), -rate (deliveries enqueued per second,
// default 500), -fail (fraction of requests the receiver answers with HTTP
// 500, default 0.2), -workers (Deliverer workers, default 32), -seed (the
// receiver's failure choices, default 1), -dsn (when set, the PostgreSQL
// store in a fresh schema, migrated at the start and dropped at the end,
// or on SIGINT or SIGTERM; otherwise the memory store).
//
// A loopback receiver fails a seeded fraction of requests; the Deliverer
// retries them (exponential 50 ms to 1 s, 10 attempts). Every 10 s soak
// prints one line: elapsed time, deliveries completed per second in that
// window, totals delivered (succeeded), failed and pending, heap in use
// (runtime.MemStats.HeapInuse after runtime.GC) and goroutines. When the
// duration is over it stops enqueuing, waits up to 30 s for pending to
// drain, prints a summary and exits 1 if a check failed:
//
//   - lost: every delivery enqueued must be terminal in the Store;
//   - failed: a delivery may end failed only by 10 HTTP 500s in a row (with
//     -fail 0.2, about one in ten million); any other failure is reported;
//   - goroutines: at the end (Deliverer still running, drained) at most 50
//     more than at the first report, not counting the three goroutines of
//     each open connection to the receiver (their number follows the load
//     and is bounded by the transport's pool; it is printed on every line)
//     nor the producers, which have returned by the end; after Stop, soak
//     prints how many goroutines are left;
//   - heap, see below.
//
// What "heap stays flat" means here. The PostgreSQL store keeps nothing in
// the process, so with -dsn the heap in use at the end must be at most 2× the
// heap at the first report (10 s, after warm-up). The memory store keeps every
// delivery and its attempts for ever (it has no retention), so its heap grows
// with history by design and a raw 2× check would only measure the run's
// length. In memory mode soak therefore reports heap per 1,000 stored
// deliveries, measured above the heap before the load started, and checks
// that this per-delivery cost at the end is at most 2× the cost at the first
// report: growth that is not proportional to stored history (goroutines,
// timers, buffers, connections piling up over time) fails it, but a leak of
// a fixed size per delivery cannot be told apart from history in memory mode;
// the -dsn run is the one that catches that.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
)

const (
	reportEvery   = 10 * time.Second
	drainWithin   = 30 * time.Second
	maxGoroutines = 50 // allowed growth from the first report to the end
	producers     = 16 // goroutines calling Deliver
)

func main() {
	duration := flag.Duration("duration", 60*time.Second, "how long to enqueue deliveries")
	rate := flag.Float64("rate", 500, "deliveries enqueued per second")
	fail := flag.Float64("fail", 0.2, "fraction of requests the receiver fails with HTTP 500")
	workers := flag.Int("workers", 32, "Deliverer workers")
	seed := flag.Uint64("seed", 1, "seed of the receiver's failure choices")
	dsn := flag.String("dsn", "", "PostgreSQL DSN; empty: the memory store")
	flag.Parse()
	if *duration <= 0 || *rate <= 0 || *fail < 0 || *fail >= 1 || *workers <= 0 {
		fmt.Fprintln(os.Stderr, "soak: want -duration > 0, -rate > 0, 0 <= -fail < 1, -workers > 0")
		os.Exit(2)
	}
	os.Exit(run(*duration, *rate, *fail, *workers, *seed, *dsn))
}

// sample is one measurement of the process.
type sample struct {
	heap       uint64
	goroutines int
	conns      int64 // open connections to the receiver
	stored     int64
}

// others is the goroutines besides the three each receiver connection costs.
func (s sample) others() int { return s.goroutines - 3*int(s.conns) }

func measure(stored int64, conns *atomic.Int64) sample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return sample{heap: m.HeapInuse, goroutines: runtime.NumGoroutine(), conns: conns.Load(), stored: stored}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// perK is the heap above base per 1,000 stored deliveries.
func perK(s, base sample) float64 {
	if s.stored == 0 {
		return 0
	}
	return float64(int64(s.heap)-int64(base.heap)) / float64(s.stored) * 1000
}

func run(duration time.Duration, rate, fail float64, workers int, seed uint64, dsn string) int {
	ctx := context.Background()

	// The store.
	var st store.Store = store.NewMemory()
	mode := "memory"
	if dsn != "" {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 2
		}
		defer pool.Close()
		var b [6]byte
		rand.Read(b[:])
		schema := "hookline_soak_" + hex.EncodeToString(b[:])
		pg, err := postgres.New(pool, postgres.Options{Schema: schema})
		if err == nil {
			err = pg.Migrate(ctx)
		}
		drop := sync.OnceFunc(func() {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := pool.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
				fmt.Fprintln(os.Stderr, "soak: drop schema", schema+":", err)
			}
		})
		defer drop()
		// An interrupted run drops its schema too.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		go func() {
			if s, ok := <-sigs; ok {
				fmt.Fprintf(os.Stderr, "soak: %v: dropping schema %s (again to quit at once)\n", s, schema)
				go func() { <-sigs; os.Exit(130) }()
				drop()
				os.Exit(130)
			}
		}()
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 2
		}
		st, mode = pg, "postgres (schema "+schema+")"
	}

	// The receiver: fails a seeded fraction of requests.
	var (
		rmu      sync.Mutex
		rng      = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		requests atomic.Int64
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		requests.Add(1)
		rmu.Lock()
		bad := rng.Float64() < fail
		rmu.Unlock()
		if bad {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	// Open connections to the receiver: each costs three goroutines (the
	// server's, and the client transport's read and write loops), and their
	// number follows the load (at most about Workers plus the idle pool), so
	// the goroutine check counts goroutines besides them.
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, cs http.ConnState) {
		switch cs {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			conns.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()
	url := srv.URL + "/hooks"

	// The Deliverer.
	secret, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	ring, err := signing.NewKeyRing(secret)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	const maxAttempts = 10
	var succeeded, failed, unexpected, storeErrs atomic.Int64
	d, err := delivery.New(delivery.Config{
		Signer:               signer,
		Store:                st,
		Workers:              workers,
		MaxPerHost:           workers, // one receiver host
		MaxAttempts:          maxAttempts,
		RetryPolicy:          delivery.ExponentialRetryPolicy(50*time.Millisecond, time.Second),
		PollInterval:         100 * time.Millisecond,
		AllowPrivateNetworks: true, // loopback receiver
		Observer: delivery.Observer{
			Done: func(rec *store.Delivery) {
				if rec.Status == store.StatusSucceeded {
					succeeded.Add(1)
					return
				}
				failed.Add(1)
				// The receiver fails only with HTTP 500: any other end is a
				// fault of hookline or of the machine.
				if rec.FailureReason != store.ReasonHTTPError || rec.AttemptCount != maxAttempts {
					unexpected.Add(1)
				}
				if failed.Load() <= 5 {
					fmt.Printf("failed: delivery %s after %d attempts: %s: %s\n", rec.ID, rec.AttemptCount, rec.FailureReason, rec.FailureDetail)
				}
			},
			Error: func(string, error) { storeErrs.Add(1) },
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	base := measure(0, &conns)
	if err := d.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	fmt.Printf("soak: %s store, %s at %.0f/s, receiver fails %.0f%% (seed %d), %d workers\n",
		mode, duration, rate, fail*100, seed, workers)

	// The load: a ticker hands out tokens at rate; producers enqueue one
	// delivery per token.
	var (
		idsMu       sync.Mutex
		ids         []uuid.UUID
		inserted    atomic.Int64
		enqueueErrs atomic.Int64
		wg          sync.WaitGroup
	)
	tokens := make(chan struct{}, 4*producers)
	for range producers {
		wg.Go(func() {
			for range tokens {
				cb := payload.Callback{
					Event:       payload.EventBatchSucceeded,
					BatchID:     uuid.New(),
					Status:      payload.StatusSucceeded,
					Output:      json.RawMessage(`{"items":["a","b"],"total":2}`),
					DurationMS:  1500,
					CreatedAt:   time.Now().Add(-time.Minute).UTC(),
					CompletedAt: time.Now().UTC(),
				}
				rec, err := d.Deliver(ctx, url, cb)
				if err != nil {
					enqueueErrs.Add(1)
					continue
				}
				idsMu.Lock()
				ids = append(ids, rec.ID)
				idsMu.Unlock()
				inserted.Add(1)
			}
		})
	}
	start := time.Now()
	report := time.NewTicker(reportEvery)
	defer report.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	var (
		sent     int64
		first    sample
		lastDone int64
		lastAt   = start
	)
	line := func(label string, done int64, at time.Time) sample {
		s := measure(inserted.Load(), &conns)
		win := at.Sub(lastAt).Seconds()
		per := ""
		if mode == "memory" {
			per = fmt.Sprintf(" (%.2f MiB per 1k stored)", perK(s, base)/(1<<20))
		}
		fmt.Printf("%-7s %7.1f/s  delivered %7d  failed %4d  pending %5d  heap %7.2f MiB%s  goroutines %4d (%d receiver connections)\n",
			label, float64(done-lastDone)/win, succeeded.Load(), failed.Load(), s.stored-done, mib(s.heap), per, s.goroutines, s.conns)
		lastDone, lastAt = done, at
		return s
	}
load:
	for {
		select {
		case now := <-tick.C:
			elapsed := now.Sub(start)
			if elapsed >= duration {
				break load
			}
			for want := int64(rate * elapsed.Seconds()); sent < want; sent++ {
				tokens <- struct{}{}
			}
		case now := <-report.C:
			s := line(fmt.Sprintf("%3.0fs", now.Sub(start).Seconds()), succeeded.Load()+failed.Load(), now)
			if first.heap == 0 {
				first = s
			}
		}
	}
	tick.Stop()
	close(tokens)
	wg.Wait()
	enqueued := inserted.Load()

	// Drain.
	drainStart := time.Now()
	for time.Since(drainStart) < drainWithin && succeeded.Load()+failed.Load() < enqueued {
		time.Sleep(50 * time.Millisecond)
	}
	now := time.Now()
	end := line("end", succeeded.Load()+failed.Load(), now)
	firstIsEnd := first.heap == 0
	if firstIsEnd { // a run shorter than one report
		first = end
	}

	// Every delivery enqueued must be terminal in the Store.
	var lost atomic.Int64
	var next atomic.Int64
	var cwg sync.WaitGroup
	for range 8 {
		cwg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(ids)) {
					return
				}
				rec, err := st.Get(ctx, ids[i])
				if err != nil || !rec.Status.Terminal() {
					lost.Add(1)
				}
			}
		})
	}
	cwg.Wait()

	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	stopErr := d.Stop(stopCtx)
	cancel()
	srv.Close()
	afterStop := measure(enqueued, &conns)

	total := now.Sub(start).Seconds()
	fmt.Printf("summary: %s store; %d enqueued in %s (%.1f/s), %d enqueue errors; %d succeeded, %d failed, %d not terminal; %d requests (%.2f per delivery); drained in %s; %.1f deliveries/s overall; %d store errors\n",
		mode, enqueued, duration, float64(enqueued)/duration.Seconds(), enqueueErrs.Load(), succeeded.Load(), failed.Load(), lost.Load(),
		requests.Load(), float64(requests.Load())/float64(max(1, enqueued)), now.Sub(drainStart).Round(time.Millisecond),
		float64(succeeded.Load()+failed.Load())/total, storeErrs.Load())
	fmt.Printf("summary: heap before load %.2f MiB, first report %.2f MiB, end %.2f MiB; goroutines before load %d, first report %d, end %d, after Stop %d\n",
		mib(base.heap), mib(first.heap), mib(end.heap), base.goroutines, first.goroutines, end.goroutines, afterStop.goroutines)

	code := 0
	check := func(ok bool, format string, args ...any) {
		status := "ok  "
		if !ok {
			status, code = "FAIL", 1
		}
		fmt.Printf("check %s "+format+"\n", append([]any{status}, args...)...)
	}
	check(lost.Load() == 0, "lost: %d of %d deliveries not terminal at the end", lost.Load(), enqueued)
	check(enqueueErrs.Load() == 0, "enqueue: %d Deliver calls failed", enqueueErrs.Load())
	check(unexpected.Load() == 0, "failed: %d deliveries ended failed other than by %d HTTP 500s (of %d failed; the first are printed above)", unexpected.Load(), maxAttempts, failed.Load())
	// The producers ran at the first report (unless the run was shorter)
	// and have returned by the end.
	firstOthers := first.others()
	if !firstIsEnd {
		firstOthers -= producers
	}
	check(end.others()-firstOthers <= maxGoroutines, "goroutines besides receiver connections and producers: %d at the end vs %d at the first report (at most +%d)", end.others(), firstOthers, maxGoroutines)
	if mode == "memory" {
		check(perK(end, base) <= 2*perK(first, base), "heap per 1k stored deliveries: %.2f MiB at the end vs %.2f MiB at the first report (at most 2x)",
			perK(end, base)/(1<<20), perK(first, base)/(1<<20))
	} else {
		check(end.heap <= 2*first.heap, "heap: %.2f MiB at the end vs %.2f MiB at the first report (at most 2x)", mib(end.heap), mib(first.heap))
	}
	check(stopErr == nil, "stop: %v", stopErr)
	return code
}

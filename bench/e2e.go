package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
)

// callbackTemplate is a ~1 KiB callback; each delivery copies it with a batch
// id of its own (a batch has at most one pending delivery).
var callbackTemplate = func() payload.Callback {
	items := make([]json.RawMessage, 8)
	for i := range items {
		items[i] = json.RawMessage(fmt.Sprintf(`{"id":"item-%04d","status":"succeeded","result":{"rows":1234,"bytes":56789}}`, i))
	}
	now := time.Now().UTC()
	return payload.Callback{
		Event:       payload.EventBatchSucceeded,
		BatchID:     uuid.New(),
		Status:      payload.StatusSucceeded,
		Output:      payload.Output{Items: items, Succeeded: 8, Total: 8},
		DurationMS:  1500,
		CreatedAt:   now.Add(-time.Minute),
		CompletedAt: now,
		Metadata:    json.RawMessage(`{"customer":"acme","region":"eu-west-1","tags":["nightly","export"],"note":"` + strings.Repeat("x", 33) + `"}`),
	}
}()

func newCallback() payload.Callback {
	c := callbackTemplate
	c.BatchID = uuid.New()
	return c
}

// sample is one request: its id and when it was started (bare, retryablehttp)
// or when Deliver was called (hookline), in unix nanoseconds.
type sample struct {
	id string
	t  int64
}

// armRun is what one arm does at one concurrency.
type armRun struct {
	setup    func(c int) error                                // before the warm-up
	op       func(ctx context.Context, w int) (sample, error) // one request, blocking until it is done
	teardown func() error                                     // after the timed part; an error fails the arm
}

type e2eResult struct {
	arm      string
	c        int
	n        int
	elapsed  time.Duration
	lat      []time.Duration
	rate     float64
	p50, p99 time.Duration
	matched  int
	err      error
}

// add merges the requests of another round of the same arm and concurrency.
func (r *e2eResult) add(o e2eResult) {
	if o.err != nil && r.err == nil {
		r.err = o.err
	}
	r.n += o.n
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
}

// finish computes the rate and the latency percentiles.
func (r *e2eResult) finish() {
	r.matched = len(r.lat)
	if r.elapsed > 0 {
		r.rate = float64(r.n) / r.elapsed.Seconds()
	}
	if len(r.lat) > 0 {
		slices.Sort(r.lat)
		r.p50 = r.lat[len(r.lat)/2]
		r.p99 = r.lat[(len(r.lat)-1)*99/100]
	}
	r.lat = nil
}

// measure runs op from c goroutines, closed loop (each starts its next
// request when the previous is done, so c are in flight), first for warm,
// then for dur; it counts the requests finished in the timed part and their
// latencies (matched with the receiver's arrival times by id).
func measure(rcv *receiverProc, arm string, c int, run armRun, warm, dur time.Duration, prof string) (res e2eResult) {
	res = e2eResult{arm: arm, c: c}
	if err := run.setup(c); err != nil {
		res.err = err
		return res
	}
	defer func() {
		if err := run.teardown(); err != nil && res.err == nil {
			res.err = fmt.Errorf("teardown: %w", err)
		}
	}()
	ctx := context.Background()
	loop := func(d time.Duration, keep bool) ([][]sample, time.Duration, error) {
		per := make([][]sample, c)
		var firstErr atomic.Pointer[error]
		deadline := time.Now().Add(d)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range c {
			wg.Go(func() {
				s := make([]sample, 0, 4096)
				for time.Now().Before(deadline) && firstErr.Load() == nil {
					smp, err := run.op(ctx, w)
					if err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					if keep {
						s = append(s, smp)
					} else {
						s = append(s[:0], smp)
					}
				}
				per[w] = s
			})
		}
		watchdog := time.AfterFunc(d+60*time.Second, func() {
			fmt.Fprintf(os.Stderr, "bench: %s c=%d still running 60 s past its window; giving up\n", arm, c)
			exit(1)
		})
		wg.Wait()
		watchdog.Stop()
		if e := firstErr.Load(); e != nil {
			return nil, 0, *e
		}
		return per, time.Since(start), nil
	}
	if _, _, err := loop(warm, false); err != nil {
		res.err = fmt.Errorf("warm-up: %w", err)
		return res
	}
	if _, err := rcv.drain(); err != nil {
		res.err = err
		return res
	}
	var stopProf func()
	if prof != "" {
		stopProf = startProfile(prof)
	}
	per, elapsed, err := loop(dur, true)
	if stopProf != nil {
		stopProf()
	}
	if err != nil {
		res.err = err
		return res
	}
	arr, err := rcv.drain()
	if err != nil {
		res.err = err
		return res
	}
	res.elapsed = elapsed
	for _, s := range per {
		res.n += len(s)
		for _, smp := range s {
			if t, ok := arr[smp.id]; ok {
				res.lat = append(res.lat, time.Duration(t-smp.t))
			}
		}
	}
	return res
}

// startProfile starts a CPU profile and snapshots the allocation profile; the
// returned func stops the CPU profile and writes the allocations since.
func startProfile(dir string) func() {
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			exit(1)
		}
	}
	must(os.MkdirAll(dir, 0o755))
	base, err := os.Create(filepath.Join(dir, "allocs-base.pprof"))
	must(err)
	must(pprof.Lookup("allocs").WriteTo(base, 0))
	base.Close()
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	must(err)
	must(pprof.StartCPUProfile(cpu))
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		f, err := os.Create(filepath.Join(dir, "allocs.pprof"))
		must(err)
		must(pprof.Lookup("allocs").WriteTo(f, 0))
		f.Close()
	}
}

// bareArm posts the frozen bytes with one shared client: the limit.
func bareArm(url string, body []byte) armRun {
	var client *http.Client
	var tr *http.Transport
	var seq atomic.Int64
	return armRun{
		setup: func(c int) error {
			tr = http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = c
			client = &http.Client{Transport: tr}
			return nil
		},
		op: func(ctx context.Context, w int) (sample, error) {
			id := "b" + strconv.FormatInt(seq.Add(1), 10)
			t0 := time.Now().UnixNano()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return sample{}, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Bench-Id", id)
			resp, err := client.Do(req)
			if err != nil {
				return sample{}, err
			}
			return sample{id, t0}, drain(resp, "bare")
		},
		teardown: func() error { tr.CloseIdleConnections(); return nil },
	}
}

// drain reads and closes the receiver's answer, which must be 204.
func drain(resp *http.Response, arm string) error {
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%s: status %d", arm, resp.StatusCode)
	}
	return nil
}

// retryArm is what a user would write instead: a pool of goroutines that
// hex-HMAC-sign the bytes and POST them with hashicorp/go-retryablehttp.
func retryArm(url string, body []byte) armRun {
	var client *retryablehttp.Client
	var tr *http.Transport
	var seq atomic.Int64
	key := []byte("a-32-byte-secret-for-hmac-sha256")
	return armRun{
		setup: func(c int) error {
			tr = http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = c
			client = retryablehttp.NewClient()
			client.HTTPClient = &http.Client{Transport: tr}
			client.Logger = nil
			client.RetryWaitMin = 100 * time.Millisecond
			return nil
		},
		op: func(ctx context.Context, w int) (sample, error) {
			id := "r" + strconv.FormatInt(seq.Add(1), 10)
			t0 := time.Now().UnixNano()
			m := hmac.New(sha256.New, key)
			m.Write(body)
			sig := hex.EncodeToString(m.Sum(nil))
			req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, url, body)
			if err != nil {
				return sample{}, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Signature", sig)
			req.Header.Set("X-Bench-Id", id)
			resp, err := client.Do(req)
			if err != nil {
				return sample{}, err
			}
			return sample{id, t0}, drain(resp, "retryablehttp")
		},
		teardown: func() error { tr.CloseIdleConnections(); return nil },
	}
}

// hooklineArm delivers through a fresh Deliverer with c workers (MaxPerHost c:
// one receiver) on the store newStore gives; each op calls Deliver and waits
// until the delivery has succeeded (Observer.Done).
func hooklineArm(url string, signer *signing.Signer, newStore func() (store.Store, error)) armRun {
	var d *delivery.Deliverer
	var waiters sync.Map // uuid.UUID -> chan error
	ch := func(id uuid.UUID) chan error {
		if v, ok := waiters.Load(id); ok {
			return v.(chan error)
		}
		v, _ := waiters.LoadOrStore(id, make(chan error, 1))
		return v.(chan error)
	}
	// answer tells the op waiting for id its outcome; the first answer (a
	// failed attempt, or the end) counts.
	answer := func(id uuid.UUID, err error) {
		select {
		case ch(id) <- err:
		default:
		}
	}
	return armRun{
		setup: func(c int) error {
			st, err := newStore()
			if err != nil {
				return err
			}
			d, err = delivery.New(delivery.Config{
				Signer:               signer,
				Store:                st,
				Workers:              c,
				MaxPerHost:           c,
				AllowPrivateNetworks: true, // the receiver is on loopback
				Observer: delivery.Observer{
					// A failed attempt fails the arm at once: its retry,
					// seconds later, would only stall a slot.
					Attempt: func(rec *store.Delivery, a store.Attempt) {
						if a.FailureReason != "" {
							answer(rec.ID, fmt.Errorf("delivery %s attempt %d failed: %s: %s", rec.ID, a.AttemptNumber, a.FailureReason, a.ErrorMessage))
						}
					},
					Done: func(rec *store.Delivery) {
						var err error
						if rec.Status != store.StatusSucceeded {
							err = fmt.Errorf("delivery %s ended %s: %s", rec.ID, rec.Status, rec.FailureDetail)
						}
						answer(rec.ID, err)
					},
					Error: func(op string, err error) { fmt.Fprintf(os.Stderr, "store %s: %v\n", op, err) },
				},
			})
			if err != nil {
				return err
			}
			return d.Start(context.Background())
		},
		op: func(ctx context.Context, w int) (sample, error) {
			cb := newCallback()
			// From before Deliver, as the other arms time from before
			// their request: validating, freezing and storing the
			// callback (a durable commit on PostgreSQL) are part of it.
			t0 := time.Now().UnixNano()
			rec, err := d.Deliver(ctx, url, cb)
			if err != nil {
				return sample{}, err
			}
			err = <-ch(rec.ID) // measure's watchdog bounds the wait
			waiters.Delete(rec.ID)
			return sample{rec.ID.String(), t0}, err
		},
		teardown: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return d.Stop(ctx) // one that did not stop may still claim from a shared schema
		},
	}
}

func newSigner() (*signing.Signer, error) {
	sec, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	if err != nil {
		return nil, err
	}
	ring, err := signing.NewKeyRing(sec)
	if err != nil {
		return nil, err
	}
	return signing.NewSigner(signing.SignerConfig{Keys: ring})
}

// pgSchema is a fresh, migrated schema of the test database, dropped by Drop.
type pgSchema struct {
	Pool   *pgxpool.Pool
	Store  *postgres.Store
	Schema string
	drop   sync.Once
}

func openPG(ctx context.Context, dsn string, maxConns int32, tag string) (*pgSchema, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, err
	}
	schema := "hookline_bench_" + tag + "_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	st, err := postgres.New(pool, postgres.Options{Schema: schema})
	if err != nil {
		pool.Close()
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		pool.Close()
		return nil, err
	}
	p := &pgSchema{Pool: pool, Store: st, Schema: schema}
	liveMu.Lock()
	live[p] = true
	liveMu.Unlock()
	return p, nil
}

// live holds the schemas made and not yet dropped, which exit drops.
var (
	liveMu sync.Mutex
	live   = map[*pgSchema]bool{}
)

// Drop drops the schema and closes its pool. A later or concurrent call
// (exit's, say, while the run's own is under way) waits for the first.
func (p *pgSchema) Drop() {
	p.drop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := p.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+p.Schema+" CASCADE"); err != nil {
			fmt.Fprintln(os.Stderr, "drop schema:", err)
		}
		p.Pool.Close()
		liveMu.Lock()
		delete(live, p)
		liveMu.Unlock()
	})
}

// exit drops the schemas still live, then exits with code: a failed or
// interrupted run leaves none behind.
func exit(code int) {
	liveMu.Lock()
	ps := make([]*pgSchema, 0, len(live))
	for p := range live {
		ps = append(ps, p)
	}
	liveMu.Unlock()
	for _, p := range ps {
		p.Drop()
	}
	os.Exit(code)
}

// insertArm is the floor of a durable Deliver on Postgres: one single-row
// INSERT of the 1 KiB payload into a copy of the deliveries table (same
// columns and indexes), its own durable transaction, on the same 16-connection
// pool. It sends nothing, so it has no latency to the receiver.
func insertArm(pg *pgSchema, body []byte) armRun {
	var insert string
	return armRun{
		setup: func(c int) error {
			insert = "INSERT INTO " + pg.Schema + `.bare (id, batch_id, callback_url, payload, is_automatic, status,
				attempt_count, max_attempts, next_attempt_at, created_at, updated_at)
				VALUES ($1, $2, 'http://127.0.0.1/hook', $3, true, 'pending', 0, 8, $4, $4, $4)`
			_, err := pg.Pool.Exec(context.Background(), "CREATE TABLE IF NOT EXISTS "+pg.Schema+".bare (LIKE "+pg.Schema+".deliveries INCLUDING ALL)")
			return err
		},
		op: func(ctx context.Context, w int) (sample, error) {
			_, err := pg.Pool.Exec(ctx, insert, uuid.Must(uuid.NewV7()), uuid.New(), body, time.Now())
			return sample{}, err
		},
		teardown: func() error { return nil },
	}
}

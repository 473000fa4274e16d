package postgres_test

// Throughput of the PostgreSQL store, all figures from one run:
//
//	HOOKLINE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test go test -run='^$' -bench=Deliver -benchtime=10000x ./store/postgres/
//
// BenchmarkDeliver runs three arms at each concurrency c (16, 64), taking
// turns in three rounds of b.N each so that the machine's noise falls on all
// of them alike:
//
//   - bare: the floor, durable single-row INSERTs of a 1 KiB payload into a
//     copy of the deliveries table (same columns and indexes), c callers,
//     each row its own transaction;
//   - postgres: end to end, c goroutines call Deliver with 1 KiB callbacks
//     while a Deliverer with c workers on the PostgreSQL store sends them to
//     a loopback receiver and records every attempt; a delivery counts when
//     it has succeeded;
//   - memory: the same on the memory store, for comparison.
//
// ratio is postgres deliveries/s over bare rows/s; the target is 0.8.
// BenchmarkStorePipeline is the same work without the Deliverer's
// scheduling. BenchmarkClaim drains 100k due deliveries with 4 claimers
// taking 100 at a time. Every pool has 16 connections (the Postgres store's
// LISTEN connection aside); the commits of the benchmarks are durable (the
// tests' are not), except claims, which commit without waiting for the disk
// by design (see Store.Claim), and so are not a durable-commit figure.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/storetest"
)

// benchConns is the connection pool size of every benchmark, so the bare
// INSERTs and the Deliverer compete on equal terms.
const benchConns = 16

func BenchmarkDeliver(b *testing.B) {
	for _, c := range []int{16, 64} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			db := newTestDB(b)
			barePool := newPool(b, db.DSN, benchConns)
			pg := db.NewStore(b, newPool(b, db.DSN, benchConns), nil)
			insert := bareTable(b, barePool, db.Schema)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()

			const rounds = 3
			var bare, onPG, onMemory time.Duration
			b.ResetTimer()
			for range rounds {
				bare += runBare(b, barePool, insert, c, b.N)
				onPG += runDeliver(b, pg, srv.URL, c, b.N)
				onMemory += runDeliver(b, store.NewMemory(), srv.URL, c, b.N)
			}
			b.StopTimer()
			n := float64(rounds * b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(n/bare.Seconds(), "bare-rows/s")
			b.ReportMetric(n/onPG.Seconds(), "postgres-deliveries/s")
			b.ReportMetric(n/onMemory.Seconds(), "memory-deliveries/s")
			b.ReportMetric(bare.Seconds()/onPG.Seconds(), "ratio")
		})
	}
}

// bareTable creates a copy of schema's deliveries table (same columns and
// indexes) and returns the INSERT of one row into it.
func bareTable(b *testing.B, pool *pgxpool.Pool, schema string) string {
	_, err := pool.Exec(context.Background(), "CREATE TABLE "+schema+".bare (LIKE "+schema+".deliveries INCLUDING ALL)")
	require.NoError(b, err)
	return "INSERT INTO " + schema + `.bare (id, batch_id, callback_url, payload, is_automatic, status,
		attempt_count, max_attempts, next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, 'http://127.0.0.1/hook', $3, true, 'pending', 0, 8, $4, $4, $4)`
}

// runBare commits n single-row INSERTs of a 1 KiB payload from c callers
// on pool, each its own durable transaction.
func runBare(b *testing.B, pool *pgxpool.Pool, insert string, c, n int) time.Duration {
	body := []byte(`{"output":"` + strings.Repeat("x", 1000) + `"}`)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				now := time.Now()
				if _, err := pool.Exec(ctx, insert, [16]byte(uuid.Must(uuid.NewV7())), [16]byte(uuid.New()), body, now); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// callback1K is a callback whose frozen bytes are about 1 KiB.
func callback1K(batch uuid.UUID) payload.Callback {
	now := time.Now()
	return payload.Callback{
		Event:       payload.EventBatchSucceeded,
		BatchID:     batch,
		Status:      payload.StatusSucceeded,
		Output:      map[string]any{"items": []string{strings.Repeat("r", 760)}, "total": 1},
		DurationMS:  1234,
		CreatedAt:   now.Add(-time.Second),
		CompletedAt: now,
		Metadata:    map[string]any{"source": "benchmark"},
	}
}

// runDeliver delivers n callbacks to url through a fresh Deliverer with c
// workers on st, from c goroutines calling Deliver, and returns the time
// until the last has succeeded.
func runDeliver(b *testing.B, st store.Store, url string, c, n int) time.Duration {
	var done atomic.Int64
	all := make(chan struct{})
	d, err := delivery.New(delivery.Config{
		Signer:               newSigner(b, newSecret(b)),
		Store:                st,
		Workers:              c,
		MaxPerHost:           c, // the receiver is one host
		AllowPrivateNetworks: true,
		Observer: delivery.Observer{
			Done: func(rec *store.Delivery) {
				if rec.Status != store.StatusSucceeded {
					b.Errorf("delivery %s ended %s: %s", rec.ID, rec.Status, rec.FailureDetail)
				}
				if done.Add(1) == int64(n) {
					close(all)
				}
			},
			Error: func(op string, err error) { b.Errorf("store %s: %v", op, err) },
		},
	})
	require.NoError(b, err)
	ctx := context.Background()
	require.NoError(b, d.Start(ctx))
	defer d.Stop(ctx)
	frozen, err := payload.Freeze(callback1K(uuid.New()))
	require.NoError(b, err)
	require.InDelta(b, 1024, len(frozen), 64, "the benchmark's callbacks are 1 KiB")

	var next atomic.Int64
	start := time.Now()
	for range c {
		go func() {
			for next.Add(1) <= int64(n) {
				if _, err := d.Deliver(ctx, url+"/hook", callback1K(uuid.New())); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d deliveries ended within 5 minutes", done.Load(), n)
	}
	return time.Since(start)
}

func BenchmarkClaim(b *testing.B) {
	const (
		rows     = 100_000
		claimers = 4
		batch    = 100
	)
	var claimed int64
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		db := newTestDB(b)
		pool := newPool(b, db.DSN, benchConns)
		st := db.NewStore(b, pool, nil)
		seedDue(b, pool, db.Schema, rows)
		now := time.Now()
		b.StartTimer()

		start := time.Now()
		var wg sync.WaitGroup
		var n atomic.Int64
		for range claimers {
			wg.Go(func() {
				for {
					ds, err := st.Claim(context.Background(), now, batch, time.Hour)
					if err != nil {
						b.Error(err)
						return
					}
					if len(ds) == 0 {
						return
					}
					n.Add(int64(len(ds)))
				}
			})
		}
		wg.Wait()
		elapsed += time.Since(start)
		claimed += n.Load()
		require.EqualValues(b, rows, n.Load(), "the claimers must drain every due delivery")
	}
	b.ReportMetric(float64(claimed)/elapsed.Seconds(), "rows/s")
}

// seedDue copies n due deliveries into schema's deliveries table.
func seedDue(b *testing.B, pool *pgxpool.Pool, schema string, n int) {
	b.Helper()
	now := time.Now().Add(-time.Minute)
	body := []byte(`{"event":"batch.succeeded"}`)
	rows := make([][]any, n)
	for i := range rows {
		d := storetest.NewDelivery(uuid.New(), now.Add(time.Duration(i)*time.Microsecond))
		rows[i] = []any{d.ID, d.BatchID, d.CallbackURL, body, true, "pending", 0, 8, d.NextAttemptAt, d.CreatedAt, d.UpdatedAt}
	}
	_, err := pool.CopyFrom(context.Background(), pgx.Identifier{schema, "deliveries"},
		[]string{"id", "batch_id", "callback_url", "payload", "is_automatic", "status", "attempt_count", "max_attempts", "next_attempt_at", "created_at", "updated_at"},
		pgx.CopyFromRows(rows))
	require.NoError(b, err)
	_, err = pool.Exec(context.Background(), "ANALYZE "+schema+".deliveries")
	require.NoError(b, err)
}

// BenchmarkStorePipeline drives the Store directly with the store calls and
// the request a Deliverer makes for each callback (Insert, Claim, an
// unsigned HTTP POST to a loopback receiver, Record), but claims ahead: one
// claimer keeps up to 2c leased deliveries queued for c workers, instead of
// claiming only for idle workers. It shows what the Store sustains apart
// from the Deliverer's scheduling.
func BenchmarkStorePipeline(b *testing.B) {
	for _, c := range []int{16, 64} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			db := newTestDB(b)
			st := db.NewStore(b, newPool(b, db.DSN, benchConns), nil)
			benchPipeline(b, st, c)
		})
	}
}

func benchPipeline(b *testing.B, st store.Store, c int) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 2 * c
	body, err := payload.Freeze(callback1K(uuid.New()))
	require.NoError(b, err)
	ctx := context.Background()

	var next, done atomic.Int64
	all := make(chan struct{})
	jobs := make(chan *store.Delivery, 2*c)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range c { // producers
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				now := time.Now()
				d := storetest.NewDelivery(uuid.New(), now)
				d.Payload = body
				if err := st.Insert(ctx, d); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	go func() { // the claimer
		defer close(jobs)
		for {
			select {
			case <-all:
				return
			default:
			}
			free := cap(jobs) - len(jobs)
			if free == 0 {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			ds, err := st.Claim(ctx, time.Now(), free, time.Minute)
			if err != nil {
				b.Error(err)
				return
			}
			if len(ds) == 0 {
				time.Sleep(200 * time.Microsecond)
			}
			for _, d := range ds {
				jobs <- d
			}
		}
	}()
	for range c { // workers
		go func() {
			for d := range jobs {
				resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(d.Payload))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				now := time.Now()
				r := store.Result{
					DeliveryID: d.ID, Status: store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
					Attempt: store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: d.ID, AttemptNumber: 1, StatusCode: resp.StatusCode, CreatedAt: now},
				}
				if err := st.Record(ctx, d.LeaseToken, r); err != nil {
					b.Error(err)
					return
				}
				if done.Add(1) == int64(b.N) {
					close(all)
				}
			}
		}()
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d deliveries ended within 5 minutes", done.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
	wg.Wait()
}

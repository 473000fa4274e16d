package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/store"
)

const (
	memPayloadLen = 1 << 10
	memDue        = 100
	memURL        = "https://hooks.example.com/callbacks/runflow"
)

var memPayload = func() []byte {
	p := []byte(`{"event":"batch.succeeded","output":"`)
	for len(p) < memPayloadLen-2 {
		p = append(p, 'x')
	}
	return append(p, `"}`...)
}()

type memResult struct {
	n          int
	overhead   float64       // heap bytes per pending delivery beyond its payload
	claim      time.Duration // mean time of one Claim of 100 due
	claimP50   time.Duration
	fill       time.Duration
	claimCount int
}

// memScale fills a Memory with n pending deliveries with 1 KiB payloads (100
// due, the others due years later, at random), as store/memory_bench_test.go
// does, measures the heap it keeps beyond the payloads, warms up until the
// GC has run two cycles, and times Claim of the 100 due deliveries (each
// claim moves the clock past the previous leases).
func memScale(n, claims int) (memResult, error) {
	res := memResult{n: n}
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	m := store.NewMemory()
	for i := range n {
		next := base.Add(-time.Duration(i) * time.Millisecond)
		if i >= memDue {
			next = base.AddDate(10, 0, 0).Add(time.Duration(r.IntN(1<<20)) * time.Second)
		}
		d := &store.Delivery{
			ID:            uuid.Must(uuid.NewV7()),
			BatchID:       uuid.New(),
			CallbackURL:   memURL,
			Payload:       memPayload,
			IsAutomatic:   true,
			Status:        store.StatusPending,
			MaxAttempts:   5,
			NextAttemptAt: next,
			CreatedAt:     base,
			UpdatedAt:     base,
		}
		if err := m.Insert(ctx, d); err != nil {
			return res, err
		}
	}
	res.fill = time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	res.overhead = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n) - memPayloadLen

	now := base
	claim := func() error {
		now = now.Add(time.Second)
		ds, err := m.Claim(ctx, now, memDue, time.Second)
		if err != nil {
			return err
		}
		if len(ds) != memDue {
			return fmt.Errorf("claimed %d, want %d", len(ds), memDue)
		}
		return nil
	}
	// Warm up until the GC has finished two cycles (see warmUp in
	// store/memory_bench_test.go), bounded so a huge heap cannot stall us.
	cycles := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(cycles)
	first := cycles[0].Value.Uint64()
	warmDeadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if err := claim(); err != nil {
			return res, err
		}
		if i%64 == 0 {
			metrics.Read(cycles)
			if cycles[0].Value.Uint64() >= first+2 || time.Now().After(warmDeadline) {
				break
			}
		}
	}
	times := make([]time.Duration, claims)
	t0 := time.Now()
	for i := range times {
		s := time.Now()
		if err := claim(); err != nil {
			return res, err
		}
		times[i] = time.Since(s)
	}
	res.claim = time.Since(t0) / time.Duration(claims)
	slices.Sort(times)
	res.claimP50 = times[len(times)/2]
	res.claimCount = claims
	runtime.KeepAlive(m)
	m = nil
	runtime.GC()
	debug.FreeOSMemory()
	return res, nil
}

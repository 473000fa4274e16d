package store_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/store"
)

const (
	benchPayloadLen = 1 << 10
	benchDue        = 100
	benchURL        = "https://hooks.example.com/callbacks/runflow"
)

var benchPayload = func() []byte {
	p := []byte(`{"event":"batch.succeeded","output":"`)
	for len(p) < benchPayloadLen-2 {
		p = append(p, 'x')
	}
	return append(p, `"}`...)
}()

// fillMemory returns a Memory holding n pending deliveries with 1 KiB
// payloads, each of its own batch: due of them are due at base, the others
// are due years later, at random.
func fillMemory(tb testing.TB, n, due int) *store.Memory {
	tb.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	m := store.NewMemory()
	for i := range n {
		next := base.Add(-time.Duration(i) * time.Millisecond)
		if i >= due {
			next = base.AddDate(10, 0, 0).Add(time.Duration(r.IntN(1<<20)) * time.Second)
		}
		d := &store.Delivery{
			ID:            uuid.Must(uuid.NewV7()),
			BatchID:       uuid.New(),
			CallbackURL:   benchURL,
			Payload:       benchPayload,
			IsAutomatic:   true,
			Status:        store.StatusPending,
			MaxAttempts:   5,
			NextAttemptAt: next,
			CreatedAt:     base,
			UpdatedAt:     base,
		}
		if err := m.Insert(ctx, d); err != nil {
			tb.Fatal(err)
		}
	}
	return m
}

var benchSizes = []struct {
	name string
	n    int
}{{"10k", 10_000}, {"100k", 100_000}, {"1M", 1_000_000}}

// BenchmarkMemoryClaim measures one Claim of 100 due deliveries among n
// pending ones. Each iteration moves the clock past the previous leases, so
// the same 100 are due again and the rest never are. The timed loop starts
// after a warm-up (see warmUp).
func BenchmarkMemoryClaim(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("pending="+size.name, func(b *testing.B) {
			if size.n >= 1_000_000 && testing.Short() {
				b.Skip("1M pending deliveries take about 1.5 GB; skipped under -short")
			}
			m := fillMemory(b, size.n, benchDue)
			now := base
			warmUp(b, m, &now)
			for b.Loop() {
				claimDue(b, m, &now)
			}
		})
	}
}

func claimDue(b *testing.B, m *store.Memory, now *time.Time) {
	*now = now.Add(time.Second)
	ds, err := m.Claim(context.Background(), *now, benchDue, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	if len(ds) != benchDue {
		b.Fatalf("claimed %d, want %d", len(ds), benchDue)
	}
}

// warmUp claims until the garbage collector has finished two cycles, so that
// the timed loop sees what a long-running process sees: a heap already
// faulted in and being reused. Without it the 1M case mostly measures the
// kernel's first-touch page faults while a fresh 1.5 GB heap grows to its GC
// goal, which no steady state pays.
func warmUp(b *testing.B, m *store.Memory, now *time.Time) {
	cycles := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(cycles)
	start := cycles[0].Value.Uint64()
	for i := 0; ; i++ {
		claimDue(b, m, now)
		if i%64 == 0 {
			metrics.Read(cycles)
			if cycles[0].Value.Uint64() >= start+2 {
				return
			}
		}
	}
}

// BenchmarkMemoryOverhead measures the heap the store keeps per pending
// delivery beyond its payload bytes (the entry, its indexes and the heap
// slot), reported as B/delivery-overhead. The budget is 512 bytes. All
// deliveries share one callback URL string, so none of its bytes count.
func BenchmarkMemoryOverhead(b *testing.B) {
	for _, size := range benchSizes[1:] {
		b.Run("pending="+size.name, func(b *testing.B) {
			if size.n >= 1_000_000 && testing.Short() {
				b.Skip("1M pending deliveries take about 1.5 GB; skipped under -short")
			}
			var overhead float64
			for b.Loop() {
				overhead = overheadPerDelivery(b, size.n)
			}
			b.ReportMetric(overhead, "B/delivery-overhead")
		})
	}
}

func overheadPerDelivery(tb testing.TB, n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := fillMemory(tb, n, 0)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	perDelivery := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	return perDelivery - benchPayloadLen
}

// TestMemoryOverheadBudget fails when the store keeps more than 512 bytes
// per pending delivery beyond its payload.
func TestMemoryOverheadBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 100k deliveries")
	}
	overhead := overheadPerDelivery(t, 100_000)
	t.Logf("%.0f bytes per pending delivery beyond its payload", overhead)
	if overhead > 512 {
		t.Errorf("Memory keeps %.0f bytes per pending delivery beyond its payload, over the 512-byte budget", overhead)
	}
}

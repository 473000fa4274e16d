// Command bench measures hookline against the physical limit and against
// what users would write instead, in one run, and prints a table, one
// "RESULT <name> <value>" line per figure, and a README-ready markdown table:
//
//	cd bench && go run .          # full, under 5 minutes on 2 cores
//	cd bench && go run . -quick   # under 60 s
//
// It is its own Go module (replace => ../) so that its peer dependencies
// (go-retryablehttp, the standard-webhooks library) never enter hookline's
// go.mod. See issue 7.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/store"
)

func main() {
	testing.Init() // registers test.benchtime, used by testing.Benchmark
	var (
		quick    = flag.Bool("quick", false, "a shorter run (under 60 s): shorter windows, memory scale at 10k and 100k only, no Postgres scale")
		dsn      = flag.String("dsn", cmp.Or(os.Getenv("HOOKLINE_TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/test"), "PostgreSQL DSN (default $HOOKLINE_TEST_DATABASE_URL); its rows are skipped when unreachable")
		profile  = flag.String("profile", "", "write cpu.pprof and allocs.pprof (with allocs-base.pprof) of the memory-store arm at c=64 to this directory")
		receiver = flag.Bool("receiver", false, "run as the loopback receiver (internal)")
		only     = flag.String("only", "", "comma-separated sections to run: e2e,sign,freeze,mem,pg (default all)")
	)
	flag.Parse()
	if *receiver {
		runReceiver()
		return
	}
	// An interrupt drops the schemas made so far (see exit).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "bench: %v: dropping the schemas made so far (again to quit at once)\n", s)
		go func() { <-sigs; os.Exit(130) }()
		exit(130)
	}()
	begin := time.Now()
	want := func(s string) bool {
		return *only == "" || strings.Contains(","+*only+",", ","+s+",")
	}
	// e2e: per arm and concurrency, rounds windows of dur/rounds, each after a warm-up
	rounds, warm, dur, benchtime := 3, 300*time.Millisecond, 3*time.Second, "500ms"
	memSizes := []int{10_000, 100_000, 1_000_000}
	if *quick {
		rounds, warm, dur, benchtime = 2, 150*time.Millisecond, 800*time.Millisecond, "100ms"
		memSizes = memSizes[:2]
	}
	flag.Set("test.benchtime", benchtime)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("hookline bench: %s, GOMAXPROCS=%d, %s, quick=%v, load %s\n",
		runtime.Version(), runtime.GOMAXPROCS(0), runtime.GOARCH, *quick, strings.Join(strings.Fields(string(load))[:3], " "))

	rep := &report{}
	ctx := context.Background()

	// Is Postgres there?
	pgOK := false
	if want("e2e") || want("pg") {
		if p, err := openPG(ctx, *dsn, 1, "probe"); err != nil {
			rep.note("PostgreSQL at %s is unreachable (%v): its rows are skipped", redact(*dsn), err)
		} else {
			p.Drop()
			pgOK = true
		}
	}

	if want("e2e") {
		runE2E(rep, *dsn, pgOK, rounds, warm, dur, *profile)
	}
	if want("sign") {
		res, err := signingBenches([]int{1 << 10, 64 << 10}, rounds)
		if err != nil {
			fail("signing: %v", err)
		}
		rep.signing(res)
	}
	if want("freeze") {
		res, n, err := freezeBenches(rounds)
		if err != nil {
			fail("freeze: %v", err)
		}
		rep.freeze(res, n)
	}
	if want("mem") {
		var rs []memResult
		for _, n := range memSizes {
			r, err := memScale(n, 500)
			if err != nil {
				fail("memory scale %d: %v", n, err)
			}
			rs = append(rs, r)
		}
		rep.mem(rs)
	}
	if want("pg") {
		switch {
		case *quick:
			rep.note("Postgres scale skipped in -quick")
		case !pgOK:
			rep.note("Postgres scale skipped: PostgreSQL unreachable")
		default:
			small, err := pgScale(ctx, *dsn, 10_000, 10_000, 50, 200)
			if err != nil {
				fail("postgres scale 10k: %v", err)
			}
			big, err := pgScale(ctx, *dsn, 1_000_000, 10_000, 50, 200)
			if err != nil {
				fail("postgres scale 1M: %v", err)
			}
			rep.pg(small, big)
		}
	}
	rep.print(time.Since(begin))
	for _, e := range rep.e2e {
		if e.err != nil {
			fail("the e2e arm %s at c=%d failed (see the NOTE above)", e.arm, e.c)
		}
	}
}

func runE2E(rep *report, dsn string, pgOK bool, rounds int, warm, dur time.Duration, profDir string) {
	rcv, err := startReceiver()
	if err != nil {
		fail("receiver: %v", err)
	}
	defer rcv.Stop()
	url := rcv.URL + "/hook"
	body, err := payload.Freeze(newCallback())
	if err != nil {
		fail("freeze: %v", err)
	}
	signer, err := newSigner()
	if err != nil {
		fail("signer: %v", err)
	}
	var pg *pgSchema
	if pgOK {
		pg, err = openPG(context.Background(), dsn, 16, "e2e")
		if err != nil {
			rep.note("Postgres e2e skipped: %v", err)
		} else {
			defer pg.Drop()
		}
	}
	arms := []struct {
		name string
		run  armRun
	}{
		{"bare", bareArm(url, body)},
		{"memory", hooklineArm(url, signer, func() (store.Store, error) { return store.NewMemory(), nil })},
	}
	if pg != nil {
		arms = append(arms, struct {
			name string
			run  armRun
		}{"postgres", hooklineArm(url, signer, func() (store.Store, error) { return pg.Store, nil })}, struct {
			name string
			run  armRun
		}{"pg-insert", insertArm(pg, body)})
	}
	arms = append(arms, struct {
		name string
		run  armRun
	}{"retryablehttp", retryArm(url, body)})
	rep.payloadLen = len(body)
	rep.rounds, rep.window = rounds, dur
	// The arms alternate in rounds, so that the machine's noise hits all.
	for _, c := range []int{1, 16, 64} {
		acc := make([]e2eResult, len(arms))
		for round := range rounds {
			for i, a := range arms {
				r := measure(rcv, a.name, c, a.run, warm, dur/time.Duration(rounds), "")
				if round == 0 {
					acc[i] = r
				} else {
					acc[i].add(r)
				}
			}
		}
		for i := range acc {
			r := &acc[i]
			r.finish()
			if r.err != nil {
				rep.note("e2e %s c=%d failed: %v", r.arm, c, r.err)
				fmt.Fprintf(os.Stderr, "  e2e %-13s c=%-2d failed\n", r.arm, c)
			} else {
				fmt.Fprintf(os.Stderr, "  e2e %-13s c=%-2d %8.0f /s  p50 %-9v p99 %v\n", r.arm, c, r.rate, r.p50, r.p99)
			}
			rep.e2e = append(rep.e2e, *r)
		}
	}
	if profDir != "" { // a separate, unreported run of the memory arm at c=64
		r := measure(rcv, "memory", 64, arms[1].run, warm, dur, profDir)
		if r.err != nil {
			rep.note("profile run failed: %v", r.err)
		} else {
			rep.note("profiled the memory arm at c=64 for %v (%d deliveries) into %s: go tool pprof -top %s/cpu.pprof; go tool pprof -top -sample_index=alloc_space -base %s/allocs-base.pprof %s/allocs.pprof",
				dur, r.n, profDir, profDir, profDir, profDir)
		}
	}
	if pg == nil {
		rep.note("Postgres e2e rows skipped: PostgreSQL unreachable")
	}
}

func redact(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 {
		if j := strings.Index(dsn, "://"); j > 0 && j < i {
			user := dsn[j+3 : i]
			if u, _, ok := strings.Cut(user, ":"); ok {
				return dsn[:j+3] + u + ":***" + dsn[i:]
			}
		}
	}
	return dsn
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	exit(1)
}

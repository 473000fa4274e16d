package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

type table struct {
	title string
	head  []string
	rows  [][]string
	foot  []string
	// leftTwo left-aligns the second column too
	leftTwo bool
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) text() string {
	w := make([]int, len(t.head))
	for _, r := range append([][]string{t.head}, t.rows...) {
		for i, c := range r {
			w[i] = max(w[i], len(c))
		}
	}
	var b strings.Builder
	b.WriteString(t.title + "\n")
	line := func(r []string) {
		for i, c := range r {
			if i == 0 {
				fmt.Fprintf(&b, "  %-*s", w[i], c)
			} else {
				fmt.Fprintf(&b, "  %*s", w[i], c)
			}
		}
		b.WriteString("\n")
	}
	line(t.head)
	for _, r := range t.rows {
		line(r)
	}
	for _, f := range t.foot {
		b.WriteString("  " + f + "\n")
	}
	return b.String()
}

func (t *table) markdown() string {
	var b strings.Builder
	b.WriteString(t.title + "\n\n")
	b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for i := range t.head {
		if i == 0 || (i == 1 && t.leftTwo) {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	if len(t.foot) > 0 {
		b.WriteString("\n" + strings.Join(t.foot, "\n") + "\n")
	}
	return b.String()
}

type result struct {
	name  string
	value string
}

type report struct {
	tables     []*table
	results    []result
	notes      []string
	e2e        []e2eResult
	payloadLen int
	rounds     int
	window     time.Duration
}

func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *report) result(name string, v float64, prec int) {
	r.results = append(r.results, result{name, strconv.FormatFloat(v, 'f', prec, 64)})
}

// num formats with thousands separators.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d >= time.Microsecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func (r *report) finishE2E() {
	if len(r.e2e) == 0 {
		return
	}
	t := &table{
		title:   fmt.Sprintf("End to end: %d-byte callbacks to a loopback receiver in another process, c requests in flight (closed loop), %v per cell in %d alternating rounds", r.payloadLen, r.window, r.rounds),
		leftTwo: true,
		head:    []string{"c", "arm", "deliveries/s", "× bare", "p50", "p99", "p99 × bare", "samples"},
		foot: []string{
			"Latency: from the request being started (bare, retryablehttp) or Deliver being called (hookline: freezing and storing included) to the receiver's handler being entered.",
			"bare = net/http, one shared client, pre-built bytes, no signing (the limit); memory/postgres = Deliverer (Workers=c, MaxPerHost=c) on that store;",
			"retryablehttp = goroutine pool doing hex HMAC-SHA256 + hashicorp/go-retryablehttp POSTs;",
			"pg-insert = c goroutines doing durable single-row INSERTs of the payload into a copy of the deliveries table (same 16-connection pool; sends nothing): the floor of a durable Deliver.",
		},
	}
	bare := map[int]e2eResult{}
	for _, e := range r.e2e {
		if e.arm == "bare" && e.err == nil { // a failed bare arm is no denominator
			bare[e.c] = e
		}
	}
	for _, e := range r.e2e {
		b := bare[e.c]
		if e.err != nil {
			t.add(strconv.Itoa(e.c), e.arm, "failed", "", "", "", "", "")
			continue
		}
		key := fmt.Sprintf("%s_c%d", strings.ReplaceAll(e.arm, "-", "_"), e.c)
		r.result("rate_"+key, e.rate, 0)
		if e.arm == "pg-insert" { // sends nothing: no latency, and no rate to set beside an HTTP one
			t.add(strconv.Itoa(e.c), e.arm, num(e.rate), "–", "–", "–", "–", "–")
			continue
		}
		if e.matched < e.n {
			r.note("%s c=%d: %d of %d requests were not found among the receiver's arrivals; its latencies are of the rest", e.arm, e.c, e.n-e.matched, e.n)
		}
		t.add(strconv.Itoa(e.c), e.arm, num(e.rate), ratio(e.rate, b.rate), dur(e.p50), dur(e.p99), ratio(float64(e.p99), float64(b.p99)), fmt.Sprintf("%d/%d", e.matched, e.n))
		r.result("p50_us_"+key, float64(e.p50)/1e3, 1)
		r.result("p99_us_"+key, float64(e.p99)/1e3, 1)
	}
	for _, arm := range []string{"memory", "postgres", "retryablehttp"} {
		for _, e := range r.e2e {
			if e.arm == arm && e.c == 64 && e.err == nil && bare[64].rate > 0 {
				r.result("ratio_"+arm+"_c64", e.rate/bare[64].rate, 3)
				r.result("p99_ratio_"+arm+"_c64", float64(e.p99)/float64(bare[64].p99), 2)
			}
		}
	}
	ins := map[int]float64{}
	for _, e := range r.e2e {
		if e.arm == "pg-insert" && e.err == nil {
			ins[e.c] = e.rate
		}
	}
	for _, e := range r.e2e {
		if e.arm == "postgres" && e.err == nil && ins[e.c] > 0 {
			r.result(fmt.Sprintf("ratio_postgres_vs_insert_c%d", e.c), e.rate/ins[e.c], 3)
		}
	}
	r.tables = append([]*table{t}, r.tables...)
}

func find(rs []microResult, name string) microResult {
	for _, m := range rs {
		if m.name == name {
			return m
		}
	}
	return microResult{}
}

func (r *report) signing(rs []microResult) {
	t := &table{
		title: "Standard Webhooks signing and verifying, ns/op (allocs/op)",
		head:  []string{"op", "size", "hookline", "bare crypto/hmac", "standard-webhooks lib", "hookline ÷ hmac", "hookline ÷ lib"},
		foot:  []string{"hookline: signing.Signer.Sign (sets 3 headers) / Verifier.VerifyStandard; bare: hmac.New+Write+Sum+base64 with the key decoded outside the loop; lib: github.com/standard-webhooks/standard-webhooks/libraries/go Sign / Verify."},
	}
	for _, op := range []string{"sign", "verify"} {
		for _, sz := range []string{"1KiB", "64KiB"} {
			h, b, l := find(rs, op+"_hookline_"+sz), find(rs, op+"_hmac_"+sz), find(rs, op+"_stdwebhooks_"+sz)
			cell := func(m microResult) string { return fmt.Sprintf("%s (%d)", num(m.ns), m.allocs) }
			t.add(op, sz, cell(h), cell(b), cell(l), ratio(h.ns, b.ns), ratio(h.ns, l.ns))
			for _, m := range []microResult{h, b, l} {
				r.result(m.name+"_ns", m.ns, 0)
			}
			r.result(op+"_ratio_hookline_vs_hmac_"+sz, h.ns/b.ns, 3)
			r.result(op+"_ratio_hookline_vs_stdwebhooks_"+sz, h.ns/l.ns, 3)
		}
	}
	r.tables = append(r.tables, t)
}

func (r *report) freeze(rs []microResult, n int) {
	f, j := find(rs, "freeze"), find(rs, "json_marshal")
	t := &table{
		title: fmt.Sprintf("payload.Freeze vs encoding/json.Marshal of the same %d-byte callback", n),
		head:  []string{"", "ns/op", "B/op", "allocs/op"},
	}
	t.add("payload.Freeze", num(f.ns), num(float64(f.bytes)), strconv.FormatInt(f.allocs, 10))
	t.add("encoding/json.Marshal", num(j.ns), num(float64(j.bytes)), strconv.FormatInt(j.allocs, 10))
	t.foot = []string{"Freeze ÷ Marshal: " + ratio(f.ns, j.ns) + " (Freeze also validates and keeps the wire format)."}
	r.result("freeze_ns", f.ns, 0)
	r.result("freeze_allocs", float64(f.allocs), 0)
	r.result("json_marshal_ns", j.ns, 0)
	r.result("json_marshal_allocs", float64(j.allocs), 0)
	r.result("freeze_ratio_vs_json", f.ns/j.ns, 3)
	r.tables = append(r.tables, t)
}

func sizeLabel(n int) string {
	switch {
	case n >= 1_000_000:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func (r *report) mem(rs []memResult) {
	t := &table{
		title: "Memory store scale: pending deliveries with 1 KiB payloads",
		head:  []string{"pending", "heap B/delivery beyond payload", "Claim 100 due (mean)", "Claim 100 (p50)", "× 10k", "fill time"},
		foot:  []string{"Heap: HeapAlloc after GC, before vs after filling. Claim: after a warm-up of two GC cycles, 500 claims of the 100 due among n pending."},
	}
	for _, m := range rs {
		t.add(sizeLabel(m.n), num(m.overhead), dur(m.claim), dur(m.claimP50), ratio(float64(m.claim), float64(rs[0].claim)), dur(m.fill))
		r.result("mem_overhead_bytes_"+sizeLabel(m.n), m.overhead, 0)
		r.result("mem_claim100_us_"+sizeLabel(m.n), float64(m.claim)/1e3, 1)
	}
	last := rs[len(rs)-1]
	r.result("mem_claim_ratio_"+sizeLabel(last.n)+"_vs_10k", float64(last.claim)/float64(rs[0].claim), 2)
	r.tables = append(r.tables, t)
}

func (r *report) pg(small, big pgScaleResult) {
	t := &table{
		title: "PostgreSQL store scale: claim and History against table size (10k pending in both)",
		head:  []string{"deliveries rows", "pending", "Claim 100 (p50)", "History of one batch (p50)", "seed time"},
		foot: []string{
			fmt.Sprintf("1M ÷ 10k: Claim %s, History %s. Terminal rows have 256-byte payloads and one attempt each; the History batch has 5 deliveries × 2 attempts; %d claims, %d History calls.",
				ratio(float64(big.claimP50), float64(small.claimP50)), ratio(float64(big.histP50), float64(small.histP50)), big.claims, big.histCalls),
		},
	}
	for _, p := range []pgScaleResult{small, big} {
		t.add(num(float64(p.rows)), num(float64(p.pending)), dur(p.claimP50), dur(p.histP50), dur(p.seed))
		r.result("pg_claim100_us_"+sizeLabel(p.rows), float64(p.claimP50)/1e3, 1)
		r.result("pg_history_us_"+sizeLabel(p.rows), float64(p.histP50)/1e3, 1)
	}
	r.result("pg_claim_ratio_1M_vs_10k", float64(big.claimP50)/float64(small.claimP50), 2)
	r.result("pg_history_ratio_1M_vs_10k", float64(big.histP50)/float64(small.histP50), 2)
	r.tables = append(r.tables, t)
}

func (r *report) print(total time.Duration) {
	r.finishE2E()
	fmt.Println()
	for _, t := range r.tables {
		fmt.Println(t.text())
	}
	for _, n := range r.notes {
		fmt.Println("NOTE:", n)
	}
	if len(r.notes) > 0 {
		fmt.Println()
	}
	for _, res := range r.results {
		fmt.Printf("RESULT %s %s\n", res.name, res.value)
	}
	r.result("wall_seconds", total.Seconds(), 1)
	fmt.Printf("RESULT wall_seconds %.1f\n", total.Seconds())
	fmt.Println("\n<!-- README-ready markdown -->")
	for _, t := range r.tables {
		fmt.Println(t.markdown())
	}
	for _, n := range r.notes {
		fmt.Println("- " + n)
	}
}

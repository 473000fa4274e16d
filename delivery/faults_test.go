package delivery_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

// fault is what the fault-injecting receiver does with one request.
type fault int

const (
	fOK fault = iota
	f500
	f503RetryAfter
	f429RetryAfter
	fResetBeforeHeaders
	fResetAfterPartialHeaders
	fHang
	fDrip
	fHuge
	fGone
	numFaults
)

// faultWeights: how often each fault is drawn, out of their sum.
var faultWeights = [numFaults]int{
	fOK: 45, f500: 14, f503RetryAfter: 5, f429RetryAfter: 5, fResetBeforeHeaders: 8,
	fResetAfterPartialHeaders: 7, fHang: 2, fDrip: 2, fHuge: 3, fGone: 2,
}

const (
	retryAfter503 = 30 * time.Second
	retryAfter429 = 90 * time.Second
)

// faultReceiver answers each request with a fault drawn from a seeded hash
// of (seed, webhook-id, the how-many-th request of that id), so a run
// replays exactly. It verifies and keeps every body it accepts (answers 2xx).
type faultReceiver struct {
	t     *testing.T
	seed  uint64
	clock *delivery.ManualClock
	ver   *signing.Verifier

	mu       sync.Mutex
	requests map[string]int      // webhook-id -> requests received
	accepted map[string][][]byte // webhook-id -> bodies answered 2xx
	plan     map[string][]fault  // webhook-id -> faults served, in order
}

func (f *faultReceiver) draw(id string, n int) fault {
	var b [8 + 36 + 8]byte
	binary.LittleEndian.PutUint64(b[:8], f.seed)
	copy(b[8:], id)
	binary.LittleEndian.PutUint64(b[44:], uint64(n))
	sum := sha256.Sum256(b[:])
	total := 0
	for _, w := range faultWeights {
		total += w
	}
	x := int(binary.LittleEndian.Uint64(sum[:8]) % uint64(total))
	for i, w := range faultWeights {
		if x < w {
			return fault(i)
		}
		x -= w
	}
	return fOK
}

func (f *faultReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("Webhook-Id")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.requests[id]++
	what := f.draw(id, f.requests[id])
	f.plan[id] = append(f.plan[id], what)
	f.mu.Unlock()

	accept := func() {
		if _, err := f.ver.Verify(r.Header, body); err != nil {
			f.t.Errorf("delivery %s: a body the receiver accepted does not verify: %v", id, err)
		}
		f.mu.Lock()
		f.accepted[id] = append(f.accepted[id], body)
		f.mu.Unlock()
	}
	hijack := func() net.Conn {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			f.t.Errorf("hijack: %v", err)
			return nil
		}
		return conn
	}
	switch what {
	case fOK:
		accept()
		w.WriteHeader(http.StatusOK)
	case f500:
		http.Error(w, "internal error", http.StatusInternalServerError)
	case f503RetryAfter:
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter503/time.Second)))
		w.WriteHeader(http.StatusServiceUnavailable)
	case f429RetryAfter:
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter429/time.Second)))
		w.WriteHeader(http.StatusTooManyRequests)
	case fResetBeforeHeaders:
		if conn := hijack(); conn != nil {
			conn.(*net.TCPConn).SetLinger(0) // RST, not FIN
			conn.Close()
		}
	case fResetAfterPartialHeaders:
		if conn := hijack(); conn != nil {
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Ty")
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	case fHang:
		<-r.Context().Done()
	case fDrip:
		accept()
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	case fHuge:
		accept()
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 160 { // 10 MiB, unless the sender hangs up first
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case fGone:
		w.WriteHeader(http.StatusGone)
	}
}

// faultSchedule is the retry schedule of the fault tests: no jitter, so
// every attempt time can be checked.
var faultSchedule = []time.Duration{time.Second, 10 * time.Second, 100 * time.Second, 1000 * time.Second}

// TestFaultsEveryDeliveryEndsTruthfully drives 2,000 deliveries through a
// receiver that fails in every way a receiver fails, with the manual clock,
// until all are terminal, and checks each delivery's history against what
// the receiver did.
func TestFaultsEveryDeliveryEndsTruthfully(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	seed := testenv.Seed(t)
	clock := delivery.NewManualClock(t0)
	secret := newSecret(t)
	ver, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{secret}, Now: clock.Now})
	require.NoError(t, err)
	rcv := &faultReceiver{t: t, seed: seed, clock: clock, ver: ver,
		requests: map[string]int{}, accepted: map[string][][]byte{}, plan: map[string][]fault{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a request passed a TLS handshake with an untrusted certificate")
	}))
	tlsSrv.Config.ErrorLog = nil
	defer tlsSrv.Close()

	baseline := runtime.NumGoroutine()
	st := store.NewMemory()
	d, err := delivery.New(delivery.Config{
		Signer:               newSigner(t, secret),
		Store:                st,
		Clock:                clock,
		Workers:              64,
		MaxPerHost:           64,
		MaxAttempts:          len(faultSchedule) + 1,
		RetryPolicy:          func() backoff.BackOff { return &delivery.Schedule{Delays: faultSchedule} },
		AttemptTimeout:       2 * time.Second, // generous: a loaded 2-core machine under -race must not time out a healthy answer
		AllowPrivateNetworks: true,
	})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))

	ids := make([]uuid.UUID, 0, n)
	tlsIDs := map[uuid.UUID]bool{}
	for i := range n {
		url := srv.URL + "/hooks"
		if i%20 == 7 { // 5%: an endpoint whose certificate nobody trusts
			url = tlsSrv.URL + "/hooks"
		}
		rec, err := d.Deliver(context.Background(), url, callback(uuid.New()))
		require.NoError(t, err)
		ids = append(ids, rec.ID)
		if strings.HasPrefix(url, "https") {
			tlsIDs[rec.ID] = true
		}
	}

	final := driveAll(t, clock, st, ids, 60*time.Second)

	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, d.Stop(stopCtx))

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	outcomes := map[string]int{}
	for _, id := range ids {
		rec := final[id]
		key := id.String()
		outcomes[string(rec.Status)+"/"+string(rec.FailureReason)]++
		require.True(t, rec.Status.Terminal(), "delivery %s is %s (seed %d)", id, rec.Status, seed)
		require.Equal(t, rec.AttemptCount, len(rec.Attempts), "delivery %s: attempt_count must equal the attempts recorded", id)
		last := rec.Attempts[len(rec.Attempts)-1]
		assert.Equal(t, last.StatusCode >= 200 && last.StatusCode < 300, rec.Status == store.StatusSucceeded,
			"delivery %s: succeeded exactly when the last attempt got a 2xx (last %d, status %s)", id, last.StatusCode, rec.Status)
		for i, a := range rec.Attempts {
			assert.Equal(t, i+1, a.AttemptNumber, "delivery %s: attempt numbers run from 1 without gaps", id)
		}
		if tlsIDs[id] {
			assert.Equal(t, store.ReasonTLSError, rec.FailureReason, "delivery %s to an untrusted certificate", id)
			assert.Equal(t, store.StatusFailed, rec.Status)
			continue
		}
		// The receiver saw exactly one request per recorded attempt: nothing
		// was sent twice, nothing sent went unrecorded.
		plan := rcv.plan[key]
		require.Len(t, plan, rec.AttemptCount, "delivery %s: requests received vs attempts recorded (seed %d)", id, seed)
		for i, a := range rec.Attempts {
			checkAttempt(t, id, a, plan[i])
			if i+1 < len(rec.Attempts) {
				want := faultSchedule[i]
				switch plan[i] {
				case f503RetryAfter:
					want = max(want, retryAfter503)
				case f429RetryAfter:
					want = max(want, retryAfter429)
				}
				got := rec.Attempts[i+1].CreatedAt.Sub(a.CreatedAt)
				assert.Equal(t, want, got, "delivery %s: attempt %d came %s after attempt %d, want %s (seed %d)", id, i+2, got, i+1, want, seed)
			}
		}
		for _, body := range rcv.accepted[key] {
			assert.Equal(t, string(rec.Payload), string(body), "delivery %s: an accepted body differs from the frozen bytes", id)
		}
	}
	t.Logf("outcomes: %v", outcomes)

	srv.CloseClientConnections()
	tlsSrv.CloseClientConnections()
	checkNoLeaks(t, baseline)
}

// checkAttempt checks one recorded attempt against the fault served for it.
func checkAttempt(t *testing.T, id uuid.UUID, a store.Attempt, f fault) {
	t.Helper()
	want := map[fault]struct {
		code   int
		reason store.FailureReason
	}{
		fOK: {200, ""}, f500: {500, store.ReasonHTTPError}, f503RetryAfter: {503, store.ReasonHTTPError},
		f429RetryAfter: {429, store.ReasonHTTPError}, fResetBeforeHeaders: {0, store.ReasonConnectionError},
		fResetAfterPartialHeaders: {0, store.ReasonConnectionError}, fHang: {0, store.ReasonTimeout},
		fDrip: {200, ""}, fHuge: {200, ""}, fGone: {410, store.ReasonHTTPError},
	}[f]
	assert.Equal(t, want.code, a.StatusCode, "delivery %s attempt %d (fault %d): status code", id, a.AttemptNumber, f)
	assert.Equal(t, want.reason, a.FailureReason, "delivery %s attempt %d (fault %d): reason %q", id, a.AttemptNumber, f, a.ErrorMessage)
	if f == fHuge {
		assert.Len(t, a.ResponseBody, delivery.DefaultResponseBodyLimit)
	}
}

// driveAll advances the manual clock until every delivery is terminal: it
// waits until no delivery is leased (every attempt due now is done), then
// moves the clock to the earliest next attempt. It returns the final records.
func driveAll(t *testing.T, clock *delivery.ManualClock, st store.Store, ids []uuid.UUID, limit time.Duration) map[uuid.UUID]*store.Delivery {
	t.Helper()
	ctx := context.Background()
	final := make(map[uuid.UUID]*store.Delivery, len(ids))
	pending := append([]uuid.UUID(nil), ids...)
	deadline := time.Now().Add(limit)
	for len(pending) > 0 {
		if !time.Now().Before(deadline) {
			leased, due := 0, 0
			for _, id := range pending {
				rec, err := st.Get(ctx, id)
				require.NoError(t, err)
				switch {
				case rec.LeaseToken != uuid.Nil:
					leased++
				case !rec.NextAttemptAt.After(clock.Now()):
					due++ // the Deliverer should have claimed it
				}
			}
			t.Fatalf("%d deliveries still pending after %s: %d leased, %d due now", len(pending), limit, leased, due)
		}
		var next time.Time
		leased, due := false, false
		still := pending[:0]
		now := clock.Now()
		for _, id := range pending {
			rec, err := st.Get(ctx, id)
			require.NoError(t, err)
			if rec.Status.Terminal() {
				final[id] = rec
				continue
			}
			still = append(still, id)
			switch {
			case rec.LeaseToken != uuid.Nil:
				leased = true
			case !rec.NextAttemptAt.After(now):
				due = true
			case next.IsZero() || rec.NextAttemptAt.Before(next):
				next = rec.NextAttemptAt
			}
		}
		pending = still
		if leased || due || len(pending) == 0 {
			time.Sleep(2 * time.Millisecond) // attempts are running or about to
			continue
		}
		clock.Set(next)
	}
	return final
}

// checkNoLeaks fails if goroutines of the Deliverer or of HTTP connections
// outlive it.
func checkNoLeaks(t *testing.T, baseline int) {
	t.Helper()
	var stacks string
	ok := assert.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "hookline/delivery.(*Deliverer)") || strings.Contains(g, "net/http.(*persistConn)") {
				return false
			}
		}
		return runtime.NumGoroutine() <= baseline+2
	}, 5*time.Second, 10*time.Millisecond)
	if !ok {
		t.Logf("goroutines left behind (baseline %d, now %d):\n%s", baseline, runtime.NumGoroutine(), firstLines(stacks, 80))
	}
}

func firstLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var b strings.Builder
	for i := 0; i < n && sc.Scan(); i++ {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}

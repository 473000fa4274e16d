package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The receiver runs in its own process (the harness re-executes itself with
// -receiver) so that its CPU is not the harness's. It answers 204 to every
// POST to /hook and records, at the moment its handler is entered, the
// wall-clock time (unix nanoseconds) of each request under its id: the
// X-Bench-Id header, or the Standard Webhooks webhook-id that hookline sets to
// the delivery id. GET /drain returns and forgets the recorded "id nanos"
// lines. It prints its base URL on stdout and exits when stdin closes.

type arrival struct {
	id string
	t  int64
}

func runReceiver() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	arrivals := make([]arrival, 0, 1<<16)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		t := time.Now().UnixNano()
		id := r.Header.Get("X-Bench-Id")
		if id == "" {
			id = r.Header.Get("Webhook-Id")
		}
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		arrivals = append(arrivals, arrival{id, t})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /drain", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got := arrivals
		arrivals = make([]arrival, 0, max(1<<16, len(got)))
		mu.Unlock()
		bw := bufio.NewWriterSize(w, 64<<10)
		for _, a := range got {
			bw.WriteString(a.id)
			bw.WriteByte(' ')
			bw.WriteString(strconv.FormatInt(a.t, 10))
			bw.WriteByte('\n')
		}
		bw.Flush()
	})
	go func() { // the harness holds our stdin: exit with it
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Printf("http://%s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

// receiverProc is the harness's handle on the receiver process.
type receiverProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	URL   string // base URL
}

func startReceiver() (*receiverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-receiver")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("receiver did not print its address: %w", err)
	}
	return &receiverProc{cmd: cmd, stdin: stdin, URL: strings.TrimSpace(line)}, nil
}

func (r *receiverProc) Stop() {
	r.stdin.Close()
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

// drain fetches and forgets the receiver's arrivals.
func (r *receiverProc) drain() (map[string]int64, error) {
	resp, err := http.Get(r.URL + "/drain")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make(map[string]int64, 1<<14)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		id, ts, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		t, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return nil, err
		}
		out[id] = t
	}
	return out, sc.Err()
}

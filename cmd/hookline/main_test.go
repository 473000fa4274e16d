package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

// bin is the hookline binary TestMain builds, run by the tests as a user
// would run it.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookline-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "hookline")
	build := exec.Command("go", append(append([]string{"build"}, raceFlag...), "-o", bin, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hookline:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary gave.
type result struct {
	stdout, stderr string
	code           int
}

// hookline runs the binary with args and the environment variables env
// (KEY=value) added to a copy of the test's, without HOOKLINE_* variables.
func hookline(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKLINE_") {
			out = append(out, kv)
		}
	}
	return out
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"help", "send"}, {"help", "listen"}, {"help", "history"}, {"help", "redeliver"}, {"help", "migrate"}, {"help", "version"},
		{"send", "--help"}, {"listen", "-h"}, {"history", "--help"}, {"redeliver", "--help"}, {"migrate", "--help"}, {"version", "--help"},
		{"history", "not-a-uuid", "--help"}, // --help wins wherever it is
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := hookline(t, nil, args...)
			assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stdout, "Usage")
			assert.Empty(t, r.stderr)
		})
	}
	t.Run("each command's usage names the command and its flags", func(t *testing.T) {
		t.Parallel()
		for name, flags := range map[string][]string{
			"send":      {"--url", "--secret", "--scheme", "--prefix", "--event", "--batch-id", "--status", "--output", "--metadata", "--file", "--attempts", "--timeout", "--allow-private", "--json"},
			"listen":    {"--addr", "--secret", "--scheme", "--prefix", "--json", "HOOKLINE_SECRETS"},
			"history":   {"BATCH_ID", "--dsn", "--schema", "--json", "HOOKLINE_DATABASE_URL"},
			"redeliver": {"BATCH_ID", "--dsn", "--schema", "--wait", "--secret", "--json", "enqueue"},
			"migrate":   {"--dsn", "--schema"},
		} {
			r := hookline(t, nil, "help", name)
			assert.Contains(t, r.stdout, "hookline "+name)
			for _, f := range flags {
				assert.Contains(t, r.stdout, f, "usage of %s", name)
			}
		}
	})
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := hookline(t, nil, "version")
	assert.Equal(t, 0, r.code)
	assert.Regexp(t, `^hookline \d+\.\d+\.\d+ \(module .*, go`, r.stdout)
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"send"}, "--url is required"},
		{[]string{"send", "--url", "http://example.com"}, "--secret (or HOOKLINE_SECRET) is required"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--bogus"}, "flag provided but not defined"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--scheme", "md5"}, "--scheme must be standard, hex or both"},
		{[]string{"send", "--url", "http://example.com", "--secret", "plain", "--scheme", "standard"}, "whsec_"},
		{[]string{"send", "--url", "ftp://example.com", "--secret", secret}, "--url"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--batch-id", "nope"}, "is not a UUID"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--output", "{bad"}, "output is not valid JSON"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--metadata", "[1]"}, "metadata"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--attempts", "0"}, "--attempts"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "extra"}, `unexpected argument "extra"`},
		{[]string{"listen"}, "--secret (or HOOKLINE_SECRETS) is required"},
		{[]string{"listen", "--secret", "plain", "--scheme", "standard"}, "whsec_"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--file", "/nonexistent/cb.json"}, "read --file"},
		{[]string{"listen", "--secret", secret, "--addr", "nonsense"}, "--addr"},
		{[]string{"listen", "--secret", secret, "--addr", "127.0.0.1:99999"}, "--addr: address 99999: invalid port"},
		{[]string{"history"}, "missing BATCH_ID"},
		{[]string{"history", "nope"}, "is not a UUID"},
		{[]string{"history", uuid.NewString(), uuid.NewString()}, "one BATCH_ID expected"},
		{[]string{"history", uuid.NewString()}, "HOOKLINE_DATABASE_URL"},
		{[]string{"redeliver", uuid.NewString(), "--dsn", "postgres://x", "--wait"}, "--secret (or HOOKLINE_SECRET) is required"},
		{[]string{"migrate"}, "HOOKLINE_DATABASE_URL"},
		{[]string{"migrate", "--dsn", "postgres://x", "--schema", ""}, "--schema is empty"},
		{[]string{"history", uuid.NewString(), "--dsn", "postgres://x", "--schema", ""}, "--schema is empty"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--dsn", "postgres://x", "--schema", ""}, "--schema is empty"},
		{[]string{"migrate", "--dsn", "postgres://nobody@127.0.0.1:1/none", "--schema", "bad-name"}, `--schema: schema "bad-name" is not a plain identifier`},
		{[]string{"history", uuid.NewString(), "--dsn", "postgres://x", "--schema", "1st"}, "is not a plain identifier"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--duration-ms", "9223372036854775807"}, "duration_ms 9223372036854775807 is out of range"},
		{[]string{"migrate", "--dsn", "postgres://x", "--schema", "bad-name", "extra"}, `unexpected argument "extra"`},
		{[]string{"migrate", "--dsn", "not a dsn"}, "the connection string (--dsn or HOOKLINE_DATABASE_URL) does not parse"},
		{[]string{"history", uuid.NewString(), "--dsn", "postgres://u:hunter2@:99999/db"}, "does not parse"},
		{[]string{"send", "--url", "http://example.com", "--secret", secret, "--dsn", "not a dsn"}, "does not parse"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := hookline(t, nil, tc.args...)
			assert.Equal(t, 2, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			assert.Contains(t, r.stderr, tc.want)
			assert.Empty(t, r.stdout, "usage errors go to stderr")
		})
	}
}

// verifyingReceiver answers 204 to requests verified with secret (either
// scheme, prefix "Runflow" for hex) and counts them.
func verifyingReceiver(t *testing.T, secret string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	s, err := signing.NewSecret(uuid.New(), secret)
	require.NoError(t, err)
	v, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{s}, Schemes: signing.SchemeHex | signing.SchemeStandard, Prefix: "Runflow"})
	require.NoError(t, err)
	var verified atomic.Int32
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verified.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(srv.Close)
	return srv, &verified
}

func TestSend(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	srv, verified := verifyingReceiver(t, secret)

	t.Run("a verifying receiver: exit 0 and a succeeded record", func(t *testing.T) {
		batch := uuid.NewString()
		r := hookline(t, nil, "send", "--url", srv.URL+"/hooks", "--secret", secret, "--allow-private", "--json",
			"--batch-id", batch, "--event", "batch.failed", "--status", "failed", "--metadata", `{"tenant":"t1"}`)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec), "stdout: %s", r.stdout)
		assert.Equal(t, "succeeded", rec["status_code"])
		assert.Equal(t, batch, rec["batch_id"])
		assert.Equal(t, float64(1), rec["attempt_count"])
		p := rec["payload"].(map[string]any)
		assert.Equal(t, "batch.failed", p["event"])
		assert.Equal(t, "failed", p["status"])
		assert.Equal(t, map[string]any{"tenant": "t1"}, p["metadata"])
		assert.Contains(t, r.stderr, "attempt 1: 204 No Content")
	})

	t.Run("hex scheme with a prefix, secret from HOOKLINE_SECRET, human summary", func(t *testing.T) {
		before := verified.Load()
		r := hookline(t, []string{"HOOKLINE_SECRET=" + secret}, "send", "--url", srv.URL, "--scheme", "hex", "--prefix", "Runflow", "--allow-private")
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		assert.Regexp(t, `(?m)^status\s+SUCCEEDED$`, r.stdout)
		assert.Regexp(t, `(?m)^attempt 1\s+.*204 No Content`, r.stdout)
		assert.Equal(t, before+1, verified.Load())
	})

	t.Run("payload from a file, flags override it", func(t *testing.T) {
		batch := uuid.NewString()
		file := filepath.Join(t.TempDir(), "cb.json")
		require.NoError(t, os.WriteFile(file, []byte(`{"event":"batch.cancelled","batch_id":"`+batch+`","status":"canceled",
			"output":{"z":1,"a":[true]},"metadata":{"k":"v"},"duration_ms":5,"created_at":"2026-05-01T10:00:00+00:00"}`), 0o600))
		r := hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--allow-private", "--json", "--file", file, "--status", "custom")
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		var rec struct {
			BatchID      string `json:"batch_id"`
			PayloadBytes string `json:"payload_bytes"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec))
		assert.Equal(t, batch, rec.BatchID)
		assert.Contains(t, rec.PayloadBytes, `"event":"batch.cancelled"`)
		assert.Contains(t, rec.PayloadBytes, `"status":"custom"`)
		assert.Contains(t, rec.PayloadBytes, `"output":{"z":1,"a":[true]}`, "raw output kept in its key order")
		assert.Contains(t, rec.PayloadBytes, `"duration_ms":5,"created_at":"2026-05-01T10:00:00+00:00"`)
	})

	t.Run("created_at follows the file's duration_ms", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "cb.json")
		require.NoError(t, os.WriteFile(file, []byte(`{"duration_ms":60000,"completed_at":"2026-05-01T10:01:00+00:00"}`), 0o600))
		r := hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--allow-private", "--json", "--file", file)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		var rec struct {
			PayloadBytes string `json:"payload_bytes"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec))
		assert.Contains(t, rec.PayloadBytes, `"duration_ms":60000,"created_at":"2026-05-01T10:00:00+00:00","completed_at":"2026-05-01T10:01:00+00:00"`)
	})

	t.Run("a file with a misspelt field, or not one object, sends nothing", func(t *testing.T) {
		for _, body := range []string{`{"evnt":"batch.failed","status":"failed"}`, `null`, `{"status":"failed"} {}`} {
			file := filepath.Join(t.TempDir(), "cb.json")
			require.NoError(t, os.WriteFile(file, []byte(body), 0o600))
			r := hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--allow-private", "--file", file)
			assert.Equal(t, 2, r.code, "file %s: stderr: %s", body, r.stderr)
			assert.Contains(t, r.stderr, "not a JSON object of callback fields", "file %s", body)
		}
	})

	t.Run("a 500 receiver: exit 1 and a failed record", func(t *testing.T) {
		var calls atomic.Int32
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			io.Copy(io.Discard, r.Body)
			http.Error(w, "boom", http.StatusInternalServerError)
		}))
		defer bad.Close()
		r := hookline(t, nil, "send", "--url", bad.URL, "--secret", secret, "--allow-private", "--json")
		assert.Equal(t, 1, r.code)
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec), "stdout: %s", r.stdout)
		assert.Equal(t, "failed", rec["status_code"])
		assert.Equal(t, "http_error", rec["failure_reason_code"])
		assert.Equal(t, int32(1), calls.Load(), "one attempt unless --attempts asks for more")
		assert.Contains(t, r.stderr, "hookline send: delivery")
	})

	t.Run("retries with --attempts", func(t *testing.T) {
		var calls atomic.Int32
		flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if calls.Add(1) == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		defer flaky.Close()
		r := hookline(t, nil, "send", "--url", flaky.URL, "--secret", secret, "--allow-private", "--attempts", "2")
		assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		assert.Equal(t, int32(2), calls.Load())
		assert.Contains(t, r.stdout, "attempts   2 of 2")
	})

	t.Run("without --allow-private the guard refuses loopback", func(t *testing.T) {
		before := verified.Load()
		r := hookline(t, nil, "send", "--url", srv.URL, "--secret", secret, "--json")
		assert.Equal(t, 1, r.code)
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec), "stdout: %s", r.stdout)
		assert.Equal(t, "blocked_destination", rec["failure_reason_code"])
		assert.Contains(t, r.stderr, "--allow-private")
		assert.Equal(t, before, verified.Load(), "nothing was sent")
	})
}

// listener is a running `hookline listen` subprocess.
type listener struct {
	cmd   *exec.Cmd
	url   string
	lines *bufio.Scanner // stdout
}

func startListen(t *testing.T, env []string, args ...string) *listener {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"listen", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		io.Copy(io.Discard, stderr)
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("listen printed no address")
	}
	m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(line)
	require.NotNil(t, m, "first stderr line: %q", line)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &listener{cmd: cmd, url: m[1], lines: sc}
}

// next reads the next --json report.
func (l *listener) next(t *testing.T) map[string]any {
	t.Helper()
	require.True(t, l.lines.Scan(), "listen output ended: %v", l.lines.Err())
	var rep map[string]any
	require.NoError(t, json.Unmarshal(l.lines.Bytes(), &rep), "line: %s", l.lines.Text())
	return rep
}

// post sends body to url with headers signed by signer.
func post(t *testing.T, url string, signer *signing.Signer, body []byte, tamper bool) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	require.NoError(t, signer.Sign(req.Header, "msg_"+uuid.NewString(), uuid.New(), time.Now(), body))
	if tamper {
		req.Body = io.NopCloser(bytes.NewReader(append(bytes.Clone(body[:len(body)-1]), ' ', '}')))
		req.ContentLength++
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func newSigner(t *testing.T, secret string, schemes signing.Scheme) *signing.Signer {
	t.Helper()
	s, err := signing.NewSecret(uuid.New(), secret)
	require.NoError(t, err)
	ring, err := signing.NewKeyRing(s)
	require.NoError(t, err)
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring, Schemes: schemes})
	require.NoError(t, err)
	return signer
}

func TestListen(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret := signing.GenerateSecret(), signing.GenerateSecret()
	body := []byte(`{"event":"batch.succeeded","batch_id":"` + uuid.NewString() + `","status":"succeeded","output":null,"duration_ms":0,"created_at":null,"completed_at":null,"metadata":null}`)

	t.Run("json reports, secrets from the environment, both schemes", func(t *testing.T) {
		t.Parallel()
		l := startListen(t, []string{"HOOKLINE_SECRETS=" + oldSecret + "," + newSecret}, "--json")

		assert.Equal(t, http.StatusNoContent, post(t, l.url+"/hooks", newSigner(t, newSecret, signing.SchemeStandard), body, false))
		rep := l.next(t)
		assert.Equal(t, true, rep["verified"])
		assert.Equal(t, "standard-webhooks", rep["scheme"])
		assert.Equal(t, float64(2), rep["secret_index"])
		assert.Equal(t, float64(204), rep["answer"])
		assert.Equal(t, "/hooks", rep["path"])
		assert.Equal(t, "batch.succeeded", rep["body"].(map[string]any)["event"])

		assert.Equal(t, http.StatusNoContent, post(t, l.url, newSigner(t, oldSecret, signing.SchemeHex), body, false))
		rep = l.next(t)
		assert.Equal(t, "hex", rep["scheme"])
		assert.Equal(t, float64(1), rep["secret_index"])

		assert.Equal(t, http.StatusUnauthorized, post(t, l.url, newSigner(t, newSecret, signing.SchemeStandard), body, true))
		rep = l.next(t)
		assert.Equal(t, false, rep["verified"])
		assert.Equal(t, float64(401), rep["answer"])
		assert.Contains(t, rep["error"], "no matching signature")

		require.NoError(t, l.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, l.cmd.Wait(), "SIGTERM stops listen with exit 0")
	})

	t.Run("pretty output, secret flag, SIGINT", func(t *testing.T) {
		t.Parallel()
		l := startListen(t, nil, "--secret", newSecret)
		signer := newSigner(t, newSecret, signing.SchemeStandard)
		assert.Equal(t, http.StatusNoContent, post(t, l.url+"/cb", signer, body, false))
		assert.Equal(t, http.StatusUnauthorized, post(t, l.url+"/cb", signer, body, true))
		require.NoError(t, l.cmd.Process.Signal(os.Interrupt))
		var out strings.Builder
		for l.lines.Scan() {
			out.WriteString(l.lines.Text() + "\n")
		}
		require.NoError(t, l.cmd.Wait(), "SIGINT stops listen with exit 0")
		assert.Contains(t, out.String(), "verified: OK, standard-webhooks signature by secret #1")
		assert.Contains(t, out.String(), "-> 204 No Content")
		assert.Contains(t, out.String(), "verified: FAILED: verify standard webhooks: signing: no matching signature")
		assert.Contains(t, out.String(), "-> 401 Unauthorized")
		assert.Contains(t, out.String(), "callback: batch.succeeded")
	})

	t.Run("a busy address is a runtime failure", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		r := hookline(t, nil, "listen", "--addr", strings.TrimPrefix(srv.URL, "http://"), "--secret", newSecret)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "address already in use")
	})
}

// TestSendToListen points one hookline at another, with the hex scheme and
// a plain secret: listen picks hex by itself.
func TestSendToListen(t *testing.T) {
	t.Parallel()
	l := startListen(t, nil, "--secret", "s3cret", "--prefix", "Runflow", "--json")
	r := hookline(t, nil, "send", "--url", l.url+"/h", "--secret", "s3cret", "--scheme", "hex", "--prefix", "Runflow", "--allow-private", "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	rep := l.next(t)
	assert.Equal(t, true, rep["verified"])
	assert.Equal(t, "hex", rep["scheme"])
	assert.NotEmpty(t, rep["headers"].(map[string]any)["Runflow-Request-Id"])
}

func TestBadDSNIsAUsageErrorWithoutThePassword(t *testing.T) {
	t.Parallel()
	r := hookline(t, nil, "migrate", "--dsn", "postgres://u:hunter2@:99999/db")
	assert.Equal(t, 2, r.code, "stderr: %s", r.stderr)
	assert.Contains(t, r.stderr, "does not parse")
	assert.NotContains(t, r.stderr, "hunter2", "the password stays out of the message")
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
)

var listenCommand = &command{
	name:    "listen",
	summary: "run a local receiver that verifies and prints each callback",
	usage: `Usage: hookline listen [--addr 127.0.0.1:8080] --secret S [--secret S2 ...] [flags]

Runs a receiver on ADDR, any path, for building and debugging an endpoint.
Every request is verified with hookline's signing.Verifier against all the
secrets given (a signature by any one is accepted, as during a rotation),
and printed: its headers, the verification result (the scheme and the
secret that matched, or why it failed) and its body. The answer is 204 when
the signature checks out, and a bare 401 otherwise (the reason is printed
here, never sent). A body over 1 MiB is answered 413, a method other than
POST 405.

The first line on stderr is "listening on http://HOST:PORT"; with port 0 the
system picks a free port. SIGINT (Ctrl-C) or SIGTERM stops the receiver,
letting requests in progress finish; a second one ends it at once.

Flags:
  --addr ADDR          address to listen on (default 127.0.0.1:8080)
  --secret S           a secret to verify with; repeat for several
                       (default $HOOKLINE_SECRETS, comma-separated)
  --scheme SCHEME      schemes to accept: both, standard or hex (default both
                       when every secret is a whsec_ secret, else hex)
  --prefix P           header prefix of the hex scheme, <P>-Signature
                       (default Hookline)
  --tolerance D        accepted age of a Standard Webhooks timestamp, either
                       way (default 5m0s)
  --json               print one JSON object per request instead
  -h, --help           print this help

Secrets are numbered in the order given (#1, #2, ...) in the output.

Example:
  HOOKLINE_SECRETS=whsec_old,whsec_new hookline listen --addr 127.0.0.1:9000
`,
}

func init() { listenCommand.run = runListen }

// listenConfig configures the receiver of listen.
type listenConfig struct {
	Secrets   []string // as given, numbered from 1
	Schemes   signing.Scheme
	Prefix    string
	Tolerance time.Duration
	JSON      bool
	Out       io.Writer // one report per request
	Now       func() time.Time
}

// secretID is the id listen gives the n-th secret (from 1).
func secretID(n int) uuid.UUID {
	var id uuid.UUID
	id[14], id[15] = byte(n>>8), byte(n)
	return id
}

// newListenHandler returns the receiver of listen: it verifies each
// request, prints a report to cfg.Out and answers 204, 401, 405 or 413.
func newListenHandler(cfg listenConfig) (http.Handler, error) {
	secrets := make([]signing.Secret, len(cfg.Secrets))
	for i, text := range cfg.Secrets {
		s, err := signing.NewSecret(secretID(i+1), text)
		if err != nil {
			// The error names the secret by the id listen gave it, which
			// means nothing to the user; the number does.
			return nil, fmt.Errorf("secret #%d: %s", i+1, strings.TrimPrefix(err.Error(), "new secret "+secretID(i+1).String()+": "))
		}
		secrets[i] = s
	}
	v, err := signing.NewVerifier(signing.VerifierConfig{
		Secrets:   secrets,
		Schemes:   cfg.Schemes,
		Prefix:    cfg.Prefix,
		Tolerance: cfg.Tolerance,
		Now:       cfg.Now,
	})
	if err != nil {
		if errors.Is(err, signing.ErrNotStandardSecret) {
			n := 1 + slices.IndexFunc(cfg.Secrets, func(s string) bool { return !strings.HasPrefix(s, signing.StandardSecretPrefix) })
			return nil, fmt.Errorf("secret #%d is not a whsec_ secret, which the standard scheme needs: use whsec_ secrets, or --scheme hex (%w)", n, signing.ErrNotStandardSecret)
		}
		return nil, err
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = signing.DefaultPrefix
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	h := &listenHandler{cfg: cfg, v: v, prefix: prefix, now: now}
	return h, nil
}

type listenHandler struct {
	cfg    listenConfig
	v      *signing.Verifier
	prefix string
	now    func() time.Time
	mu     sync.Mutex // serializes reports
	n      int        // requests seen, under mu
}

// report is what listen prints about one request; its JSON is the --json
// line.
type report struct {
	N           int               `json:"n"`
	Time        string            `json:"time"`
	Method      string            `json:"method"`
	Path        string            `json:"path"`
	Remote      string            `json:"remote"`
	Headers     map[string]string `json:"headers"`
	Verified    bool              `json:"verified"`
	Scheme      string            `json:"scheme,omitempty"`
	SecretIndex int               `json:"secret_index,omitempty"`
	MessageID   string            `json:"message_id,omitempty"`
	Timestamp   string            `json:"timestamp,omitempty"`
	Error       string            `json:"error,omitempty"`
	Answer      int               `json:"answer"`
	BodyBytes   int               `json:"body_bytes"`
	Body        json.RawMessage   `json:"body,omitempty"`      // when it is JSON
	BodyText    string            `json:"body_text,omitempty"` // when it is not
}

func (h *listenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := report{
		Time:    h.now().UTC().Format(time.RFC3339Nano),
		Method:  r.Method,
		Path:    r.URL.RequestURI(),
		Remote:  r.RemoteAddr,
		Headers: h.headerSummary(r.Header),
	}
	defer func() { h.print(&rep) }()
	if r.Method != http.MethodPost {
		rep.Error = "method " + r.Method + " not allowed: callbacks are POSTed"
		rep.Answer = http.StatusMethodNotAllowed
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, http.StatusText(rep.Answer), rep.Answer)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, signing.DefaultMaxBodyBytes))
	rep.BodyBytes = len(body)
	if err != nil {
		rep.Answer = http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			rep.Answer = http.StatusRequestEntityTooLarge
		}
		rep.Error = "read body: " + err.Error()
		http.Error(w, http.StatusText(rep.Answer), rep.Answer)
		return
	}
	if json.Valid(body) {
		rep.Body = body
	} else {
		rep.BodyText = string(body)
	}
	vd, err := h.v.Verify(r.Header, body)
	if err != nil {
		rep.Error = err.Error()
		rep.Answer = http.StatusUnauthorized
		http.Error(w, http.StatusText(rep.Answer), rep.Answer) // never says why
		return
	}
	rep.Verified = true
	rep.Scheme = vd.Scheme.String()
	rep.SecretIndex = int(vd.SecretID[14])<<8 | int(vd.SecretID[15])
	rep.MessageID = vd.MessageID
	if !vd.Timestamp.IsZero() {
		rep.Timestamp = vd.Timestamp.UTC().Format(time.RFC3339)
	}
	rep.Answer = http.StatusNoContent
	w.WriteHeader(rep.Answer)
}

// headerSummary keeps the headers that matter to a webhook.
func (h *listenHandler) headerSummary(hd http.Header) map[string]string {
	out := map[string]string{}
	for _, k := range []string{
		"Content-Type", "User-Agent",
		signing.HeaderWebhookID, signing.HeaderWebhookTimestamp, signing.HeaderWebhookSignature,
		h.prefix + "-Signature", h.prefix + "-Request-Id",
	} {
		k = http.CanonicalHeaderKey(k)
		if v := hd.Values(k); len(v) > 0 {
			out[k] = strings.Join(v, ", ")
		}
	}
	return out
}

func (h *listenHandler) print(rep *report) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	rep.N = h.n
	if h.cfg.JSON {
		b, err := json.Marshal(rep)
		if err != nil { // a body json.Valid accepted always marshals
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		fmt.Fprintf(h.cfg.Out, "%s\n", b)
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#%d %s %s %s from %s (%d bytes)\n", rep.N, rep.Time, rep.Method, rep.Path, rep.Remote, rep.BodyBytes)
	for _, k := range []string{"Content-Type", "User-Agent", signing.HeaderWebhookID, signing.HeaderWebhookTimestamp, signing.HeaderWebhookSignature,
		http.CanonicalHeaderKey(h.prefix + "-Signature"), http.CanonicalHeaderKey(h.prefix + "-Request-Id")} {
		if v, ok := rep.Headers[k]; ok {
			fmt.Fprintf(&b, "  %s: %s\n", k, v)
		}
	}
	if rep.Verified {
		fmt.Fprintf(&b, "  verified: OK, %s signature by secret #%d", rep.Scheme, rep.SecretIndex)
		if rep.MessageID != "" {
			fmt.Fprintf(&b, ", message %s", rep.MessageID)
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "  verified: FAILED: %s\n", rep.Error)
	}
	if rep.Body != nil {
		if c, err := payload.Parse(rep.Body); err == nil {
			fmt.Fprintf(&b, "  callback: %s, batch %s, status %s\n", c.Event, c.BatchID, c.Status)
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, rep.Body, "  ", "  ") == nil {
			fmt.Fprintf(&b, "  body: %s\n", pretty.Bytes())
		}
	} else if rep.BodyText != "" {
		fmt.Fprintf(&b, "  body: %q\n", truncateText(rep.BodyText, 2000))
	}
	fmt.Fprintf(&b, "  -> %d %s\n\n", rep.Answer, http.StatusText(rep.Answer))
	h.cfg.Out.Write(b.Bytes())
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func runListen(c *cli, args []string) int {
	cmd := listenCommand
	fs := newFlagSet(cmd.name)
	addr := fs.String("addr", "127.0.0.1:8080", "")
	var secrets stringList
	fs.Var(&secrets, "secret", "")
	scheme := fs.String("scheme", "", "")
	prefix := fs.String("prefix", signing.DefaultPrefix, "")
	tolerance := fs.Duration("tolerance", signing.DefaultTolerance, "")
	asJSON := fs.Bool("json", false, "")
	rest, err := c.parse(cmd, fs, args)
	if err != nil {
		return exitFor(err)
	}
	if len(rest) > 0 {
		return c.usageError(cmd, "unexpected argument %q", rest[0])
	}
	if len(secrets) == 0 {
		for _, s := range strings.Split(env("HOOKLINE_SECRETS"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	if len(secrets) == 0 {
		return c.usageError(cmd, "--secret (or HOOKLINE_SECRETS) is required")
	}
	if *tolerance <= 0 {
		return c.usageError(cmd, "--tolerance must be positive")
	}
	var schemes signing.Scheme
	if *scheme == "" {
		schemes = signing.SchemeHex | signing.SchemeStandard
		for _, s := range secrets {
			if !strings.HasPrefix(s, signing.StandardSecretPrefix) {
				schemes = signing.SchemeHex
			}
		}
	} else if schemes, err = parseScheme(*scheme); err != nil {
		return c.usageError(cmd, "%v", err)
	}
	handler, err := newListenHandler(listenConfig{
		Secrets: secrets, Schemes: schemes, Prefix: *prefix, Tolerance: *tolerance,
		JSON: *asJSON, Out: c.stdout,
	})
	if err != nil {
		return c.usageError(cmd, "%v", err)
	}

	_, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return c.usageError(cmd, "--addr: %v", err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return c.usageError(cmd, "--addr: %v", err) // out of range, or not a service name
	}
	ctx, stop := signalContext()
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return c.failure(cmd, "%v", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
	}
	fmt.Fprintf(c.stderr, "listening on http://%s (schemes %s, %d secret(s)); Ctrl-C stops\n", ln.Addr(), schemeName(schemes), len(secrets))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return c.failure(cmd, "%v", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	fmt.Fprintln(c.stderr, "stopped")
	return 0
}

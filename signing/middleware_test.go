package signing_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/signing"
)

// recorder is a next handler that records what it was given. Read its
// fields after the request is done; the mutex orders them for the race
// detector when the handler ran on a server goroutine.
type recorder struct {
	calls atomic.Int32
	mu    sync.Mutex
	body  []byte
	vd    signing.Verified
	vdOK  bool
	cl    int64
	again []byte // body read through GetBody
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.calls.Add(1)
	rec.body, _ = io.ReadAll(r.Body)
	rec.vd, rec.vdOK = signing.VerifiedFromContext(r.Context())
	rec.cl = r.ContentLength
	if r.GetBody != nil {
		if rc, err := r.GetBody(); err == nil {
			rec.again, _ = io.ReadAll(rc)
		}
	}
	rec.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// got returns the recorded body and Verified.
func (rec *recorder) got() ([]byte, signing.Verified) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.body, rec.vd
}

// signedRequest builds a POST carrying body with Standard Webhooks headers
// by sec at swTimestamp.
func signedRequest(t *testing.T, sec signing.Secret, body []byte) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/webhooks", bytes.NewReader(body))
	for k, v := range signedStandard(t, swMsgID, swTimestamp, body, sec) {
		r.Header[k] = v
	}
	return r
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	wrong := mustSecret(t, idB, secretB)
	const maxBody = 64
	v := mustVerifier(t, signing.VerifierConfig{
		Secrets:      []signing.Secret{sec},
		Now:          clockAt(swTimestamp),
		MaxBodyBytes: maxBody,
	})
	// Bytes a careless middleware would mangle: invalid UTF-8, NUL, CRLF.
	body := []byte("{\"a\":\"\xff\xfe\x00\r\n\"}")

	t.Run("good request reaches next with the exact bytes", func(t *testing.T) {
		t.Parallel()
		rec := &recorder{}
		w := httptest.NewRecorder()
		v.Middleware(rec).ServeHTTP(w, signedRequest(t, sec, body))
		require.Equal(t, http.StatusNoContent, w.Code)
		require.Equal(t, int32(1), rec.calls.Load())
		assert.Equal(t, body, rec.body, "next reads exactly the verified bytes")
		assert.Equal(t, body, rec.again, "GetBody replays the same bytes")
		assert.Equal(t, int64(len(body)), rec.cl)
		require.True(t, rec.vdOK, "Verified is in the request context")
		assert.Equal(t, signing.Verified{Scheme: signing.SchemeStandard, SecretID: idA, MessageID: swMsgID, Timestamp: time.Unix(swTimestamp, 0)}, rec.vd)
	})

	t.Run("a nil next answers 500, not a panic", func(t *testing.T) {
		t.Parallel()
		w := httptest.NewRecorder()
		require.NotPanics(t, func() { v.Middleware(nil).ServeHTTP(w, signedRequest(t, sec, body)) })
		assert.Equal(t, http.StatusInternalServerError, w.Code)
	})

	t.Run("body of exactly the cap passes", func(t *testing.T) {
		t.Parallel()
		rec := &recorder{}
		w := httptest.NewRecorder()
		full := bytes.Repeat([]byte("x"), maxBody)
		v.Middleware(rec).ServeHTTP(w, signedRequest(t, sec, full))
		require.Equal(t, http.StatusNoContent, w.Code)
		assert.Equal(t, full, rec.body)
	})

	failures := []struct {
		name     string
		req      func(t *testing.T) *http.Request
		wantCode int
	}{
		{"wrong secret", func(t *testing.T) *http.Request { return signedRequest(t, wrong, body) }, http.StatusUnauthorized},
		{"tampered body", func(t *testing.T) *http.Request {
			r := signedRequest(t, sec, body)
			r.Body = io.NopCloser(bytes.NewReader(append([]byte("X"), body[1:]...)))
			return r
		}, http.StatusUnauthorized},
		{"no signature headers", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/webhooks", bytes.NewReader(body))
		}, http.StatusUnauthorized},
		{"malformed signature", func(t *testing.T) *http.Request {
			r := signedRequest(t, sec, body)
			r.Header.Set(signing.HeaderWebhookSignature, "v1,???")
			return r
		}, http.StatusUnauthorized},
		{"stale timestamp", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/webhooks", bytes.NewReader(body))
			for k, vals := range signedStandard(t, swMsgID, swTimestamp-3600, body, sec) {
				r.Header[k] = vals
			}
			return r
		}, http.StatusUnauthorized},
		{"declared length over the cap", func(t *testing.T) *http.Request {
			return signedRequest(t, sec, bytes.Repeat([]byte("x"), maxBody+1))
		}, http.StatusRequestEntityTooLarge},
		{"undeclared length over the cap", func(t *testing.T) *http.Request {
			r := signedRequest(t, sec, bytes.Repeat([]byte("x"), maxBody+1))
			r.ContentLength = -1 // chunked: the cap is found while reading
			return r
		}, http.StatusRequestEntityTooLarge},
		{"understated length over the cap", func(t *testing.T) *http.Request {
			r := signedRequest(t, sec, bytes.Repeat([]byte("x"), 10*maxBody))
			r.ContentLength = 10
			return r
		}, http.StatusRequestEntityTooLarge},
		{"body read error", func(t *testing.T) *http.Request {
			r := signedRequest(t, sec, body)
			r.Body = io.NopCloser(io.MultiReader(strings.NewReader("{"), errReader{}))
			r.ContentLength = -1
			return r
		}, http.StatusBadRequest},
	}
	var unauthorizedBodies []string
	for _, tt := range failures {
		w := httptest.NewRecorder()
		rec := &recorder{}
		v.Middleware(rec).ServeHTTP(w, tt.req(t))
		assert.Equal(t, tt.wantCode, w.Code, tt.name)
		assert.Equal(t, int32(0), rec.calls.Load(), "%s: next must not be called on failure", tt.name)
		assert.Equal(t, http.StatusText(tt.wantCode)+"\n", w.Body.String(), "%s: the response says nothing specific", tt.name)
		if tt.wantCode == http.StatusUnauthorized {
			unauthorizedBodies = append(unauthorizedBodies, w.Body.String())
		}
	}
	require.NotEmpty(t, unauthorizedBodies)
	for _, b := range unauthorizedBodies {
		assert.Equal(t, unauthorizedBodies[0], b, "every 401 looks the same, whatever failed")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestMiddlewareDefaultCap(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, Now: clockAt(swTimestamp)})
	for _, tt := range []struct {
		size int64
		want int
	}{
		{signing.DefaultMaxBodyBytes, http.StatusNoContent},
		{signing.DefaultMaxBodyBytes + 1, http.StatusRequestEntityTooLarge},
	} {
		for _, chunked := range []bool{false, true} {
			rec := &recorder{}
			w := httptest.NewRecorder()
			body := bytes.Repeat([]byte("x"), int(tt.size))
			r := signedRequest(t, sec, body)
			if chunked {
				r.ContentLength = -1
			}
			v.Middleware(rec).ServeHTTP(w, r)
			require.Equal(t, tt.want, w.Code, "body of %d bytes, chunked %v", tt.size, chunked)
			if tt.want == http.StatusNoContent {
				assert.True(t, bytes.Equal(body, rec.body), "next got the whole body")
				assert.Equal(t, int64(len(body)), rec.cl, "ContentLength is set even for a chunked request")
			}
		}
	}
}

// countingReader counts Read calls.
type countingReader struct {
	r     io.Reader
	reads atomic.Int32
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.r.Read(p)
}

func TestMiddlewareRefusesDeclaredOversizeUnread(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, MaxBodyBytes: 16, Now: clockAt(swTimestamp)})
	body := bytes.Repeat([]byte("x"), 17)
	r := signedRequest(t, sec, body)
	cr := &countingReader{r: bytes.NewReader(body)}
	r.Body = io.NopCloser(cr)
	w := httptest.NewRecorder()
	v.Middleware(&recorder{}).ServeHTTP(w, r)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	assert.Equal(t, int32(0), cr.reads.Load(), "a Content-Length over the cap is refused before reading")
}

// With no practical cap (MaxInt64), a Content-Length of MaxInt64 is within
// it: the body is read as it comes, without overflowing the buffer size.
func TestMiddlewareHugeDeclaredLengthUnderAHugeCap(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	v := mustVerifier(t, signing.VerifierConfig{Secrets: []signing.Secret{sec}, MaxBodyBytes: math.MaxInt64, Now: clockAt(swTimestamp)})
	body := []byte(`{"event":"batch.succeeded"}`)
	r := signedRequest(t, sec, body)
	r.ContentLength = math.MaxInt64
	w := httptest.NewRecorder()
	next := &recorder{}
	require.NotPanics(t, func() { v.Middleware(next).ServeHTTP(w, r) })
	assert.Equal(t, http.StatusNoContent, w.Code, "the body that came verifies")
}

func TestMiddlewareNilVerifier(t *testing.T) {
	t.Parallel()
	var v *signing.Verifier
	rec := &recorder{}
	w := httptest.NewRecorder()
	v.Middleware(rec).ServeHTTP(w, signedRequest(t, mustSecret(t, idA, swSecret), []byte(swBody)))
	assert.Equal(t, http.StatusInternalServerError, w.Code, "a misconfigured receiver is a server error, not the sender's fault")
	assert.Equal(t, int32(0), rec.calls.Load())
}

func TestMiddlewareOverHTTP(t *testing.T) {
	t.Parallel()
	sec := mustSecret(t, idA, swSecret)
	v := mustVerifier(t, signing.VerifierConfig{
		Secrets:      []signing.Secret{sec},
		Schemes:      signing.SchemeHex | signing.SchemeStandard,
		Prefix:       "Runflow",
		Now:          clockAt(swTimestamp),
		MaxBodyBytes: 1024,
	})
	rec := &recorder{}
	srv := httptest.NewServer(v.Middleware(rec))
	t.Cleanup(srv.Close)
	signer := mustSigner(t, signing.SignerConfig{Keys: mustRing(t, sec), Schemes: signing.SchemeHex, Prefix: "Runflow"})

	send := func(body io.Reader, sign []byte) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, body)
		require.NoError(t, err)
		require.NoError(t, signer.Sign(req.Header, swMsgID, requestID, time.Unix(swTimestamp, 0), sign))
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}

	body := []byte(`{"event":"batch.succeeded"}`)
	assert.Equal(t, http.StatusNoContent, send(bytes.NewReader(body), body))
	gotBody, gotVD := rec.got()
	assert.Equal(t, body, gotBody)
	assert.Equal(t, signing.SchemeHex, gotVD.Scheme)

	// A chunked body (the reader hides its length) over the cap.
	big := bytes.Repeat([]byte("y"), 4096)
	assert.Equal(t, http.StatusRequestEntityTooLarge, send(io.MultiReader(bytes.NewReader(big)), big))
	assert.Equal(t, http.StatusUnauthorized, send(bytes.NewReader(body), []byte("other")))
	assert.Equal(t, int32(1), rec.calls.Load(), "only the good request reached next")
}

// VerifiedFromContext reports nothing verified for a nil context rather
// than panicking.
func TestVerifiedFromANilContext(t *testing.T) {
	var nilCtx context.Context
	assert.NotPanics(t, func() {
		_, ok := signing.VerifiedFromContext(nilCtx)
		assert.False(t, ok)
	})
}

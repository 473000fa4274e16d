package signing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
)

// verifiedKey is the context key under which Middleware stores Verified.
type verifiedKey struct{}

// VerifiedFromContext returns what Verifier.Middleware verified about the
// request whose context ctx is, and false when ctx holds nothing from it
// (or is nil).
func VerifiedFromContext(ctx context.Context) (Verified, bool) {
	if ctx == nil {
		return Verified{}, false
	}
	vd, ok := ctx.Value(verifiedKey{}).(Verified)
	return vd, ok
}

// Middleware returns a handler that verifies each request before next sees
// it. It reads the raw body, up to the configured MaxBodyBytes, and checks
// it with Verify. Then:
//
//   - body longer than MaxBodyBytes (by Content-Length or by reading): 413
//   - body could not be read (for example the client went away): 400
//   - any verification failure: 401, with a generic body that does not say
//     why
//   - nil or zero Verifier: 500 (a configuration error)
//   - nil next: the failures above as for any next, then 500 for a request
//     that verified (a configuration error; a nil next used to panic for
//     each verified request)
//   - success: next is called with r.Body replaced by a reader over exactly
//     the bytes that were verified (ContentLength and GetBody to match), and
//     with Verified in the context, for VerifiedFromContext.
//
// next is not called on any failure. Callers who want to log the reason
// can call Verify themselves instead. The handler is safe for concurrent
// use.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	if next == nil {
		next = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { httpError(w, http.StatusInternalServerError) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v.ready("verify") != nil {
			httpError(w, http.StatusInternalServerError)
			return
		}
		if r.ContentLength > v.maxBody {
			httpError(w, http.StatusRequestEntityTooLarge)
			return
		}
		body, err := readBody(w, r, v.maxBody)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				httpError(w, http.StatusRequestEntityTooLarge)
			} else {
				httpError(w, http.StatusBadRequest)
			}
			return
		}
		vd, err := v.Verify(r.Header, body)
		if err != nil {
			httpError(w, http.StatusUnauthorized)
			return
		}
		r2 := r.WithContext(context.WithValue(r.Context(), verifiedKey{}, vd))
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.ContentLength = int64(len(body))
		r2.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		}
		next.ServeHTTP(w, r2)
	})
}

// httpError answers with the status code and its standard text only.
func httpError(w http.ResponseWriter, code int) {
	http.Error(w, http.StatusText(code), code)
}

// maxPrealloc bounds the buffer readBody allocates from a declared
// Content-Length before any byte arrives, so a client cannot make the
// server reserve MaxBodyBytes per connection by only claiming a length.
const maxPrealloc = 64 << 10

// readBody reads all of r.Body, failing with *http.MaxBytesError past max.
// A known Content-Length (already checked against max) sizes the buffer, up
// to maxPrealloc.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil {
		return []byte{}, nil
	}
	rd := http.MaxBytesReader(w, r.Body, max)
	size := 512
	if r.ContentLength > 0 {
		// +1: room to see EOF without growing. Compared first, so that a
		// Content-Length of MaxInt64 (allowed when max is) cannot overflow.
		size = int(min(r.ContentLength, maxPrealloc-1) + 1)
	}
	b := make([]byte, 0, size)
	for {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

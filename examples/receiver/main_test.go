package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
)

func TestReceiverProcessesEachDeliveryOnce(t *testing.T) {
	secret, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	require.NoError(t, err)
	ring, err := signing.NewKeyRing(secret)
	require.NoError(t, err)
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	require.NoError(t, err)
	v, err := signing.NewVerifier(signing.VerifierConfig{Secrets: []signing.Secret{secret}})
	require.NoError(t, err)

	var processed atomic.Int32
	fail := atomic.Bool{}
	rc := &Receiver{Process: func(id string, cb payload.Callback) error {
		if fail.Load() {
			return assert.AnError
		}
		processed.Add(1)
		return nil
	}}
	srv := httptest.NewServer(rc.Handler(v))
	defer srv.Close()

	body, err := payload.Freeze(payload.Callback{Event: payload.EventBatchSucceeded, BatchID: uuid.New(), Status: payload.StatusSucceeded})
	require.NoError(t, err)
	post := func(deliveryID string, body []byte) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		require.NoError(t, err)
		require.NoError(t, signer.Sign(req.Header, deliveryID, uuid.New(), time.Now(), body))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	first := uuid.NewString()

	fail.Store(true)
	assert.Equal(t, 500, post(first, body), "a failure in processing asks the sender to retry")
	fail.Store(false)
	assert.Equal(t, 204, post(first, body), "the retry is processed")
	assert.Equal(t, 200, post(first, body), "a repeat is acknowledged")
	assert.Equal(t, int32(1), processed.Load(), "processed once")

	assert.Equal(t, 204, post(uuid.NewString(), body), "a redelivery (new id) is processed again")
	assert.Equal(t, int32(2), processed.Load())

	tampered := append([]byte(nil), body...)
	tampered[10] ^= 1
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(tampered))
	require.NoError(t, signer.Sign(req.Header, uuid.NewString(), uuid.New(), time.Now(), body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, int32(2), processed.Load())
}

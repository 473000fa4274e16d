package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/payload"
	"github.com/hookline/hookline/signing"
	"github.com/hookline/hookline/store"
)

func TestRoutes(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	fail := map[string]bool{} // path -> answer 500
	customer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, b)
		if fail[r.URL.Path] {
			w.WriteHeader(500)
		}
	}))
	defer customer.Close()
	fail["/failing"] = true

	secret, err := signing.NewSecret(uuid.New(), signing.GenerateSecret())
	require.NoError(t, err)
	ring, err := signing.NewKeyRing(secret)
	require.NoError(t, err)
	signer, err := signing.NewSigner(signing.SignerConfig{Keys: ring})
	require.NoError(t, err)
	// The customer endpoint is an httptest server on loopback.
	d, err := delivery.New(delivery.Config{Signer: signer, AllowPrivateNetworks: true})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	defer d.Stop(context.Background())

	batches := &Batches{}
	done, inflight, empty, foreign := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	batches.Add(done, "org_a")
	batches.Add(inflight, "org_a")
	batches.Add(empty, "org_a")
	batches.Add(foreign, "org_b")
	ctx := context.Background()
	first, err := d.Deliver(ctx, customer.URL+"/ok", payload.Callback{Event: payload.EventBatchSucceeded, BatchID: done, Status: payload.StatusSucceeded})
	require.NoError(t, err)
	_, err = d.Deliver(ctx, customer.URL+"/failing", payload.Callback{Event: payload.EventBatchFailed, BatchID: inflight, Status: payload.StatusFailed})
	require.NoError(t, err)
	_, err = d.Deliver(ctx, customer.URL+"/ok", payload.Callback{Event: payload.EventBatchFailed, BatchID: foreign, Status: payload.StatusFailed})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec, err := d.Get(ctx, first.ID)
		return err == nil && rec.Status == store.StatusSucceeded
	}, 5*time.Second, 5*time.Millisecond)

	api := httptest.NewServer(NewHandler(d, batches, "tok"))
	defer api.Close()
	call := func(method, path, token, org string) (int, map[string]any) {
		req, err := http.NewRequest(method, api.URL+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("X-Organization-Id", org)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	get := func(b uuid.UUID) string { return "/v1/batches/" + b.String() + "/callback" }
	post := func(b uuid.UUID) string { return "/v1/batches/" + b.String() + "/callback-redeliveries" }

	tests := []struct {
		name, method, path, token, org string
		code                           int
		errorType                      string
	}{
		{"no token", "GET", get(done), "", "org_a", 401, "unauthorized"},
		{"wrong token", "POST", post(done), "nope", "org_a", 401, "unauthorized"},
		{"malformed batch id", "POST", "/v1/batches/not-a-uuid/callback-redeliveries", "tok", "org_a", 400, "invalid_request"},
		{"batch id not in canonical form", "GET", "/v1/batches/" + strings.ToUpper(done.String()) + "/callback", "tok", "org_a", 400, "invalid_request"},
		{"another organization's batch", "POST", post(foreign), "tok", "org_a", 404, "not_found"},
		{"no organization", "GET", get(done), "tok", "", 404, "not_found"},
		{"unknown batch", "POST", post(uuid.New()), "tok", "org_a", 404, "not_found"},
		{"batch without delivery", "POST", post(empty), "tok", "org_a", 404, "not_found"},
		{"batch without delivery (GET)", "GET", get(empty), "tok", "org_a", 404, "not_found"},
		{"delivery in flight", "POST", post(inflight), "tok", "org_a", 422, "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(tt.method, tt.path, tt.token, tt.org)
			assert.Equal(t, tt.code, code)
			assert.Equal(t, tt.errorType, body["error_type"])
		})
	}

	t.Run("the bearer scheme in any case", func(t *testing.T) {
		req, err := http.NewRequest("GET", api.URL+get(done), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "bearer tok")
		req.Header.Set("X-Organization-Id", "org_a")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
	})

	t.Run("get the record", func(t *testing.T) {
		code, body := call("GET", get(done), "tok", "org_a")
		require.Equal(t, 200, code)
		assert.Equal(t, first.ID.String(), body["id"])
		assert.Equal(t, "succeeded", body["status_code"])
		assert.Equal(t, true, body["is_automatic"])
		assert.Len(t, body["attempts"], 1)
	})

	t.Run("redeliver", func(t *testing.T) {
		code, body := call("POST", post(done), "tok", "org_a")
		require.Equal(t, 202, code)
		assert.NotEqual(t, first.ID.String(), body["id"])
		assert.Equal(t, false, body["is_automatic"])
		assert.Equal(t, string(first.Payload), body["payload_bytes"])
		newID := uuid.MustParse(body["id"].(string))
		require.Eventually(t, func() bool {
			rec, err := d.Get(ctx, newID)
			return err == nil && rec.Status == store.StatusSucceeded
		}, 5*time.Second, 5*time.Millisecond)
		code, body = call("GET", get(done), "tok", "org_a")
		require.Equal(t, 200, code)
		assert.Equal(t, newID.String(), body["id"], "GET shows the latest delivery")

		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, b := range bodies {
			if string(b) == string(first.Payload) {
				n++
			}
		}
		assert.Equal(t, 2, n, "the customer got the same bytes twice")
	})
}

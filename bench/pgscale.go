package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

type pgScaleResult struct {
	rows, pending     int
	seed              time.Duration
	claimP50, histP50 time.Duration
	claims, histCalls int
}

// pgScale fills a fresh, migrated schema with rows deliveries, pending of
// them due (1 KiB payloads) and the rest terminal history (succeeded, one
// attempt each, 256-byte payloads), plus one batch with 5 terminal
// deliveries of 2 attempts each whose History is read; then times Claim of
// 100 (median of claims calls, each leasing the next 100 due) and History of
// that batch (median of histCalls calls).
func pgScale(ctx context.Context, dsn string, rows, pending, claims, histCalls int) (pgScaleResult, error) {
	res := pgScaleResult{rows: rows, pending: pending, claims: claims, histCalls: histCalls}
	db, err := openPG(ctx, dsn, 4, "scale")
	if err != nil {
		return res, err
	}
	defer db.Drop()
	s := db.Schema
	start := time.Now()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return res, err
	}
	defer tx.Rollback(ctx)
	cols := "(id, batch_id, callback_url, payload, is_automatic, status, failure_reason, attempt_count, max_attempts, next_attempt_at, created_at, updated_at, completed_at)"
	stmts := []struct {
		sql  string
		args []any
	}{
		{"SET LOCAL synchronous_commit = off", nil},
		// terminal history, oldest first
		{"INSERT INTO " + s + ".deliveries " + cols + `
			SELECT gen_random_uuid(), gen_random_uuid(), 'http://127.0.0.1:9/hook', $1::bytea, true, 'succeeded', NULL, 1, 8, NULL,
			       now() - interval '400 days' + g * interval '30 seconds', now() - interval '400 days' + g * interval '30 seconds',
			       now() - interval '400 days' + g * interval '30 seconds'
			FROM generate_series(1, $2::int) g`, []any{[]byte(strings.Repeat("h", 256)), rows - pending - 5}},
		{"INSERT INTO " + s + `.attempts (id, delivery_id, attempt_number, status_code, response_body, response_time_ms, created_at)
			SELECT gen_random_uuid(), id, 1, 200, '', 12, completed_at FROM ` + s + ".deliveries", nil},
		// pending, due over the last hour
		{"INSERT INTO " + s + ".deliveries " + cols + `
			SELECT gen_random_uuid(), gen_random_uuid(), 'http://127.0.0.1:9/hook', $1::bytea, true, 'pending', NULL, 0, 8,
			       now() - interval '1 hour' + g * interval '100 milliseconds', now() - interval '1 hour', now() - interval '1 hour', NULL
			FROM generate_series(1, $2::int) g`, []any{memPayload, pending}},
	}
	for _, st := range stmts {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return res, fmt.Errorf("seed: %w", err)
		}
	}
	// The batch whose History is read: 5 terminal deliveries (the first
	// automatic), 2 attempts each.
	batch := uuid.New()
	for i := range 5 {
		id := uuid.New()
		at := time.Now().Add(-time.Duration(10-i) * time.Minute)
		if _, err := tx.Exec(ctx, "INSERT INTO "+s+".deliveries "+cols+
			` VALUES ($1, $2, 'http://127.0.0.1:9/hook', $3, $4, 'failed', 'http_error', 2, 2, NULL, $5, $5, $5)`,
			id, batch, memPayload, i == 0, at); err != nil {
			return res, fmt.Errorf("seed history batch: %w", err)
		}
		for a := 1; a <= 2; a++ {
			if _, err := tx.Exec(ctx, "INSERT INTO "+s+`.attempts (id, delivery_id, attempt_number, status_code, response_body, response_time_ms, created_at)
				VALUES ($1, $2, $3, 500, 'oops', 12, $4)`, uuid.New(), id, a, at); err != nil {
				return res, fmt.Errorf("seed history attempts: %w", err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return res, err
	}
	for _, t := range []string{"deliveries", "attempts"} {
		if _, err := db.Pool.Exec(ctx, "VACUUM ANALYZE "+s+"."+t); err != nil {
			return res, err
		}
	}
	res.seed = time.Since(start)

	// History
	for range 5 { // warm
		if _, err := db.Store.History(ctx, batch); err != nil {
			return res, err
		}
	}
	ht := make([]time.Duration, histCalls)
	for i := range ht {
		t0 := time.Now()
		h, err := db.Store.History(ctx, batch)
		ht[i] = time.Since(t0)
		if err != nil {
			return res, err
		}
		if len(h) != 5 || len(h[0].Attempts) != 2 {
			return res, fmt.Errorf("history: %d deliveries, want 5 with 2 attempts", len(h))
		}
	}
	slices.Sort(ht)
	res.histP50 = ht[len(ht)/2]

	// Claims (each leases 100 for an hour, moving them out of the due range)
	for range 3 { // warm
		if _, err := db.Store.Claim(ctx, time.Now(), 100, time.Hour); err != nil {
			return res, err
		}
	}
	ct := make([]time.Duration, claims)
	for i := range ct {
		t0 := time.Now()
		ds, err := db.Store.Claim(ctx, time.Now(), 100, time.Hour)
		ct[i] = time.Since(t0)
		if err != nil {
			return res, err
		}
		if len(ds) != 100 {
			return res, fmt.Errorf("claimed %d, want 100", len(ds))
		}
	}
	slices.Sort(ct)
	res.claimP50 = ct[len(ct)/2]
	return res, nil
}

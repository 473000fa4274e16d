package postgres

import "strings"

// statements holds the Store's SQL with the schema filled in, built once in
// New so that every call sends the same text (pgx caches its prepared form
// per connection).
type statements struct {
	insert         string
	insertGroup    string
	insertConflict string
	claim          string
	claimOne       string
	record         string
	recordGroup    string
	indexLookups   string
	release        string
	leaseState     string
	getDelivery    string
	getAttempts    string
	latestDelivery string
	latestAttempts string
	historyDeliv   string
	historyAttempt string
}

// deliveryColumns is the select list that scanDelivery reads, for the table
// aliased d.
const deliveryColumns = `d.id, d.batch_id, d.callback_url, d.payload, d.signing_secret_id, d.is_automatic,
	d.status, coalesce(d.failure_reason, ''), coalesce(d.failure_detail, ''), d.attempt_count, d.max_attempts,
	d.next_attempt_at, d.created_at, d.updated_at, d.completed_at, d.lease_token, d.lease_expires_at`

// attemptColumns is the select list that scanAttempt reads, for the table
// aliased a.
const attemptColumns = `a.id, a.delivery_id, a.attempt_number, coalesce(a.status_code, 0), coalesce(a.response_body, ''),
	a.response_time_ms, coalesce(a.error_message, ''), coalesce(a.failure_reason, ''), a.created_at`

// batchOrder is the order of History: newest first.
const batchOrder = `d.created_at DESC, d.id DESC`

func newStatements(q string) statements {
	r := strings.NewReplacer("{{s}}", q, "{{d}}", deliveryColumns, "{{a}}", attemptColumns, "{{order}}", batchOrder)
	sql := func(s string) string { return r.Replace(s) }
	return statements{
		// ON CONFLICT DO NOTHING (any unique index: the id, the pending
		// guard, the automatic guard) keeps a caller's transaction usable
		// after a conflict; insertConflict then says which one it was. The
		// notification is sent when the transaction commits, and not at all
		// when it rolls back.
		insert: sql(`WITH i AS (
	INSERT INTO {{s}}.deliveries (id, batch_id, callback_url, payload, signing_secret_id, is_automatic,
		status, attempt_count, max_attempts, next_attempt_at, created_at, updated_at, lease_token, lease_expires_at)
	VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $9, $10, $12, $13)
	ON CONFLICT DO NOTHING
	RETURNING id, lease_token
)
SELECT CASE WHEN i.lease_token IS NULL THEN pg_notify($11, '') END FROM i`),

		// Insert's group form: one row per call (ord is its place in the
		// group); the notification is sent once per transaction, however
		// many rows it inserts (PostgreSQL folds identical ones), and not
		// for rows inserted leased (InsertLeased), which nobody else may
		// claim yet. The set_config filter (volatile, so evaluated for
		// each row before any is inserted) sets this statement's own
		// lock_timeout to $15.
		insertGroup: sql(`WITH r AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::uuid[], $6::boolean[],
		$7::integer[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::integer[],
		$13::uuid[], $14::timestamptz[])
	AS r(id, batch_id, callback_url, payload, signing_secret_id, is_automatic,
		max_attempts, next_attempt_at, created_at, updated_at, ord, lease_token, lease_expires_at)
	WHERE set_config('lock_timeout', $15::text, true) IS NOT NULL
), i AS (
	INSERT INTO {{s}}.deliveries (id, batch_id, callback_url, payload, signing_secret_id, is_automatic,
		status, attempt_count, max_attempts, next_attempt_at, created_at, updated_at, lease_token, lease_expires_at)
	SELECT id, batch_id, callback_url, payload, signing_secret_id, is_automatic,
		'pending', 0, max_attempts, next_attempt_at, created_at, updated_at, lease_token, lease_expires_at
	FROM r ORDER BY ord
	ON CONFLICT DO NOTHING
	RETURNING id, lease_token
)
SELECT i.id, CASE WHEN i.lease_token IS NULL THEN pg_notify($12, '') END FROM i`),

		insertConflict: sql(`SELECT
	EXISTS (SELECT 1 FROM {{s}}.deliveries WHERE id = $1),
	(SELECT id FROM {{s}}.deliveries WHERE batch_id = $2 AND status = 'pending'),
	(SELECT id FROM {{s}}.deliveries WHERE batch_id = $2 AND is_automatic)`),

		// One statement: pick the due rows in order, skipping rows another
		// claimer has locked, and lease them. Setting next_attempt_at to the
		// lease expiry moves each row out of the due range of the index, so
		// later claims do not step over it. c.next_attempt_at (the value
		// before the update) gives back the due order, which RETURNING does
		// not keep.
		//
		// The set_config filter (volatile, so evaluated for each claimed row
		// and always true) makes this statement's own transaction commit
		// without waiting for the disk; see Store.claim for why a lease may.
		// A claim that finds nothing writes nothing and has nothing to
		// commit.
		claim: sql(`UPDATE {{s}}.deliveries d
SET lease_token = gen_random_uuid(), lease_expires_at = $2, next_attempt_at = $2
FROM (
	SELECT id, next_attempt_at FROM {{s}}.deliveries
	WHERE status = 'pending' AND next_attempt_at <= $1
	ORDER BY next_attempt_at, id
	LIMIT $3
	FOR UPDATE SKIP LOCKED
) c
WHERE d.id = c.id AND set_config('synchronous_commit', 'off', true) = 'off'
RETURNING c.next_attempt_at, {{d}}`),

		// Claim's form for one delivery, by id. A concurrent Claim of the
		// same row makes this one wait for it, then find the row no longer
		// due (READ COMMITTED re-checks the conditions), and the reverse.
		claimOne: sql(`UPDATE {{s}}.deliveries d
SET lease_token = gen_random_uuid(), lease_expires_at = $3, next_attempt_at = $3
WHERE d.id = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
	AND set_config('synchronous_commit', 'off', true) = 'off'
RETURNING {{d}}`),

		// Fenced by the lease token and by the attempt number, in one
		// statement: the attempt is inserted only when the update matched.
		record: sql(`WITH u AS (
	UPDATE {{s}}.deliveries SET
		status = $3, failure_reason = $4, failure_detail = $5, signing_secret_id = $6,
		attempt_count = $7, next_attempt_at = $8, updated_at = $9, completed_at = $10,
		lease_token = NULL, lease_expires_at = NULL
	WHERE id = $1 AND lease_token = $2 AND attempt_count = $7 - 1
	RETURNING id
)
INSERT INTO {{s}}.attempts (id, delivery_id, attempt_number, status_code, response_body,
	response_time_ms, error_message, failure_reason, created_at)
SELECT $11, u.id, $7, $12, $13, $14, $15, $16, $17 FROM u`),

		// Record's group form: each row fenced on its own; RETURNING r.ord
		// says which calls applied, and only their attempts are inserted.
		// It runs after indexLookups (see writeRecords): d.id = ANY($2)
		// then leaves the planner no way to read deliveries other than
		// looking up the group's ids in the primary key.
		recordGroup: sql(`WITH r AS (
	SELECT * FROM unnest($1::integer[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
		$7::uuid[], $8::integer[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
		$12::uuid[], $13::integer[], $14::text[], $15::bigint[], $16::text[], $17::text[], $18::timestamptz[])
	AS r(ord, id, token, status, failure_reason, failure_detail,
		signing_secret_id, attempt_number, next_attempt_at, updated_at, completed_at,
		attempt_id, status_code, response_body, response_time_ms, error_message, attempt_reason, attempt_at)
), u AS (
	UPDATE {{s}}.deliveries d SET
		status = r.status, failure_reason = r.failure_reason, failure_detail = r.failure_detail,
		signing_secret_id = r.signing_secret_id, attempt_count = r.attempt_number,
		next_attempt_at = r.next_attempt_at, updated_at = r.updated_at, completed_at = r.completed_at,
		lease_token = NULL, lease_expires_at = NULL
	FROM r
	WHERE d.id = ANY($2::uuid[]) AND d.id = r.id AND d.lease_token = r.token AND d.attempt_count = r.attempt_number - 1
	RETURNING r.ord
), a AS (
	INSERT INTO {{s}}.attempts (id, delivery_id, attempt_number, status_code, response_body,
		response_time_ms, error_message, failure_reason, created_at)
	SELECT r.attempt_id, r.id, r.attempt_number, r.status_code, r.response_body,
		r.response_time_ms, r.error_message, r.attempt_reason, r.attempt_at
	FROM r JOIN u ON u.ord = r.ord
)
SELECT ord FROM u`),

		// For the rest of the transaction, the planner reads a table
		// through an index wherever it can (see writeRecords).
		indexLookups: `SELECT set_config('enable_seqscan', 'off', true)`,

		release: sql(`UPDATE {{s}}.deliveries
SET next_attempt_at = $3, lease_token = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_token = $2 AND status = 'pending'`),

		// Why a fenced write matched nothing.
		leaseState: sql(`SELECT lease_token, attempt_count FROM {{s}}.deliveries WHERE id = $1`),

		getDelivery: sql(`SELECT {{d}} FROM {{s}}.deliveries d WHERE d.id = $1`),
		getAttempts: sql(`SELECT {{a}} FROM {{s}}.attempts a WHERE a.delivery_id = $1 ORDER BY a.attempt_number`),

		latestDelivery: sql(`SELECT {{d}} FROM {{s}}.deliveries d WHERE d.batch_id = $1 ORDER BY {{order}} LIMIT 1`),
		latestAttempts: sql(`SELECT {{a}} FROM {{s}}.attempts a
WHERE a.delivery_id = (SELECT d.id FROM {{s}}.deliveries d WHERE d.batch_id = $1 ORDER BY {{order}} LIMIT 1)
ORDER BY a.attempt_number`),

		historyDeliv: sql(`SELECT {{d}} FROM {{s}}.deliveries d WHERE d.batch_id = $1 ORDER BY {{order}}`),
		historyAttempt: sql(`SELECT {{a}} FROM {{s}}.attempts a
WHERE a.delivery_id IN (SELECT d.id FROM {{s}}.deliveries d WHERE d.batch_id = $1)
ORDER BY a.delivery_id, a.attempt_number`),
	}
}

-- hookline schema, version 1: deliveries and their attempts.
-- {{schema}} is replaced by the quoted schema name.

CREATE TABLE {{schema}}.deliveries (
    id                uuid        PRIMARY KEY,
    batch_id          uuid        NOT NULL,
    callback_url      text        NOT NULL,
    -- The frozen bytes, exactly as sent: bytea, never jsonb (which would
    -- reorder keys and change the bytes).
    payload           bytea       NOT NULL,
    signing_secret_id uuid,
    is_automatic      boolean     NOT NULL,
    status            text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure_reason    text,
    failure_detail    text,
    attempt_count     integer     NOT NULL CHECK (attempt_count >= 0),
    max_attempts      integer     NOT NULL,
    -- When a worker may next claim it; NULL once terminal. A claim moves it
    -- to the lease expiry, out of the due range.
    next_attempt_at   timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    completed_at      timestamptz,
    -- The current lease, set by a claim and cleared by a record or release.
    lease_token       uuid,
    lease_expires_at  timestamptz,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
    CHECK ((status = 'pending') = (completed_at IS NULL))
);

-- The in-flight guard: at most one pending delivery per batch.
CREATE UNIQUE INDEX deliveries_one_pending_per_batch
    ON {{schema}}.deliveries (batch_id) WHERE status = 'pending';

-- At most one automatic delivery per batch, in any state.
CREATE UNIQUE INDEX deliveries_one_automatic_per_batch
    ON {{schema}}.deliveries (batch_id) WHERE is_automatic;

-- Claims: pending deliveries in due order.
CREATE INDEX deliveries_due
    ON {{schema}}.deliveries (next_attempt_at, id) WHERE status = 'pending';

-- Latest and History: a batch's deliveries, newest first.
CREATE INDEX deliveries_batch
    ON {{schema}}.deliveries (batch_id, created_at DESC, id DESC);

CREATE TABLE {{schema}}.attempts (
    id               uuid        PRIMARY KEY,
    delivery_id      uuid        NOT NULL REFERENCES {{schema}}.deliveries (id) ON DELETE CASCADE,
    attempt_number   integer     NOT NULL CHECK (attempt_number >= 1),
    status_code      integer,    -- HTTP status; NULL when no response arrived
    response_body    text,
    response_time_ms bigint      NOT NULL,
    error_message    text,
    failure_reason   text,
    created_at       timestamptz NOT NULL
);

-- A delivery's attempts, oldest first; also makes attempt numbers unique.
CREATE UNIQUE INDEX attempts_delivery_number
    ON {{schema}}.attempts (delivery_id, attempt_number);

// Package postgres is hookline's PostgreSQL Store: durable deliveries that
// survive restarts and crashes, shared by every replica of a service that
// points at the same database, with callbacks enqueued in the service's own
// transactions. It is the only hookline package that imports a database
// driver (pgx/v5).
//
// # Use
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	pg, err := postgres.New(pool, postgres.Options{}) // schema "hookline"
//	err = pg.Migrate(ctx)                              // on every start; cheap when up to date
//	d, err := delivery.New(delivery.Config{Signer: signer, Store: pg})
//	err = d.Start(ctx)
//
// # Schema and migrations
//
// Everything lives in one schema (Options.Schema, default "hookline"), so
// several independent queues can share a database: deliveries (one row per
// delivery, the frozen payload as bytea so it is sent byte for byte, never
// jsonb, which would reorder keys), attempts (one row per HTTP request,
// referencing its delivery), and schema_migrations (the versions applied).
// Migrate applies the embedded, versioned migrations that are missing, in one
// transaction, under an advisory lock keyed by the schema name, so replicas
// that start together may all call it.
//
// The rules of store.Store are enforced by the database, atomically across
// processes: a partial unique index on batch_id WHERE status = 'pending' is the
// in-flight guard (at most one pending delivery per batch), another on batch_id
// WHERE is_automatic allows one automatic delivery per batch; an Insert that
// would break either returns store.ErrConflict. A partial index on
// (next_attempt_at, id) WHERE status = 'pending' serves claims.
//
// # The outbox: enqueue in your own transaction
//
// The recommended way to send a batch's callback is to enqueue it in the same
// transaction that records the batch's terminal state, through Tx: both
// commit, or neither does. A batch can then never end without its callback,
// nor a callback be sent for a change that rolled back.
//
//	tx, err := pool.Begin(ctx)
//	defer tx.Rollback(ctx)
//	_, err = tx.Exec(ctx, "UPDATE batches SET status = 'succeeded' WHERE id = $1", batchID)
//	_, err = deliverer.DeliverTx(ctx, pg.Tx(tx), callbackURL, callback)
//	err = tx.Commit(ctx) // workers see the delivery from here on
//
// # Many replicas
//
// Any number of Deliverers, in any number of processes, may share one schema.
// Claim leases due deliveries with UPDATE ... FOR UPDATE SKIP LOCKED, so
// concurrent claimers never wait for each other and never receive the same
// delivery while its lease is valid; the claim moves next_attempt_at to the
// lease expiry, out of the due range, so later claims do not step over leased
// rows. Record and Release apply only while their lease token is still the
// delivery's (fencing): a worker that stalled past its lease gets
// store.ErrLeaseLost and changes nothing once another Claim has taken the
// delivery over (an expired lease still records until then). When a process dies, its leases
// expire and other processes take the deliveries over; the only callbacks
// sent twice are those it had in flight or had attempted and not yet
// recorded.
//
// Leases are committed without waiting for the disk (synchronous_commit off):
// a lease lost in a crash of the database server only makes its delivery due
// again. Inserts and attempt records are durable. Concurrent Insert calls,
// and concurrent Record calls, of one Store are written together in shared
// transactions (group commit; see Options.DisableGroupCommit), each still
// checked on its own, so that one durable commit serves many deliveries.
//
// Each write runs in a transaction of its own at the connection's default
// isolation. The statements are written for READ COMMITTED, PostgreSQL's
// default; under a role or connection string whose default is REPEATABLE READ
// or SERIALIZABLE, a write that meets a concurrent change (a serialization
// failure) is run again at READ COMMITTED, so the answers stay those above.
// An Insert, Record or Release whose connection is lost after it was sent
// returns an error saying that its outcome is unknown. A Claim whose answer
// is lost returns the error, and the leases it may have taken are held by no
// one until they expire (Lease), as a dead process's are.
//
// # Waking up: LISTEN/NOTIFY and polling
//
// Every insert, through Insert or Tx, sends a notification on the schema's
// channel when its transaction commits. A Deliverer started on this Store
// listens (see Notify) and claims at once, whichever replica enqueued the
// delivery. Notifications are only a hint: the Deliverer still polls every
// Config.PollInterval, which covers the time a listener needs to reconnect
// after its connection dropped.
//
// PostgreSQL commits transactions that notify one at a time, so hosts that
// enqueue through Tx from many concurrent transactions pay that
// serialization; Insert's group commit sends one notification per group.
//
// # Statements and plans
//
// The Store runs its statements in the pool's default query mode (pgx's
// ConnConfig.DefaultQueryExecMode). With pgx's default mode, which prepares a
// statement once per connection, PostgreSQL may settle on a generic plan after
// five runs and keep it until the table's statistics next change; made while
// the tables of a new schema are tiny, such a plan can read the whole table
// on every run until autovacuum next analyzes it. Two statements' good plans
// depend on how many rows the tables hold. The group form of Record, which
// joins a group's rows to the deliveries table, runs in the same round trip
// and transaction as set_config('enable_seqscan', 'off', true), so that every
// plan of it, generic or not, looks the rows up in the primary key. The check
// that says why an Insert conflicted runs in pgx.QueryExecModeCacheDescribe
// (planned at each run, still one round trip), or QueryExecModeDescribeExec
// when the connection has no description cache; a pool configured with
// another mode keeps it. Every mode works, the simple
// protocol included (PgBouncer in transaction mode). The Notify listener
// needs a session of its own, though (LISTEN): through a pooler in
// transaction mode it hears nothing, and Deliverers find new deliveries by
// polling alone.
//
// # Times
//
// PostgreSQL keeps timestamps to the microsecond: times given to the Store
// are truncated to it, and times read back are in UTC.
//
// # Tests
//
// The package's tests run against a real server named by
// HOOKLINE_TEST_DATABASE_URL, for example
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; each test works in
// a schema of its own and drops it when done. Without the variable they are
// skipped, except under CI=true, where they fail.
package postgres

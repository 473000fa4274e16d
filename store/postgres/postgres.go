package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/store"
)

var (
	_ store.Store          = (*Store)(nil)
	_ store.Notifier       = (*Store)(nil)
	_ store.LeasedInserter = (*Store)(nil)
	_ store.OneClaimer     = (*Store)(nil)
)

// DefaultSchema is the schema that holds hookline's tables when
// Options.Schema is empty.
const DefaultSchema = "hookline"

// Options configures a Store. The zero value of every field means its
// documented default.
type Options struct {
	// Schema is the PostgreSQL schema that holds hookline's tables
	// (deliveries, attempts, schema_migrations); Migrate creates it. It must
	// be a plain identifier: a letter or underscore, then letters, digits or
	// underscores, at most 63 bytes. Case is kept (the name is always
	// quoted). Default DefaultSchema ("hookline").
	Schema string

	// Logger receives the listener's connection failures (see Notify).
	// Default: discard.
	Logger *slog.Logger

	// DisableGroupCommit writes every Insert and Record in a transaction of
	// its own. By default concurrent calls share transactions (group
	// commit): Insert calls (not those of Tx) that arrive while earlier ones
	// are being written are written together in one statement, and so are
	// Record calls, each call still checked, fenced and answered on its
	// own. One durable commit then serves many deliveries, which is what
	// lets the Store keep up with many workers; a lone call is written at
	// once, with no added wait. Default false (group commit on).
	DisableGroupCommit bool
}

// Store is the PostgreSQL Store: deliveries and attempts in two tables of one
// schema, shared by every process that uses the same database and schema.
// Make one with New and create its tables with Migrate; the methods of a
// Store not made by New return an error.
//
// All methods are safe for concurrent use, also by many processes at once:
// Claim hands each due delivery to one caller (FOR UPDATE SKIP LOCKED),
// Record and Release are fenced by the lease token, and the partial unique
// indexes make Insert's conflict rules atomic. A Store holds no connection of
// its own except the listener of each Notify.
type Store struct {
	pool    *pgxpool.Pool
	schema  string // as given
	q       string // quoted, for SQL text
	channel string // LISTEN/NOTIFY channel
	log     *slog.Logger
	sql     statements
	replan  pgx.QueryExecMode // for statements planned at each run (see replanMode)

	inserts *grouper[*store.Delivery] // nil with DisableGroupCommit
	records *grouper[recordCall]      // nil with DisableGroupCommit
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckSchema returns an error, saying why, when schema cannot name the
// schema of a Store (see Options.Schema): it must be a letter or underscore,
// then letters, digits or underscores, at most 63 bytes, and not begin with
// "pg_", which PostgreSQL keeps for its own schemas. The empty
// name, which New reads as DefaultSchema, is refused here.
func CheckSchema(schema string) error {
	if schema == "" || len(schema) > 63 || !identRE.MatchString(schema) {
		return fmt.Errorf("schema %q is not a plain identifier: use a letter or underscore, then letters, digits or underscores, at most 63 bytes", schema)
	}
	if strings.HasPrefix(schema, "pg_") {
		return fmt.Errorf("schema %q begins with pg_, which PostgreSQL keeps for its own schemas", schema)
	}
	return nil
}

// New returns a Store that keeps its tables in opts.Schema of the database
// that pool connects to. It checks the options but does not touch the
// database: call Migrate before first use. An invalid schema name is an
// error that names the field.
func New(pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("postgres: New: pool is nil; open one with pgxpool.New")
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if err := CheckSchema(opts.Schema); err != nil {
		return nil, fmt.Errorf("postgres: Options.Schema: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		pool:    pool,
		schema:  opts.Schema,
		q:       pgx.Identifier{opts.Schema}.Sanitize(),
		channel: channelName(opts.Schema),
		log:     opts.Logger,
	}
	s.sql = newStatements(s.q)
	s.replan = replanMode(pool.Config().ConnConfig)
	if !opts.DisableGroupCommit {
		s.inserts = newGrouper(s.writeInserts, func(d *store.Delivery) int { return len(d.Payload) + len(d.CallbackURL) })
		s.records = newGrouper(s.writeRecords, func(c recordCall) int {
			return len(c.r.Attempt.ResponseBody) + len(c.r.Attempt.ErrorMessage) + len(c.r.FailureDetail)
		})
	}
	return s, nil
}

// Schema returns the schema that holds the Store's tables.
func (s *Store) Schema() string { return s.schema }

// channelName is the LISTEN/NOTIFY channel of a schema: "hookline:<schema>",
// or a hash of the schema when that is longer than PostgreSQL's 63-byte
// limit on names.
func channelName(schema string) string {
	c := "hookline:" + schema
	if len(c) <= 63 {
		return c
	}
	sum := sha256.Sum256([]byte(schema))
	return "hookline:" + hex.EncodeToString(sum[:16])
}

// querier is what the Store runs statements on: the pool, or a caller's
// transaction (Tx).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// write runs fn, a write of the Store's own through q (a statement in its
// own transaction), on the pool. The statements are written for READ
// COMMITTED, PostgreSQL's default: under a role or connection string whose
// default_transaction_isolation is REPEATABLE READ or SERIALIZABLE, a
// concurrent change of the same rows fails them with a serialization
// failure (SQLSTATE 40001) where READ COMMITTED would give the documented
// answer (ErrConflict, ErrLeaseLost, a row skipped by a claim). Only then
// fn runs again, in a READ COMMITTED transaction of its own; at READ
// COMMITTED, nothing changes and nothing more is paid.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return &writeError{err: err}
	}
	err = func() error {
		defer conn.Release() // also if fn panics (a tracer's hook, say)
		return fn(conn)
	}()
	if !serializationFailure(err) {
		return err
	}
	ran := false
	var fnErr error
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		ran = true
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return &writeError{err: err, sent: ran} // no connection or BEGIN; or COMMIT failed
	}
	return err
}

// writeError is the failure of a write of the Store's own that is not its
// statement's: the write was never sent (no connection to send it on), or,
// when sent, the COMMIT of its transaction failed.
type writeError struct {
	err  error
	sent bool
}

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// serializationFailure reports whether err is a serialization failure
// (SQLSTATE 40001).
func serializationFailure(err error) bool { return sqlState(err) == "40001" }

// sqlState is the SQLSTATE of err when the server sent it, else "".
func sqlState(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}

// replanMode is the query mode, given a connection's default mode, of the
// statements whose good plan depends on how many rows the tables hold: the
// conflict check, whose pending-batch lookup can also walk the due index
// (Record's group statement is kept on index lookups instead: see
// writeRecords). The conflict check runs only after an insert did nothing,
// so planning it each time costs little. pgx's default mode
// prepares each statement once per connection, and after five runs
// PostgreSQL may keep one generic plan for it until the table's statistics
// next change; planned while the tables of a new schema are tiny, that plan
// reads the whole table (a hash join over a sequential scan) and goes on
// doing so as the table grows, until autovacuum next runs ANALYZE.
// QueryExecModeCacheDescribe plans each run for the table as it is (one
// round trip still), or QueryExecModeDescribeExec (two) when the connection
// has no description cache. Other modes already plan each run and are kept.
func replanMode(cfg *pgx.ConnConfig) pgx.QueryExecMode {
	switch {
	case cfg.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement:
		return cfg.DefaultQueryExecMode
	case cfg.DescriptionCacheCapacity > 0:
		return pgx.QueryExecModeCacheDescribe
	default:
		return pgx.QueryExecModeDescribeExec
	}
}

// replanFor is the mode of such statements on q: the Store's pool, or a
// caller's transaction, whose connection may be configured otherwise.
func (s *Store) replanFor(q querier) pgx.QueryExecMode {
	if tx, ok := q.(pgx.Tx); ok {
		if c := tx.Conn(); c != nil { // nil from a wrapper of the caller's
			return replanMode(c.Config())
		}
	}
	return s.replan
}

// made returns an error for a Store not made by New.
func (s *Store) made() error {
	if s == nil || s.pool == nil {
		return errors.New("postgres: Store not made by New")
	}
	return nil
}

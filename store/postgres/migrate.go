package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema change: migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string // with {{schema}} still in it
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration file %s: want NNNN_name.sql", f)
		}
		b, err := migrationFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("postgres: migration versions must run 1, 2, 3, ... without gaps; found %d at position %d", out[i].version, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this package's Migrate brings a
// database to.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// lockKey is the advisory lock that serializes Migrate calls on one schema,
// from any number of processes.
func (s *Store) lockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("hookline migrate " + s.schema))
	return int64(h.Sum64())
}

// Migrate creates the Store's schema and tables, or brings them up to the
// version of this package, in one transaction. It is idempotent: migrations
// already applied (recorded in the schema's schema_migrations table) are
// skipped, so calling it on every start is cheap; on an up-to-date schema it
// only reads the version, so a role that may use the tables but not create
// anything can call it too. Concurrent calls, from this
// or other processes, are serialized by a transaction-scoped advisory lock
// keyed by the schema name; the later ones find the work done, whatever
// lock_timeout or statement_timeout the role or connection string sets (the
// migration's transaction lifts both while it waits for the lock, and
// statement_timeout for the migration's statements too). A role that owns an existing schema
// may migrate it without the CREATE privilege on the database. A database
// whose schema is newer than this package knows is an error: deploy the newer
// code everywhere before running older code against it.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.made(); err != nil {
		return err
	}
	if err := store.CheckContext(ctx, "migrate"); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	if v, err := s.Version(ctx); err == nil && v >= len(ms) {
		// Up to date: nothing to lock or create, so a role that may only
		// use the tables can call Migrate on every start too.
		if v > len(ms) {
			return fmt.Errorf("postgres: migrate schema %s: %w", s.schema, newerSchema(s.schema, v, len(ms)))
		}
		return nil
	}
	// READ COMMITTED whatever the database's default: each statement after
	// the lock must see what a migrator that held it before committed,
	// which a snapshot taken at the transaction's first statement (the
	// lock) would not.
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		// Another replica may hold the lock for as long as its migration
		// takes: a lock_timeout or statement_timeout of the role or the
		// connection string must not fail this one meanwhile.
		var lockTimeout string
		if err := tx.QueryRow(ctx, "SELECT current_setting('lock_timeout')").Scan(&lockTimeout); err != nil {
			return fmt.Errorf("read lock_timeout: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)"); err != nil {
			return fmt.Errorf("lift the timeouts of the migration: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.lockKey()); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		// The migration's own statements wait for table locks no longer
		// than the operator allows.
		if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", lockTimeout); err != nil {
			return fmt.Errorf("restore lock_timeout: %w", err)
		}
		// CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even
		// when the schema exists, which a role given only its own schema
		// lacks: create it only when missing.
		var missing bool
		if err := tx.QueryRow(ctx, "SELECT to_regnamespace($1) IS NULL", s.q).Scan(&missing); err != nil {
			return fmt.Errorf("look for the schema: %w", err)
		}
		if missing {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s.q); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.q+`.schema_migrations (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.q+".schema_migrations").Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(ms) {
			return newerSchema(s.schema, current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(m.sql, "{{schema}}", s.q)); err != nil {
				return fmt.Errorf("apply migration %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+s.q+".schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate schema %s: %w", s.schema, err)
	}
	return nil
}

// Version reads the version the Store's schema is at, changing nothing: 0
// when it has never been migrated. Migrate brings it to SchemaVersion.
func (s *Store) Version(ctx context.Context) (int, error) {
	if err := s.made(); err != nil {
		return 0, err
	}
	if err := store.CheckContext(ctx, "version"); err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.q+".schema_migrations").Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.q+".schema_migrations").Scan(&v)
	return v, err
}

// newerSchema is the error of a schema at version v, newer than the known
// versions of this package.
func newerSchema(schema string, v, known int) error {
	return fmt.Errorf("schema %s is at version %d, newer than this hookline knows (%d): upgrade hookline", schema, v, known)
}

package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store/postgres"
)

// schemaState is what Migrate leaves: the applied versions with their times,
// and the schema's tables and indexes.
type schemaState struct {
	Versions map[int]time.Time
	Objects  []string
}

func readSchemaState(t *testing.T, db *testDB, schema string) schemaState {
	t.Helper()
	ctx := context.Background()
	st := schemaState{Versions: map[int]time.Time{}}
	rows, err := db.Pool.Query(ctx, "SELECT version, applied_at FROM "+schema+".schema_migrations")
	require.NoError(t, err)
	for rows.Next() {
		var v int
		var at time.Time
		require.NoError(t, rows.Scan(&v, &at))
		st.Versions[v] = at
	}
	require.NoError(t, rows.Err())
	rows, err = db.Pool.Query(ctx, `SELECT c.relname || ':' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 ORDER BY 1`, schema)
	require.NoError(t, err)
	for rows.Next() {
		var o string
		require.NoError(t, rows.Scan(&o))
		st.Objects = append(st.Objects, o)
	}
	require.NoError(t, rows.Err())
	return st
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	db := newTestDB(t) // migrated once
	first := readSchemaState(t, db, db.Schema)
	require.Len(t, first.Versions, postgres.SchemaVersion(), "a fresh schema must have every migration applied")
	for _, want := range []string{"deliveries:r", "attempts:r", "schema_migrations:r", "deliveries_due:i",
		"deliveries_one_pending_per_batch:i", "deliveries_one_automatic_per_batch:i", "attempts_delivery_number:i"} {
		assert.Contains(t, first.Objects, want)
	}

	require.NoError(t, db.Store.Migrate(context.Background()), "a second Migrate must succeed")
	assert.Equal(t, first, readSchemaState(t, db, db.Schema), "a second Migrate must change nothing")
}

// Four replicas, each with its own pool, migrate a fresh schema at the same
// moment, whatever the database's default isolation level.
func TestConcurrentMigrateCallsAllSucceed(t *testing.T) {
	db := newTestDB(t)
	for _, iso := range []string{"read committed", "repeatable read", "serializable"} {
		t.Run(iso, func(t *testing.T) {
			schema := freshSchema()
			t.Cleanup(func() { db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
			dsn := db.DSN + "?"
			if strings.Contains(db.DSN, "?") {
				dsn = db.DSN + "&"
			}
			dsn += "default_transaction_isolation=" + url.PathEscape(iso)
			const replicas = 4
			stores := make([]*postgres.Store, replicas)
			for i := range stores {
				s, err := postgres.New(newPool(t, dsn, 0), postgres.Options{Schema: schema})
				require.NoError(t, err)
				stores[i] = s
			}
			errs := runConcurrently(replicas, func(i int) error { return stores[i].Migrate(context.Background()) })
			for i, err := range errs {
				assert.NoError(t, err, "replica %d: concurrent Migrate calls must all succeed", i)
			}
			st := readSchemaState(t, db, schema)
			assert.Len(t, st.Versions, postgres.SchemaVersion(), "each migration must be applied exactly once")
		})
	}
}

func TestMigrateRefusesANewerSchema(t *testing.T) {
	db := newTestDB(t)
	_, err := db.Pool.Exec(context.Background(), "INSERT INTO "+db.Schema+".schema_migrations (version, name) VALUES ($1, 'from the future')", postgres.SchemaVersion()+1)
	require.NoError(t, err)
	err = db.Store.Migrate(context.Background())
	assert.ErrorContains(t, err, "newer than this hookline knows", "Migrate must refuse a schema a newer hookline has migrated")
}

// The schema is migrated by its owner; the service runs as a role that may
// use the tables but not create anything, and calls Migrate on every start,
// as advised. On an up-to-date schema that needs no CREATE privilege.
func TestMigrateUpToDateNeedsNoCreatePrivilege(t *testing.T) {
	db := newTestDB(t) // migrated by the test database's superuser
	ctx := context.Background()
	role := "hookline_test_app_" + db.Schema[len(db.Schema)-12:]
	t.Cleanup(func() {
		db.Pool.Exec(ctx, "DROP OWNED BY "+role)
		db.Pool.Exec(ctx, "DROP ROLE "+role)
	})
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT USAGE ON SCHEMA " + db.Schema + " TO " + role,
		"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA " + db.Schema + " TO " + role,
	} {
		_, err := db.Pool.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	pool := poolAs(t, db, role)
	app, err := postgres.New(pool, postgres.Options{Schema: db.Schema})
	require.NoError(t, err)
	_, err = app.Claim(ctx, time.Now(), 1, time.Minute)
	require.NoError(t, err, "the role can use the Store")
	require.NoError(t, app.Migrate(ctx))
	v, err := app.Version(ctx)
	require.NoError(t, err, "reading the version needs no CREATE privilege either")
	assert.Equal(t, postgres.SchemaVersion(), v)

	// Newer than this package: the same refusal as for its owner.
	_, err = db.Pool.Exec(ctx, "INSERT INTO "+db.Schema+".schema_migrations (version, name) VALUES ($1, 'from the future')", postgres.SchemaVersion()+1)
	require.NoError(t, err)
	require.ErrorContains(t, app.Migrate(ctx), "newer than this hookline knows")

	// Not up to date: then it needs the privileges, and says so.
	_, err = db.Pool.Exec(ctx, "DELETE FROM "+db.Schema+".schema_migrations WHERE version >= $1", postgres.SchemaVersion())
	require.NoError(t, err)
	require.ErrorContains(t, app.Migrate(ctx), "permission denied")
}

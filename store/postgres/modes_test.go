package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/storetest"
)

// The Store works whatever the query mode of the pool: the simple protocol
// and unprepared statements (PgBouncer in transaction mode), and pgx's
// default mode without a description cache. Each configuration runs the
// conformance suite, then a group of records and the conflict check, which
// choose a mode of their own (see replanMode).
func TestEveryQueryMode(t *testing.T) {
	for _, params := range []string{
		"default_query_exec_mode=exec",
		"default_query_exec_mode=simple_protocol",
		"default_query_exec_mode=describe_exec",
		"default_query_exec_mode=cache_describe",
		"description_cache_capacity=0",
	} {
		t.Run(params, func(t *testing.T) {
			newStore := func(t *testing.T) (*testDB, *pgxpool.Pool) {
				db := newTestDB(t)
				pool := newPool(t, db.DSN+"?"+params, 0)
				return db, pool
			}
			storetest.Run(t, func(t *testing.T) store.Store {
				db, pool := newStore(t)
				return db.NewStore(t, pool, nil)
			})
			t.Run("GroupsAndConflicts", func(t *testing.T) {
				db, pool := newStore(t)
				st := db.NewStore(t, pool, nil)
				ctx := context.Background()
				recordGroup(t, st)
				insertConflict(t, st)
				d := storetest.NewDelivery(uuid.New(), time.Now())
				require.NoError(t, st.Insert(ctx, d))
				err := st.Insert(ctx, d)
				assert.ErrorContains(t, err, "already exists")
				assert.NotErrorIs(t, err, store.ErrConflict, "a duplicate id is not a batch conflict")
			})
		})
	}
}

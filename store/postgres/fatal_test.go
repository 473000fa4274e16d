package postgres_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/store"
	"github.com/hookline/hookline/store/postgres"
	"github.com/hookline/hookline/storetest"
)

// fatalProxy is a proxy to PostgreSQL (speaking the protocol, so
// sslmode=disable) that, once armed, lets one statement whose command tag
// starts with tag run and commit, then replaces the ReadyForQuery that
// follows with "FATAL 57P01 terminating connection due to administrator
// command" and closes the connection: what a client sees when its backend
// is terminated just after its transaction committed (pg_terminate_backend
// or a fast shutdown while the commit waits for a synchronous standby).
type fatalProxy struct {
	addr  string
	tag   string
	armed atomic.Bool
	fired atomic.Int32
}

func newFatalProxy(t *testing.T, db *testDB, tag string) *fatalProxy {
	p := &fatalProxy{tag: tag}
	p.addr = newProxy(t, serverAddr(t, db), func(c, s net.Conn) {
		go func() { io.Copy(s, c); s.Close() }()
		go p.serverToClient(c, s)
	})
	return p
}

func (p *fatalProxy) serverToClient(c, s net.Conn) {
	defer c.Close()
	r := bufio.NewReader(s)
	lastTag := ""
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch hdr[0] {
		case 'C': // CommandComplete
			lastTag = strings.TrimRight(string(body), "\x00")
		case 'Z': // ReadyForQuery: the statement's transaction has ended
			if strings.HasPrefix(lastTag, p.tag) && p.armed.CompareAndSwap(true, false) {
				p.fired.Add(1)
				var fields []byte
				for _, f := range []string{"SFATAL", "VFATAL", "C57P01", "Mterminating connection due to administrator command"} {
					fields = append(append(fields, f...), 0)
				}
				fields = append(fields, 0)
				msg := binary.BigEndian.AppendUint32([]byte{'E'}, uint32(len(fields)+4))
				c.Write(append(msg, fields...))
				s.Close()
				return
			}
			lastTag = ""
		}
		if _, err := c.Write(append(hdr[:], body...)); err != nil {
			return
		}
	}
}

// A FATAL error after a group's transaction committed says nothing about
// the outcome: the Store must not write the calls again one by one (as it
// does after an ERROR, which changed nothing) and answer them with what that
// second write finds. An Insert that was stored is not a failure to insert
// ("a delivery with this id already exists"), nor a Record that applied a
// lost lease.
func TestFatalErrorAfterCommitLeavesTheOutcomeUnknown(t *testing.T) {
	ctx := context.Background()
	unknown := "the outcome is unknown"

	t.Run("insert", func(t *testing.T) {
		db := newTestDB(t)
		p := newFatalProxy(t, db, "SELECT")
		st := db.NewStore(t, newPool(t, viaProxy(t, db, p.addr, "sslmode", "disable"), 0), nil)
		require.NoError(t, st.Insert(ctx, storetest.NewDelivery(uuid.New(), time.Now())), "before the proxy is armed")

		d := storetest.NewDelivery(uuid.New(), time.Now())
		p.armed.Store(true)
		err := st.Insert(ctx, d)
		require.EqualValues(t, 1, p.fired.Load(), "the proxy replaced no ReadyForQuery")
		_, gerr := db.Store.Get(ctx, d.ID)
		require.NoError(t, gerr, "the delivery was inserted and committed")
		if assert.Error(t, err) {
			assert.Contains(t, err.Error(), unknown)
		}
	})

	t.Run("lone record", func(t *testing.T) {
		db := newTestDB(t)
		p := newFatalProxy(t, db, "INSERT")
		st := db.NewStore(t, newPool(t, viaProxy(t, db, p.addr, "sslmode", "disable"), 0), nil)
		now := time.Now().Truncate(time.Microsecond)
		c := insertAndClaim(t, st, now, 1)[0]
		p.armed.Store(true)
		err := st.Record(ctx, c.LeaseToken, store.Result{
			DeliveryID: c.ID, Status: store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
			Attempt: store.Attempt{ID: uuid.New(), DeliveryID: c.ID, AttemptNumber: 1, StatusCode: 200, CreatedAt: now},
		})
		require.EqualValues(t, 1, p.fired.Load(), "the proxy replaced no ReadyForQuery")
		got, gerr := db.Store.Get(ctx, c.ID)
		require.NoError(t, gerr)
		require.Equal(t, store.StatusSucceeded, got.Status, "the Record applied")
		if assert.Error(t, err) {
			assert.Contains(t, err.Error(), unknown)
		}
	})

	t.Run("record group", func(t *testing.T) {
		db := newTestDB(t)
		p := newFatalProxy(t, db, "SELECT")
		st := db.NewStore(t, newPool(t, viaProxy(t, db, p.addr, "sslmode", "disable"), 0), nil)
		now := time.Now().Truncate(time.Microsecond)
		claimed := insertAndClaim(t, st, now, 2)
		tokens := make([]uuid.UUID, len(claimed))
		rs := make([]store.Result, len(claimed))
		for i, c := range claimed {
			tokens[i] = c.LeaseToken
			rs[i] = store.Result{
				DeliveryID: c.ID, Status: store.StatusSucceeded, UpdatedAt: now, CompletedAt: now,
				Attempt: store.Attempt{ID: uuid.New(), DeliveryID: c.ID, AttemptNumber: 1, StatusCode: 200, CreatedAt: now},
			}
		}
		p.armed.Store(true)
		errs := st.RecordGroup(ctx, tokens, rs)
		require.EqualValues(t, 1, p.fired.Load(), "the proxy replaced no ReadyForQuery")
		for i, c := range claimed {
			got, gerr := db.Store.Get(ctx, c.ID)
			require.NoError(t, gerr)
			require.Equal(t, store.StatusSucceeded, got.Status, "the group's Record applied")
			assert.NotErrorIs(t, errs[i], store.ErrLeaseLost, "a Record that applied under its lease")
			if assert.Error(t, errs[i]) {
				assert.Contains(t, errs[i].Error(), unknown)
			}
		}
	})
}

// insertAndClaim inserts n deliveries due at now into st and claims them.
func insertAndClaim(t *testing.T, st *postgres.Store, now time.Time, n int) []*store.Delivery {
	t.Helper()
	ctx := context.Background()
	for range n {
		require.NoError(t, st.Insert(ctx, storetest.NewDelivery(uuid.New(), now)))
	}
	claimed, err := st.Claim(ctx, now, n, time.Hour)
	require.NoError(t, err)
	require.Len(t, claimed, n)
	return claimed
}

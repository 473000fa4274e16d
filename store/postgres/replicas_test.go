package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/store"
)

// Three Deliverers, each with its own connection pool as three replicas of a
// service would have, share one schema and deliver 2,000 callbacks: every
// delivery succeeds once, every body verifies (the receiver checks), and no
// delivery is ever attempted by two of them at once (the receiver fails the
// test on overlapping requests for one Webhook-Id).
func TestThreeReplicasShareTheWork(t *testing.T) {
	const (
		callbacks = 2000
		replicas  = 3
		producers = 8
	)
	db := newTestDB(t)
	secret := newSecret(t)
	rc := newReceiver(t, 0, secret)
	signer := newSigner(t, secret)

	ds := make([]*delivery.Deliverer, replicas)
	attempts := make([]atomic.Int64, replicas)
	for i := range ds {
		st := db.NewStore(t, nil, nil)
		ds[i] = newDeliverer(t, st, signer, func(c *delivery.Config) {
			c.Workers = 16
			c.Observer.Attempt = func(*store.Delivery, store.Attempt) { attempts[i].Add(1) }
			c.Observer.Error = func(op string, err error) { t.Errorf("replica %d: store %s failed: %v", i, op, err) }
		})
	}

	ids := make([]uuid.UUID, callbacks)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for p := range producers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= callbacks {
					return
				}
				rec, err := ds[p%replicas].Deliver(context.Background(), rc.URL, callback(uuid.New()))
				if !assert.NoError(t, err) {
					return
				}
				ids[i] = rec.ID
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())
	final := waitTerminal(t, db.Store, ids, time.Minute)
	t.Logf("%d callbacks delivered in %s; attempts per replica: %d, %d, %d", callbacks, time.Since(start).Round(time.Millisecond),
		attempts[0].Load(), attempts[1].Load(), attempts[2].Load())

	for _, d := range final {
		if d.Status != store.StatusSucceeded || d.AttemptCount != 1 || len(d.Attempts) != 1 {
			t.Errorf("delivery %s ended %s after %d attempts (%d recorded): want succeeded after one", d.ID, d.Status, d.AttemptCount, len(d.Attempts))
		}
	}
	receipts, _, total := rc.counts()
	assert.Len(t, receipts, callbacks, "every delivery must reach the receiver")
	assert.Equal(t, callbacks, total, "no delivery may be sent twice")
	for i := range attempts {
		assert.Positive(t, attempts[i].Load(), "replica %d made no attempt: the replicas must share the work", i)
	}
}

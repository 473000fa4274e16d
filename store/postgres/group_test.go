package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The grouper is tested without a database: a fake writer records the
// groups it is given.

func TestGrouperAnswersEveryCallInBoundedGroups(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	var writing, maxWriting atomic.Int32
	g := newGrouper(func(ctx context.Context, calls []*groupCall[int]) {
		n := writing.Add(1)
		defer writing.Add(-1)
		for {
			m := maxWriting.Load()
			if n <= m || maxWriting.CompareAndSwap(m, n) {
				break
			}
		}
		keys := map[uuid.UUID]bool{}
		for _, c := range calls {
			if keys[c.key] {
				t.Errorf("key %s appears twice in one group", c.key)
			}
			keys[c.key] = true
			if c.v%7 == 0 {
				c.err = errors.New("seven")
			}
		}
		mu.Lock()
		sizes = append(sizes, len(calls))
		mu.Unlock()
		time.Sleep(time.Millisecond) // a commit
	}, func(int) int { return 1 })

	const n = 1000
	shared := uuid.New() // every tenth call uses one key
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		key := uuid.New()
		if i%10 == 0 {
			key = shared
		}
		wg.Go(func() { errs[i] = g.do(context.Background(), key, i) })
	}
	wg.Wait()
	for i, err := range errs {
		if i%7 == 0 {
			assert.EqualError(t, err, "seven", "call %d must get the error its write set", i)
		} else {
			assert.NoError(t, err, "call %d", i)
		}
	}
	total, biggest := 0, 0
	for _, s := range sizes {
		total += s
		biggest = max(biggest, s)
	}
	assert.Equal(t, n, total, "every call must be written exactly once")
	assert.LessOrEqual(t, biggest, maxGroup, "a group holds at most maxGroup calls")
	assert.Greater(t, biggest, 1, "concurrent calls must share groups")
	assert.LessOrEqual(t, int(maxWriting.Load()), groupFlushers, "at most groupFlushers groups are written at once")
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.running == 0 && len(g.queue) == 0
	}, 5*time.Second, time.Millisecond, "every flusher must end once the queue is empty")
}

func TestGrouperContext(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	written := map[int]bool{}
	started := make(chan int, 10)
	g := newGrouper(func(ctx context.Context, calls []*groupCall[int]) {
		for _, c := range calls {
			started <- c.v
		}
		<-release
		mu.Lock()
		defer mu.Unlock()
		for _, c := range calls {
			written[c.v] = true
		}
	}, func(int) int { return 1 })

	// Call 1 is being written (the writer is blocked); calls 2 and 3 wait
	// in the queue.
	require.Equal(t, 1, groupFlushers, "this test assumes one flusher")
	ctxTaken, cancelTaken := context.WithCancel(context.Background())
	errTaken := make(chan error, 1)
	go func() { errTaken <- g.do(ctxTaken, uuid.New(), 1) }()
	require.Equal(t, 1, <-started)
	go func() { _ = g.do(context.Background(), uuid.New(), 2) }()
	ctxQueued, cancelQueued := context.WithCancel(context.Background())
	errQueued := make(chan error, 1)
	go func() { errQueued <- g.do(ctxQueued, uuid.New(), 3) }()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == 2
	}, 5*time.Second, time.Millisecond)

	cancelQueued()
	assert.ErrorIs(t, <-errQueued, context.Canceled, "a call whose context ends while queued returns the context's error")
	cancelTaken()
	err := <-errTaken
	assert.ErrorIs(t, err, context.Canceled, "a call whose context ends while written returns at once")
	assert.ErrorContains(t, err, "may still apply")

	close(release)
	require.Equal(t, 2, <-started, "the queued call that is still wanted must be written next")
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.running == 0
	}, 5*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[int]bool{1: true, 2: true}, written, "the dropped call must not be written")
}

// A group holds at most maxGroupBytes, unless its first call alone is
// larger: such a call is written alone, and nothing waits forever. A call
// left for a later group holds back the later calls of its key, which must
// not overtake it.
func TestGrouperBoundsTheBytesOfAGroup(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var groups [][]int
	g := newGrouper(func(ctx context.Context, calls []*groupCall[int]) {
		<-release
		mu.Lock()
		defer mu.Unlock()
		var vs []int
		for _, c := range calls {
			vs = append(vs, c.v)
		}
		groups = append(groups, vs)
	}, func(v int) int { return v })

	// The first call holds the flusher while the others queue, in order.
	var wg sync.WaitGroup
	queued := func(ok func() bool) {
		require.Eventually(t, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return ok()
		}, 5*time.Second, time.Millisecond)
	}
	wg.Go(func() { assert.NoError(t, g.do(context.Background(), uuid.New(), 1)) })
	queued(func() bool { return g.running == 1 && len(g.queue) == 0 })
	queue := func(key uuid.UUID, v int) {
		wg.Go(func() { assert.NoError(t, g.do(context.Background(), key, v)) })
		queued(func() bool {
			return slices.ContainsFunc(g.queue, func(c *groupCall[int]) bool { return c.v == v && c.key == key })
		})
	}
	half := maxGroupBytes / 2
	k := uuid.New()
	queue(uuid.New(), half)
	queue(uuid.New(), half-2)
	queue(k, 3) // does not fit after the two...
	queue(k, 2) // ...and this one, which would, must not go before it
	queue(uuid.New(), 2*maxGroupBytes)
	queue(uuid.New(), 4)
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, [][]int{{1}, {half, half - 2}, {3, 4}, {2}, {2 * maxGroupBytes}}, groups)
}

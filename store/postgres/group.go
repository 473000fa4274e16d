package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Group commit: concurrent calls of one kind (Insert, or Record) that arrive
// while an earlier group of that kind is being written are queued and then
// written together, in one statement and so one transaction and one durable
// commit, each call still fenced and answered on its own. A call that finds
// no group in flight is written at once, so a lone caller waits no longer
// than without grouping; under load, groups grow by themselves to the number
// of calls that arrive during one commit.

const (
	// maxGroup bounds the calls written in one group.
	maxGroup = 128
	// maxGroupBytes bounds the payloads and texts of one group (one
	// statement's parameters): PostgreSQL refuses a message of 1 GiB or
	// more by closing the connection, and large payloads are allowed. A
	// call larger than this alone is written alone.
	maxGroupBytes = 64 << 20
	// groupFlushers is how many groups of one kind may be in flight at
	// once. One makes the largest groups and so the fewest statements and
	// commits, which measured best (more flushers only split the waiting
	// calls into smaller groups); a group of 128 per round trip still
	// keeps up with a distant server.
	groupFlushers = 1
	// groupTimeout bounds the writing of one group, which serves many
	// callers and so uses no caller's context.
	groupTimeout = time.Minute
	// groupLockTimeout bounds how long a group statement waits for a row
	// lock held by another transaction (say a host's transaction that
	// inserted a delivery of the same batch and has not committed): past
	// it the statement gives up, and its calls are written one by one,
	// each waiting only for itself (see writeInserts).
	groupLockTimeout = 200 * time.Millisecond
)

// groupCall is one call waiting in a group: its argument, its answer, and
// whether a group has taken it.
type groupCall[T any] struct {
	v     T
	ctx   context.Context // the caller's, for a write of this call alone (see answerLater)
	key   uuid.UUID       // calls with the same key never share a group
	err   error
	taken bool
	later bool // the writer answers it itself, after write has returned
	done  chan struct{}
}

// answerLater lets the writer answer c after write has returned, with
// answer, from another goroutine; the flusher moves on meanwhile.
func (c *groupCall[T]) answerLater() { c.later = true }

// answer sets the outcome of a call marked with answerLater.
func (c *groupCall[T]) answer(err error) {
	c.err = err
	close(c.done)
}

// grouper queues calls of one kind and writes them in groups with write,
// which must set every call's err, or mark it with answerLater and answer
// it later.
type grouper[T any] struct {
	write func(ctx context.Context, calls []*groupCall[T])
	size  func(T) int // bytes of a call's payload and texts

	mu      sync.Mutex
	queue   []*groupCall[T]
	running int
}

func newGrouper[T any](write func(ctx context.Context, calls []*groupCall[T]), size func(T) int) *grouper[T] {
	return &grouper[T]{write: write, size: size}
}

// do queues v and waits for its group to be written. If ctx ends while v is
// still queued, it is dropped and ctx's error returned; if it ends while v's
// group is being written, do returns at once with an error that says the
// outcome is unknown.
func (g *grouper[T]) do(ctx context.Context, key uuid.UUID, v T) error {
	c := &groupCall[T]{v: v, ctx: ctx, key: key, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	start := g.running < groupFlushers
	if start {
		g.running++
	}
	g.mu.Unlock()
	if start {
		go g.flush()
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !c.taken {
		for i, q := range g.queue {
			if q == c {
				g.queue = append(g.queue[:i], g.queue[i+1:]...)
				break
			}
		}
		return ctx.Err()
	}
	select {
	case <-c.done:
		return c.err
	default:
		return fmt.Errorf("postgres: gave up waiting for the write, which may still apply: %w", ctx.Err())
	}
}

// flush writes groups until the queue is empty.
func (g *grouper[T]) flush() {
	for {
		group := g.next()
		if group == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
		g.write(ctx, group)
		cancel()
		for _, c := range group {
			if !c.later {
				close(c.done)
			}
		}
	}
}

// next takes the next group off the queue: up to maxGroup calls with
// distinct keys and, unless the first alone is larger, at most
// maxGroupBytes in all, in arrival order; a call whose key is already in
// the group, or that does not fit, waits for a later one. It returns nil,
// and counts the flusher out, when the queue is empty.
func (g *grouper[T]) next() []*groupCall[T] {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.running--
		return nil
	}
	group := make([]*groupCall[T], 0, min(len(g.queue), maxGroup))
	var keys map[uuid.UUID]bool
	if len(g.queue) > 1 {
		keys = make(map[uuid.UUID]bool, min(len(g.queue), maxGroup))
	}
	rest := g.queue[:0]
	bytes := 0
	for _, c := range g.queue {
		size := g.size(c.v)
		if len(group) == maxGroup || keys[c.key] || (len(group) > 0 && bytes+size > maxGroupBytes) {
			if keys != nil {
				keys[c.key] = true // a later call of its key waits for it
			}
			rest = append(rest, c)
			continue
		}
		if keys != nil {
			keys[c.key] = true
		}
		bytes += size
		c.taken = true
		group = append(group, c)
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	return group
}

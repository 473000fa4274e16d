package delivery

import (
	"sync"
	"time"
)

// Clock is where a Deliverer reads the time and waits. Every decision of
// when to attempt (schedule, leases, record timestamps, signature
// timestamps) goes through it. Real time bounds and measures real I/O only:
// the per-attempt HTTP timeout, the measured response time, the pauses
// between retries of a failing Store call, and the measure of a busy host's
// back-off (see ManualClock).
//
// SystemClock is the default; ManualClock lets tests and users drive time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now. A d <= 0 fires
	// at once.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C delivers the time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped
	// it before it fired.
	Stop() bool
}

// SystemClock returns the Clock of the operating system (time.Now and
// time.NewTimer).
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

// ManualClock is a Clock that moves only when told to: Advance and Set move
// it and fire every timer that has come due, so a test can run a day of
// retry schedule in milliseconds. It is safe for concurrent use. The zero
// value reads the zero time; NewManualClock starts it elsewhere.
//
// A Deliverer reacts to a fired timer on its own goroutines; a test waits for
// the effect it expects (for example an attempt recorded in the Store)
// before advancing again. A delivery that a host's full queue turned back
// (see Config.MaxPerHost) is due again a little later on the Clock, by about
// the host's recent attempt time and at most a PollInterval: a test that
// sends more deliveries to one host than its slots and queue hold advances
// the clock by a PollInterval to let them through.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*manualTimer]struct{}
}

// NewManualClock returns a ManualClock reading start.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start, timers: make(map[*manualTimer]struct{})}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock reaches now + d.
func (c *ManualClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timerAtLocked(c.now.Add(d))
}

// timerAt is implemented by clocks that can arm a timer for an absolute
// time in one step with reading the time. A Deliverer uses it to sleep until
// a time: with NewTimer(wake.Sub(Now())), a clock moved between the two
// calls (a test's Set or Advance) would push the timer past wake.
type timerAt interface {
	newTimerAt(at time.Time) Timer
}

func (c *ManualClock) newTimerAt(at time.Time) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timerAtLocked(at)
}

func (c *ManualClock) timerAtLocked(at time.Time) Timer {
	t := &manualTimer{clock: c, at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.ch <- c.now
		return t
	}
	if c.timers == nil { // the zero ManualClock
		c.timers = make(map[*manualTimer]struct{})
	}
	c.timers[t] = struct{}{}
	return t
}

// Advance moves the clock forward by d and fires the timers that came due.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the clock to t, forwards or backwards, and fires the timers that
// came due. A jump backwards fires nothing.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

// Timers returns how many timers are waiting to fire; tests use it to know
// that a goroutine has gone to sleep.
func (c *ManualClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *ManualClock) setLocked(now time.Time) {
	c.now = now
	for t := range c.timers {
		if !t.at.After(now) {
			delete(c.timers, t)
			t.ch <- now
		}
	}
}

type manualTimer struct {
	clock *ManualClock
	at    time.Time
	ch    chan time.Time
}

func (t *manualTimer) C() <-chan time.Time { return t.ch }

func (t *manualTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	_, pending := t.clock.timers[t]
	delete(t.clock.timers, t)
	return pending
}

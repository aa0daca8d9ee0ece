package pool

import (
	"sync/atomic"
	"time"
)

// coarseTick is how stale a reading of the coarse clock may be while
// requests keep coming.
const coarseTick = 250 * time.Millisecond

// coarseClock is the clock of the affinity table's hit path: the thread's
// idle time is counted in whole seconds, so it needs no fresh reading per
// request, and a clock reading costs as much as the rest of the pool's
// per-request work on some machines. While requests come, a timer stores a
// reading every coarseTick; once a tick passes without a request the timer
// stops (no goroutine waits meanwhile) and the next request reads the real
// clock and starts it again.
type coarseClock struct {
	now     func() time.Time
	nanos   atomic.Int64 // the last reading, Unix ns
	running atomic.Bool  // the timer is armed: nanos is at most a tick old
	used    atomic.Bool  // a request read nanos since the last tick
	timer   *time.Timer
}

func newCoarseClock(now func() time.Time) *coarseClock {
	c := &coarseClock{now: now}
	c.timer = time.AfterFunc(time.Hour, c.tick)
	c.timer.Stop()
	return c
}

// Now returns the time, at most about a tick old.
func (c *coarseClock) Now() time.Time {
	if c.running.Load() {
		if !c.used.Load() {
			c.used.Store(true)
		}
		return time.Unix(0, c.nanos.Load())
	}
	t := c.now()
	c.nanos.Store(t.UnixNano())
	if c.running.CompareAndSwap(false, true) {
		c.used.Store(false)
		c.timer.Reset(coarseTick)
	}
	return t
}

func (c *coarseClock) tick() {
	c.nanos.Store(c.now().UnixNano())
	if c.used.Swap(false) {
		c.timer.Reset(coarseTick)
		return
	}
	c.running.Store(false)
}

// stop disarms the timer; the clock keeps working, reading the real one.
func (c *coarseClock) stop() {
	c.timer.Stop()
	c.running.Store(false)
}

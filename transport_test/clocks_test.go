package transport_test

// Clocks the tests share with the reference server: a settable fake clock
// and a pinned random source.

import (
	"sync/atomic"
	"time"
)

// fakeClock is a settable clock shared by the transport (testhooks Now) and the
// reference server (Options.Now) so that skew checks stay consistent.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(start time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(start.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// wholeSecondNow returns the current time truncated to a whole second, so a
// fake clock started there can add up to 999 ms without changing second.
func wholeSecondNow() time.Time { return time.Now().Truncate(time.Second) }

// halfRand pins the transport's random source.
func halfRand() float64 { return 0.5 }

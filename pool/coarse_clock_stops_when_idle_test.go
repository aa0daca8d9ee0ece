package pool

import (
	"sync/atomic"
	"testing"
	"time"
)

// The coarse clock reads the real clock when idle, serves its last reading
// while requests come, and disarms its timer once a tick passes without
// one, so an idle pool holds no armed timer.
func TestCoarseClockStopsWhenIdle(t *testing.T) {
	var reads atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newCoarseClock(func() time.Time { return base.Add(time.Duration(reads.Add(1)) * time.Second) })
	defer c.stop()
	first := c.Now()
	if reads.Load() != 1 || !c.running.Load() {
		t.Fatalf("first reading: %d clock reads, running %v", reads.Load(), c.running.Load())
	}
	for range 100 {
		if got := c.Now(); got.Before(first) {
			t.Fatalf("coarse clock went back: %v < %v", got, first)
		}
	}
	if n := reads.Load(); n > 3 {
		t.Errorf("100 readings while running read the clock %d times", n)
	}
	// Idle: within a few ticks the timer stops (bounded wait).
	deadline := time.Now().Add(5 * time.Second)
	for c.running.Load() && time.Now().Before(deadline) {
		time.Sleep(coarseTick / 5)
	}
	if c.running.Load() {
		t.Fatal("the coarse clock's timer still runs with no reader")
	}
	before := reads.Load()
	c.Now()
	if reads.Load() != before+1 || !c.running.Load() {
		t.Errorf("after idling: %d new clock reads, running %v", reads.Load()-before, c.running.Load())
	}
}

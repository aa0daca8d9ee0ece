package transport_test

// Every wait of this package is bounded: the time limits, a gate that holds
// a handler, a bounded channel receive and the stack poll that sees callers
// parked in the task cache.

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every wait in this package so that a bug shows up as a
// failure, not as a hung test binary.
const testTimeout = 45 * time.Second

// waitInStack waits until at least n goroutines have every one of
// parts in their stack dump (a frame such as taskCacheWait, or a state
// such as "[select"). It is how a test learns that callers are parked
// inside the task cache waiting on a shared registration, which no channel
// can report from outside the package. It polls, bounded by shortWait.
func waitInStack(t *testing.T, n int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(shortWait)
	buf := make([]byte, 1<<20)
	got := 0
	for time.Now().Before(deadline) {
		size := runtime.Stack(buf, true)
		for size == len(buf) && len(buf) < 64<<20 {
			buf = make([]byte, 2*len(buf))
			size = runtime.Stack(buf, true)
		}
		got = 0
	goroutines:
		for _, g := range strings.Split(string(buf[:size]), "\n\n") {
			for _, p := range parts {
				if !strings.Contains(g, p) {
					continue goroutines
				}
			}
			got++
		}
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d goroutines with %q after %v, want %d", got, parts, shortWait, n)
}

// taskCacheWait is the frame of a caller waiting for (or, on the
// caller's own goroutine, running) a registration in a task cache. The
// flight goroutine of a cancellable caller runs in "wait.func1(", which
// this does not match.
const taskCacheWait = "taskcache.(*Cache).wait("

// gate holds an HTTP handler until the test opens it. Cleanup opens it
// too, so a failing test never leaves a handler (and Close) blocked.
type gate struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// hold reports the arrival of r and blocks until the gate opens or the
// client gives up.
func (g *gate) hold(r *http.Request) {
	select {
	case g.arrived <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-r.Context().Done():
	}
}

// receive returns the next value of ch, failing the test after shortWait.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(shortWait):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// shortWait bounds the waits of the env tests on a channel or a request,
// so that a bug fails the test instead of hanging it.
const shortWait = 10 * time.Second

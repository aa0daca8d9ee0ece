package taskcache

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// TestSignerLateCallersDoNotResign is the regression test of the
// over-signing seen with 64 goroutines on one thread: a goroutine that read
// the clock in second S and was descheduled until another had signed S+1
// used to re-sign S (the "clock went backwards" rule) and store it, and the
// next caller in S+1 then re-signed S+1: two redundant signatures per
// second boundary. The phases below are that interleaving, made
// deterministic with a fake clock: readings are taken first, calls made
// later.
func TestSignerLateCallersDoNotResign(t *testing.T) {
	s := testSigner(t, 0)
	task := &Task{node: node{key: "thread-1"}, id: "task-123"}
	t0 := time.Date(2026, 4, 23, 0, 0, 0, 0, time.UTC)
	const goroutines = 64

	// wave runs goroutines callers at the given readings and returns the
	// headers they were given.
	wave := func(reading func(i int) time.Time) []string {
		t.Helper()
		out := make([]string, goroutines)
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				h, err := s.Assertion(task, reading(i))
				if err != nil {
					t.Error(err)
				}
				out[i] = h
			})
		}
		wg.Wait()
		return out
	}
	second := func(d time.Duration) func(int) time.Time {
		return func(i int) time.Time { return t0.Add(d + time.Duration(i)*time.Millisecond) }
	}

	wave(second(0))                              // second S: one signature
	fresh := wave(second(time.Second))           // second S+1: one more
	late := wave(second(900 * time.Millisecond)) // read in S, arriving now
	after := wave(second(1500 * time.Millisecond))

	if got := s.Signatures(); got != 2 {
		t.Fatalf("%d signatures over two seconds with late callers, want 2", got)
	}
	prev, _ := identity.SignAssertion(s.key, "agent-123", "task-123", t0)
	want, _ := identity.SignAssertion(s.key, "agent-123", "task-123", t0.Add(time.Second))
	for i := range goroutines {
		// A caller of S+1 that found the successor being signed was
		// given S's assertion instead of waiting (see
		// TestSignerServesPreviousWhileSigning).
		if fresh[i] != want && fresh[i] != prev {
			t.Fatalf("caller %d in S+1 was given neither assertion", i)
		}
		if late[i] != want || after[i] != want {
			t.Fatalf("caller %d was not given the assertion of S+1", i)
		}
	}
	if !slices.Contains(fresh, want) {
		t.Fatal("no caller in S+1 was given the assertion of S+1")
	}
}

// TestSignerServesPreviousWhileSigning checks that a caller does not wait
// behind another caller's signature when it holds the task's previous
// assertion, one second past its window, and that it is given that one.
func TestSignerServesPreviousWhileSigning(t *testing.T) {
	s := testSigner(t, 0)
	task := &Task{node: node{key: "k"}, id: "task-1"}
	t0 := time.Unix(1_800_000_000, 0)
	prev, err := s.Assertion(task, t0)
	if err != nil {
		t.Fatal(err)
	}

	task.signMu.Lock() // another caller is signing the successor
	got := make(chan string, 1)
	go func() {
		h, _ := s.Assertion(task, t0.Add(time.Second))
		got <- h
	}()
	select {
	case h := <-got:
		if h != prev {
			t.Error("a caller that did not wait was given another header than the previous one")
		}
	case <-time.After(10 * time.Second):
		task.signMu.Unlock()
		<-got
		t.Fatal("the caller waited behind the signer")
	}
	task.signMu.Unlock()
	if s.Signatures() != 1 {
		t.Fatalf("%d signatures, want 1", s.Signatures())
	}

	// With nothing usable (idle for longer), the caller signs.
	h, err := s.Assertion(task, t0.Add(2*time.Second))
	if err != nil || h == prev || s.Signatures() != 2 {
		t.Fatalf("after the window: %v, same header %v, %d signatures", err, h == prev, s.Signatures())
	}
}

// TestSignerReleasesIdleAssertions checks that an assertion no caller may
// send any more is dropped from its task when the signer next signs, so
// that idle tasks do not keep their last header, and that a task's newer
// assertion is never dropped for an older one.
func TestSignerReleasesIdleAssertions(t *testing.T) {
	s := testSigner(t, 0)
	t0 := time.Unix(1_800_000_000, 0)
	idle := make([]*Task, 1000)
	for i := range idle {
		idle[i] = &Task{node: node{key: "idle"}, id: "task-idle"}
		if _, err := s.Assertion(idle[i], t0); err != nil {
			t.Fatal(err)
		}
	}
	busy := &Task{node: node{key: "busy"}, id: "task-busy"}
	s.Assertion(busy, t0)
	s.Assertion(busy, t0.Add(time.Second)) // busy's S entry is now stale

	// One second later, the assertions of S may still be sent while their
	// successors are signed: nothing is released yet.
	if idle[0].assertion.Load() == nil {
		t.Fatal("released an assertion still usable one second past its window")
	}
	other := &Task{node: node{key: "other"}, id: "task-other"}
	if _, err := s.Assertion(other, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i, task := range idle {
		if task.assertion.Load() != nil {
			t.Fatalf("idle task %d still holds its assertion two seconds later", i)
		}
	}
	if a := busy.assertion.Load(); a == nil || a.second != t0.Unix()+1 {
		t.Fatal("the busy task's newer assertion was dropped for its older one")
	}
	if n, c := len(s.held), cap(s.held); n != 2 || c > 64 {
		t.Errorf("signer holds %d entries in an array of %d, want busy's and other's in a small one", n, c)
	}

	// A released task signs again when it is next used.
	sigs := s.Signatures()
	if _, err := s.Assertion(idle[0], t0.Add(2*time.Second)); err != nil || s.Signatures() != sigs+1 {
		t.Fatalf("released task: %v, %d signatures, want %d", err, s.Signatures(), sigs+1)
	}
}

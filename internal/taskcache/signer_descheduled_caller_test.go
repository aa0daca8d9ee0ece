package taskcache

import (
	"sync"
	"testing"
	"time"
)

// TestSignerCallerDescheduledForSecondsDoesNotResign is the regression test
// of the over-signing seen with 64 goroutines on one thread (-cpu 1) on a
// loaded machine: 7 to 18 signatures for 5 to 7 distinct seconds. A
// goroutine that read the clock and was descheduled for more than a window
// (2-4 s were measured) arrived with a reading older than the cached
// assertion by more than a window, which was taken for a clock that
// stepped back: it re-signed its old second and stored it, and the next
// caller re-signed the current one. Two redundant signatures per such
// goroutine.
//
// The readings are real ones (time.Now, with a monotonic part), taken
// first; the calls are made later, in the order a starved scheduler makes
// them. No time passes in the test: the later readings are the first ones
// plus an offset, which moves their monotonic part too.
func TestSignerCallerDescheduledForSecondsDoesNotResign(t *testing.T) {
	s := testSigner(t, 0)
	task := &Task{node: node{key: "thread-1"}, id: "task-123"}
	const goroutines = 64
	base := time.Now()
	base = base.Add(-time.Duration(base.Nanosecond())) // a whole second, monotonic part kept
	reading := func(d time.Duration) func(int) time.Time {
		return func(i int) time.Time { return base.Add(d + time.Duration(i)*time.Millisecond) }
	}
	wave := func(reading func(int) time.Time) []string {
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

	first := wave(reading(0)) // second S
	// The readings of goroutines descheduled just after them, in S...
	late := make([]time.Time, goroutines)
	for i := range late {
		late[i] = reading(500 * time.Millisecond)(i)
	}
	// ...while the others went on for three seconds.
	wave(reading(time.Second))
	wave(reading(2 * time.Second))
	wave(reading(3 * time.Second))
	current := task.assertion.Load().header
	sigs := s.Signatures()
	if sigs != 4 {
		t.Fatalf("%d signatures over four seconds, want 4", sigs)
	}
	// The descheduled goroutines now run, then the others again.
	lateGot := wave(func(i int) time.Time { return late[i] })
	after := wave(reading(3500 * time.Millisecond))

	if got := s.Signatures(); got != sigs {
		t.Fatalf("%d signatures after callers late by three seconds, want %d (one per second)", got, sigs)
	}
	for i := range goroutines {
		if lateGot[i] != current || after[i] != current {
			t.Fatalf("caller %d was not given the current assertion", i)
		}
		if first[i] != first[0] {
			t.Fatalf("caller %d of the first second was given another header than the rest", i)
		}
	}
}

// TestSignerClockSteppedBackResigns checks that a reading more than a
// window older than the cached assertion is still signed when the clock
// stepped back, i.e. when that reading was taken after the assertion was
// signed: monotonically later (a real clock), or with no monotonic part
// on either side to tell (a fake clock).
func TestSignerClockSteppedBackResigns(t *testing.T) {
	base := time.Now()
	cases := []struct {
		name         string
		signed, read time.Time
	}{
		// The cached assertion's reading was taken by a fake clock
		// three seconds ahead; the caller's is a real one.
		{"fake signed, real read", base.Add(3 * time.Second).Round(0), base},
		{"real signed, fake read", base.Add(3 * time.Second), base.Round(0)},
		{"both fake", base.Add(3 * time.Second).Round(0), base.Round(0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testSigner(t, 0)
			task := &Task{node: node{key: "k"}, id: "task-1"}
			ahead, err := s.Assertion(task, c.signed)
			if err != nil {
				t.Fatal(err)
			}
			h, err := s.Assertion(task, c.read)
			if err != nil || h == ahead || s.Signatures() != 2 {
				t.Fatalf("clock stepped back 3 s: %v, same header %v, %d signatures, want 2",
					err, h == ahead, s.Signatures())
			}
		})
	}
}

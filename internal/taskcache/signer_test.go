package taskcache

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

func testSigner(t *testing.T, maxAge time.Duration) *Signer {
	t.Helper()
	key, err := identity.NewPrivateKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(key, "agent-123", maxAge)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignerOneSignaturePerSecond(t *testing.T) {
	s := testSigner(t, 0)
	task := &Task{node: node{key: "thread-1"}, id: "task-123"}
	t0 := time.Date(2026, 4, 23, 0, 0, 0, 0, time.UTC)

	// 10,000 requests spread over one second, 8 goroutines at a time.
	var wg sync.WaitGroup
	headers := make([]string, 10_000)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < len(headers); i += 8 {
				h, err := s.Assertion(task, t0.Add(time.Duration(i)*99_990*time.Nanosecond))
				if err != nil {
					t.Error(err)
					return
				}
				headers[i] = h
			}
		}(g)
	}
	wg.Wait()
	if got := s.Signatures(); got != 1 {
		t.Fatalf("signatures in one second = %d, want 1", got)
	}
	want, _ := identity.SignAssertion(s.key, "agent-123", "task-123", t0)
	for i, h := range headers {
		if h != want {
			t.Fatalf("request %d got a different header", i)
		}
	}

	// The next second re-signs exactly once.
	h2, err := s.Assertion(task, t0.Add(time.Second))
	if err != nil || h2 == want {
		t.Fatalf("next second: %v, same header %v", err, h2 == want)
	}
	if _, err := s.Assertion(task, t0.Add(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if got := s.Signatures(); got != 2 {
		t.Fatalf("signatures after one more second = %d, want 2", got)
	}

	// A reading up to one window behind the cached assertion (a caller
	// that read the clock before it was signed) is given that assertion.
	if h, err := s.Assertion(task, t0); err != nil || h != h2 {
		t.Fatalf("a reading one second behind: %v, given the newer header %v", err, h == h2)
	}
	if got := s.Signatures(); got != 2 {
		t.Fatalf("signatures after a reading one second behind = %d, want 2", got)
	}
	// A clock that stepped back further re-signs instead of sending a
	// stamp more than a window ahead.
	if h, err := s.Assertion(task, t0.Add(-2*time.Second)); err != nil || h == h2 {
		t.Fatalf("clock stepped back 3 s: %v, same header %v", err, h == h2)
	}
	if got := s.Signatures(); got != 3 {
		t.Fatalf("signatures after the clock stepped back = %d, want 3", got)
	}
}

func TestSignerMaxAge(t *testing.T) {
	s := testSigner(t, 5*time.Second)
	task := &Task{node: node{key: "k"}, id: "task-9"}
	t0 := time.Unix(1_800_000_000, 0)
	first, _ := s.Assertion(task, t0)
	for d := time.Duration(0); d < 5*time.Second; d += 250 * time.Millisecond {
		if h, _ := s.Assertion(task, t0.Add(d)); h != first {
			t.Fatalf("re-signed %v into a 5 s window", d)
		}
	}
	if h, _ := s.Assertion(task, t0.Add(5*time.Second)); h == first {
		t.Fatal("reused an assertion at its maximum age")
	}
	if s.Signatures() != 2 {
		t.Fatalf("signatures = %d", s.Signatures())
	}
	for _, bad := range []time.Duration{-time.Second, 500 * time.Millisecond} {
		if _, err := NewSigner(s.key, "r", bad); err == nil {
			t.Errorf("NewSigner accepted max age %v", bad)
		}
	}
	if _, err := NewSigner(nil, "r", 0); err == nil {
		t.Error("NewSigner accepted a nil key")
	}
}

func TestSignerHitDoesNotAllocate(t *testing.T) {
	s := testSigner(t, 0)
	task := &Task{node: node{key: "k"}, id: "task-1"}
	now := time.Unix(1_800_000_000, 0)
	s.Assertion(task, now)
	if n := testing.AllocsPerRun(1000, func() { s.Assertion(task, now) }); n != 0 {
		t.Errorf("cached assertion allocates %v times", n)
	}
}

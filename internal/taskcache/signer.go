package taskcache

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// DefaultMaxAssertionAge is the default reuse window of a signed assertion:
// one second, i.e. exactly what signing every request would send, since the
// envelope's timestamp has whole-second precision.
const DefaultMaxAssertionAge = time.Second

// Signer mints the AgentAssertion headers of one agent runtime and caches
// them per task.
//
// The read path is one atomic load: a task's header is reused while it is
// younger than the maximum age, so a task is signed at most once per window
// at any request rate. Three rules keep that exact under contention:
//
//   - A caller whose clock reading is older than the cached assertion's is
//     given the cached assertion when it read the clock before that
//     assertion was signed: it was descheduled between its reading and its
//     call (on a loaded machine, or with many goroutines on one thread, for
//     seconds), and re-signing its older second would replace the newer
//     assertion and make the next caller sign that second again. The
//     timestamp it sends is then nearer its request than its own reading.
//     "Before" is judged on the readings' monotonic clock when both carry
//     one (time.Now's do), so a late caller is told from a wall clock that
//     stepped back, whose reading is monotonically later: that one is
//     signed. Readings without a monotonic part (a fake clock) are judged
//     on the wall clock alone: older by at most one window is a late
//     caller, older by more a clock that stepped back.
//   - One caller at a time signs a task (single flight). While it does,
//     callers holding the task's previous assertion, at most one second past
//     its window, send that rather than wait behind a signature; only callers
//     with nothing usable (a task's first request, or one idle for longer)
//     wait for the signer.
//   - A signer remembers the assertions it cached for the last windows only,
//     and releases an assertion once it can no longer be sent, when it next
//     signs: a task idle for more than a window does not hold its last
//     header (about 320 bytes) until it is evicted.
//
// So, on a clock that does not step back, a task that holds its assertion
// is signed at most once per second it is used in. The one exception is a
// task whose assertion was released while idle: a caller that read the
// clock before the release and arrives after it has nothing to reuse, and
// signs its own reading.
type Signer struct {
	key        *identity.PrivateKey
	runtimeID  string
	maxAgeSecs int64
	signatures atomic.Uint64
	onSign     func(*Task) // SetObserver

	mu   sync.Mutex
	held []heldAssertion // cached assertions in the order they were stored
}

// heldAssertion is an assertion the signer stored on a task and has not
// released yet.
type heldAssertion struct {
	task *Task
	a    *signedAssertion
}

// NewSigner returns a signer for runtimeID. maxAge is the reuse window,
// rounded down to whole seconds; 0 means [DefaultMaxAssertionAge]. A
// negative or sub-second non-zero maxAge is an error.
func NewSigner(key *identity.PrivateKey, runtimeID string, maxAge time.Duration) (*Signer, error) {
	if key == nil || runtimeID == "" {
		return nil, errors.New("taskcache: signer needs a key and a runtime id")
	}
	if maxAge == 0 {
		maxAge = DefaultMaxAssertionAge
	}
	if maxAge < time.Second {
		return nil, fmt.Errorf("taskcache: maximum assertion age %v is below one second", maxAge)
	}
	return &Signer{key: key, runtimeID: runtimeID, maxAgeSecs: int64(maxAge / time.Second)}, nil
}

// RuntimeID returns the agent runtime the signer signs for.
func (s *Signer) RuntimeID() string { return s.runtimeID }

// Signatures returns how many assertions the signer has minted.
func (s *Signer) Signatures() uint64 { return s.signatures.Load() }

// Assertion returns the Authorization header value for task at now,
// reusing the cached one when it may still be sent (see [Signer]). The
// result is a secret.
func (s *Signer) Assertion(task *Task, now time.Time) (string, error) {
	sec := now.Unix()
	a := task.assertion.Load()
	if a != nil && s.usable(a, sec) {
		return a.header, nil
	}
	if a != nil && s.late(a, sec, now) {
		return a.header, nil
	}
	if a != nil && sec-a.second == s.maxAgeSecs {
		if !task.signMu.TryLock() {
			// Another caller is signing the successor; this one is at
			// most one second past its window.
			return a.header, nil
		}
	} else {
		task.signMu.Lock()
	}
	defer task.signMu.Unlock()
	if a := task.assertion.Load(); a != nil && (s.usable(a, sec) || s.late(a, sec, now)) {
		return a.header, nil
	}
	header, err := identity.SignAssertion(s.key, s.runtimeID, task.ID(), now)
	if err != nil {
		return "", err
	}
	s.signatures.Add(1)
	s.signed(task)
	a = &signedAssertion{second: sec, header: header, at: now}
	task.assertion.Store(a)
	s.hold(task, a)
	return header, nil
}

// usable reports whether a may be sent by a caller whose clock reads sec:
// it was signed less than a window before sec, or at most a window after
// it (a caller that read the clock before a was signed).
func (s *Signer) usable(a *signedAssertion, sec int64) bool {
	age := sec - a.second
	return age < s.maxAgeSecs && age >= -s.maxAgeSecs
}

// late reports whether a caller whose clock reads now (sec, more than a
// window before a's second, which usable already refused) read it before a
// was signed: a caller descheduled since its reading, not a clock that
// stepped back. Only the monotonic clock can tell those apart; without it
// on both readings, such a reading is a step back.
func (s *Signer) late(a *signedAssertion, sec int64, now time.Time) bool {
	if a.second-sec <= s.maxAgeSecs {
		return false
	}
	return hasMonotonic(now) && hasMonotonic(a.at) && now.Before(a.at)
}

// hasMonotonic reports whether t carries a monotonic clock reading, which
// Round(0) strips.
func hasMonotonic(t time.Time) bool { return t != t.Round(0) }

// hold records that a was stored on task, and releases the assertions
// stored earlier that no caller near a's second may send any more, so that
// idle tasks drop theirs. It runs once per signature, off the read path.
func (s *Signer) hold(task *Task, a *signedAssertion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, heldAssertion{task: task, a: a})
	n := 0
	for n < len(s.held)-1 {
		h := s.held[n]
		// A stale stamp, or one left ahead by a clock that stepped back.
		if age := a.second - h.a.second; age <= s.maxAgeSecs && age >= -s.maxAgeSecs {
			break
		}
		// Only if still cached: a newer assertion of the task stays.
		h.task.assertion.CompareAndSwap(h.a, nil)
		s.held[n] = heldAssertion{}
		n++
	}
	s.held = s.held[n:]
	if c := cap(s.held); c > 64 && len(s.held) < c/4 {
		// After a burst, do not keep its array for the few that remain.
		s.held = slices.Clone(s.held)
	}
}

// SetObserver makes the signer call fn after each assertion it signs (not
// when it reuses a cached one), with the task it signed for. Call it before
// the signer's first use; fn must be safe for concurrent use and quick. nil
// removes the hook.
func (s *Signer) SetObserver(fn func(task *Task)) { s.onSign = fn }

// signed reports one signature to the hook, if any.
func (s *Signer) signed(task *Task) {
	if s.onSign != nil {
		s.onSign(task)
	}
}

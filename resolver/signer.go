package resolver

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/identity"
)

// DefaultMaxAssertionAge is the default reuse window of a signed assertion:
// one second, i.e. exactly what signing every request would send, since the
// envelope's timestamp has whole-second precision.
const DefaultMaxAssertionAge = time.Second

// Signer mints the AgentAssertion headers of one agent runtime and caches
// them per task.
//
// The read path is one atomic load: a task's header is reused while it is
// younger than the maximum age. When it is older, one caller signs under the
// task's mutex while concurrent callers wait for that signature rather than
// signing again, so a task is signed at most once per window at any request
// rate.
type Signer struct {
	key        *identity.PrivateKey
	runtimeID  string
	maxAgeSecs int64
	signatures atomic.Uint64
	onSign     func(*Task) // SetObserver
}

// NewSigner returns a signer for runtimeID. maxAge is the reuse window,
// rounded down to whole seconds; 0 means [DefaultMaxAssertionAge]. A
// negative or sub-second non-zero maxAge is an error.
func NewSigner(key *identity.PrivateKey, runtimeID string, maxAge time.Duration) (*Signer, error) {
	if key == nil || runtimeID == "" {
		return nil, errors.New("resolver: signer needs a key and a runtime id")
	}
	if maxAge == 0 {
		maxAge = DefaultMaxAssertionAge
	}
	if maxAge < time.Second {
		return nil, fmt.Errorf("resolver: maximum assertion age %v is below one second", maxAge)
	}
	return &Signer{key: key, runtimeID: runtimeID, maxAgeSecs: int64(maxAge / time.Second)}, nil
}

// RuntimeID returns the agent runtime the signer signs for.
func (s *Signer) RuntimeID() string { return s.runtimeID }

// Signatures returns how many assertions the signer has minted.
func (s *Signer) Signatures() uint64 { return s.signatures.Load() }

// Assertion returns the Authorization header value for task at now,
// reusing the cached one when it is young enough. The result is a secret.
func (s *Signer) Assertion(task *Task, now time.Time) (string, error) {
	sec := now.Unix()
	if a := task.assertion.Load(); a != nil && s.fresh(a, sec) {
		return a.header, nil
	}
	task.signMu.Lock()
	defer task.signMu.Unlock()
	if a := task.assertion.Load(); a != nil && s.fresh(a, sec) {
		return a.header, nil
	}
	header, err := identity.SignAssertion(s.key, s.runtimeID, task.ID(), now)
	if err != nil {
		return "", err
	}
	s.signatures.Add(1)
	s.signed(task)
	task.assertion.Store(&signedAssertion{second: sec, header: header})
	return header, nil
}

// fresh reports whether a was signed within the window ending at sec. A
// clock that went backwards re-signs rather than send a future timestamp.
func (s *Signer) fresh(a *signedAssertion, sec int64) bool {
	age := sec - a.second
	return age >= 0 && age < s.maxAgeSecs
}

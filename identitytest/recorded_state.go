package identitytest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/agentauth/agentauth/internal/identity"
)

// fullLocked reports whether the server holds MaxRegistrations runtimes and
// tasks already. s.mu is held.
func (s *Server) fullLocked() bool {
	return s.maxRegs > 0 && len(s.runtimes)+len(s.tasks) >= s.maxRegs
}

// newID returns prefix + 16 hex digits, unique among taken ids even when
// Options.Rand is deterministic.
func (s *Server) newID(prefix string, taken func(string) bool) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", errors.New("identitytest: reading randomness")
	}
	id := prefix + hex.EncodeToString(b[:])
	for n := 2; taken(id); n++ {
		id = prefix + hex.EncodeToString(b[:]) + "-" + strconv.Itoa(n)
	}
	return id, nil
}

// RegisterRuntime makes rec's runtime known to the server, as if it had
// gone through agent registration (it does not count in
// Stats.AgentRegistrations). Registering the same runtime id again with
// the same key is a no-op; with another key it is an error.
func (s *Server) RegisterRuntime(rec identity.Record) error {
	if err := rec.Validate(); err != nil {
		return fmt.Errorf("identitytest: RegisterRuntime: %w", err)
	}
	k, err := rec.Key()
	if err != nil {
		return fmt.Errorf("identitytest: RegisterRuntime: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.runtimes[rec.AgentRuntimeID]; ok {
		if !old.pub.Equal(k.PublicKey()) {
			return fmt.Errorf("identitytest: RegisterRuntime: runtime %q is already registered with another key", rec.AgentRuntimeID)
		}
		return nil
	}
	s.addRuntimeLocked(&runtimeEntry{
		info: Runtime{
			RuntimeID:    rec.AgentRuntimeID,
			PublicKeySSH: k.SSHPublicKey(),
			AccountID:    rec.AccountID,
			FedRAMP:      rec.IsFedRAMP,
		},
		pub: k.PublicKey(),
	})
	return nil
}

func (s *Server) addRuntimeLocked(e *runtimeEntry) {
	s.runtimes[e.info.RuntimeID] = e
	s.rtOrder = append(s.rtOrder, e.info.RuntimeID)
}

// Runtimes returns the known runtimes in registration order.
func (s *Server) Runtimes() []Runtime {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Runtime, 0, len(s.rtOrder))
	for _, id := range s.rtOrder {
		rt := s.runtimes[id].info
		rt.Capabilities = append([]string(nil), rt.Capabilities...)
		out = append(out, rt)
	}
	return out
}

// Tasks returns the registered tasks in registration order.
func (s *Server) Tasks() []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Task, 0, len(s.tkOrder))
	for _, id := range s.tkOrder {
		out = append(out, *s.tasks[id])
	}
	return out
}

// RevokeTask revokes a task: every later assertion on it gets 401
// ("task_revoked"). It reports whether the task exists.
func (s *Server) RevokeTask(taskID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[taskID]
	if ok {
		t.Revoked = true
	}
	return ok
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// ResetStats zeroes the counters and forgets the recorded requests; known
// runtimes, tasks and faults stay.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
	s.requests = nil
}

// Requests returns the most recent protected-resource requests (up to
// Options.RequestLog), oldest first. Their headers hold the credentials
// that were sent; see [SeenRequest].
func (s *Server) Requests() []SeenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SeenRequest, len(s.requests))
	for i, r := range s.requests {
		r.Header = r.Header.Clone()
		r.Body = append([]byte(nil), r.Body...)
		out[i] = r
	}
	return out
}

package transport

import (
	"sync/atomic"

	"github.com/agentauth/agentauth/resolver"
)

// Stats is a snapshot of a transport's counters.
type Stats struct {
	// Requests counts requests by the mode they were sent in, indexed by
	// resolver.Mode (use Stats.RequestsIn).
	Requests [resolver.NumModes]uint64
	// ThreadRegistrations counts thread tasks this transport registered.
	ThreadRegistrations uint64
	// ProcessRegistrations counts registrations of the identity's process
	// task, which every transport on that identity in the process shares.
	ProcessRegistrations uint64
	// AgentRegistrations counts identities provisioned from a ChatGPT login.
	AgentRegistrations uint64
	// Signatures counts AgentAssertions minted by this transport's identity
	// (shared with other transports on the same identity).
	Signatures uint64
	// Failures counts requests that returned an authentication error.
	Failures uint64
	// Replays counts requests sent a second time after a 401.
	Replays uint64
	// BearerFallbacks counts the times a ChatGPT login fell back to Bearer
	// because provisioning, or a task registration for its provisioned
	// identity, was unavailable.
	BearerFallbacks uint64
	// CachedThreads is the number of thread tasks currently cached.
	CachedThreads int
}

// RequestsIn returns the number of requests sent in mode m.
func (s Stats) RequestsIn(m resolver.Mode) uint64 { return s.Requests[m] }

// paddedCounter keeps each hot counter on its own cache line so that
// parallel requests in different modes do not contend.
type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

type counters struct {
	requests        [resolver.NumModes]paddedCounter
	threadRegs      atomic.Uint64
	agentRegs       atomic.Uint64
	failures        atomic.Uint64
	replays         atomic.Uint64
	bearerFallbacks atomic.Uint64
}

// add counts one request sent in mode m.
func (c *counters) add(m resolver.Mode) { c.requests[m].Add(1) }

package transport

import (
	"sync/atomic"

	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/usage"
)

// Stats is a snapshot of a transport's counters.
type Stats struct {
	// Requests counts requests by the mode they were sent in, indexed by
	// resolver.Mode: st.Requests[resolver.ModeThreadTask].
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
	// Usage is what the last answer that reported the login's usage (the
	// x-codex-… headers) said; nil before any did.
	Usage *usage.Snapshot
}

// requestStripes is the number of stripes of the per-mode request
// counters (a power of two).
const requestStripes = 16

// requestStripe is one stripe of the per-mode request counters. Its 128
// bytes keep the counters of two stripes at least 64 bytes apart, so no
// two stripes share a cache line whatever the array's alignment.
type requestStripe struct {
	n [resolver.NumModes]atomic.Uint64
	_ [128 - resolver.NumModes*8]byte
}

type counters struct {
	// requests is striped: one counter written by every request from every
	// core would move one cache line between the cores on each request.
	requests        [requestStripes]requestStripe
	threadRegs      atomic.Uint64
	agentRegs       atomic.Uint64
	failures        atomic.Uint64
	replays         atomic.Uint64
	bearerFallbacks atomic.Uint64
}

// add counts one request sent in mode m. The stripe is chosen by the page
// of p, the address of an object the request allocated (or the caller's
// request), used only as a number: objects allocated on different cores
// come from different spans, so concurrent requests mostly write
// different stripes, and a goroutine keeps to one stripe for a span's
// worth of requests. (At -cpu 2, one shared counter cost 7 % of the
// cached process-task path.)
func (c *counters) add(m resolver.Mode, p uintptr) {
	c.requests[p>>13&(requestStripes-1)].n[m].Add(1)
}

// requestsIn sums the stripes of mode m's request counter.
func (c *counters) requestsIn(m int) uint64 {
	var n uint64
	for i := range c.requests {
		n += c.requests[i].n[m].Load()
	}
	return n
}

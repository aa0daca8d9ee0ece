package transport

import (
	"strconv"
	"strings"

	"github.com/agentauth/agentauth/resolver"
)

// String names every counter, the per-mode request counts by their mode
// ("requests{pass-through=0 api-key=0 bearer=0 thread-task=3
// process-task=1} ..."), so a printed snapshot reads without the index
// order of [Stats.Requests]. It holds counts only, never a credential.
func (s Stats) String() string {
	var b strings.Builder
	b.WriteString("requests{")
	for m := range resolver.NumModes {
		if m > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(resolver.Mode(m).String())
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(s.Requests[m], 10))
	}
	b.WriteString("}")
	for _, f := range []struct {
		name string
		n    uint64
	}{
		{"thread_registrations", s.ThreadRegistrations},
		{"process_registrations", s.ProcessRegistrations},
		{"agent_registrations", s.AgentRegistrations},
		{"signatures", s.Signatures},
		{"failures", s.Failures},
		{"replays", s.Replays},
		{"bearer_fallbacks", s.BearerFallbacks},
		{"cached_threads", uint64(max(s.CachedThreads, 0))},
	} {
		b.WriteString(" " + f.name + "=" + strconv.FormatUint(f.n, 10))
	}
	return b.String()
}

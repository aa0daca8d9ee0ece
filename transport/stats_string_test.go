package transport

import (
	"fmt"
	"testing"

	"github.com/agentauth/agentauth/resolver"
)

func TestStatsStringNamesTheModes(t *testing.T) {
	var s Stats
	s.Requests[resolver.ModeThreadTask] = 3
	s.Requests[resolver.ModeProcessTask] = 1
	s.AgentRegistrations, s.CachedThreads = 1, 2
	want := "requests{pass-through=0 api-key=0 bearer=0 thread-task=3 process-task=1} thread_registrations=0 process_registrations=0 agent_registrations=1 signatures=0 failures=0 replays=0 bearer_fallbacks=0 cached_threads=2"
	if got := s.String(); got != want {
		t.Errorf("String()\n got %s\nwant %s", got, want)
	}
	// fmt's %v and %+v use it too, instead of "Requests:[0 0 0 3 1]".
	if got := fmt.Sprintf("%v|%+v", s, s); got != want+"|"+want {
		t.Errorf("fmt: %s", got)
	}
}

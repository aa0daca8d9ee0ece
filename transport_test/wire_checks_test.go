package transport_test

// Checks on what reached the server: assertions, routing headers and their
// absence.

import (
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

// onlySeen returns the only protected request srv recorded.
func onlySeen(t testing.TB, srv *identitytest.Server) identitytest.SeenRequest {
	t.Helper()
	seen := srv.Requests()
	if len(seen) != 1 {
		t.Fatalf("server recorded %d protected requests, want 1", len(seen))
	}
	return seen[0]
}

// taskByID finds a task registered at srv.
func taskByID(srv *identitytest.Server, id string) (identitytest.Task, bool) {
	for _, task := range srv.Tasks() {
		if task.TaskID == id {
			return task, true
		}
	}
	return identitytest.Task{}, false
}

// checkAssertion verifies that the Authorization values are one
// AgentAssertion of runtimeID on a task that srv registered for runtimeID
// and thread ("" = the process task). It returns the task id.
func checkAssertion(t testing.TB, srv *identitytest.Server, values []string, runtimeID, thread string) string {
	t.Helper()
	if len(values) != 1 {
		t.Fatalf("got %d Authorization values, want 1 AgentAssertion", len(values))
	}
	a, err := identity.ParseAssertion(values[0])
	if err != nil {
		t.Fatalf("Authorization is not an AgentAssertion: %v", err)
	}
	if a.AgentRuntimeID != runtimeID {
		t.Fatalf("assertion runtime %q, want %q", a.AgentRuntimeID, runtimeID)
	}
	task, ok := taskByID(srv, a.TaskID)
	if !ok {
		t.Fatalf("assertion names task %q, which the server never registered", a.TaskID)
	}
	if task.RuntimeID != runtimeID || task.ExternalTaskRef != thread {
		t.Fatalf("assertion task belongs to runtime %q thread %q, want runtime %q thread %q",
			task.RuntimeID, task.ExternalTaskRef, runtimeID, thread)
	}
	return a.TaskID
}

// checkNoCredential fails if h carries a credential or routing header.
func checkNoCredential(t testing.TB, h http.Header) {
	t.Helper()
	for _, name := range []string{headers.Authorization, headers.ChatGPTAccountID, headers.OpenAIFedRAMP} {
		if v := h.Values(name); len(v) != 0 {
			t.Errorf("%s reached a non-first-party origin (%d values)", name, len(v))
		}
	}
}

// checkRouting fails unless h has exactly the routing headers of accountID
// and fedRAMP (none at all when accountID is empty).
func checkRouting(t testing.TB, h http.Header, accountID string, fedRAMP bool) {
	t.Helper()
	var wantAcct, wantFed []string
	if accountID != "" {
		wantAcct = []string{accountID}
		if fedRAMP {
			wantFed = []string{"true"}
		}
	}
	if got := h.Values(headers.ChatGPTAccountID); !equalStrings(got, wantAcct) {
		t.Errorf("ChatGPT-Account-ID = %q, want %q", got, wantAcct)
	}
	if got := h.Values(headers.OpenAIFedRAMP); !equalStrings(got, wantFed) {
		t.Errorf("X-OpenAI-Fedramp = %q, want %q", got, wantFed)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

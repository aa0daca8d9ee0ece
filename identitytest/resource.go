package identitytest

import (
	"io"
	"net/http"
	"strings"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

// maxResourceBody bounds how much of a resource request body is kept.
const maxResourceBody = 1 << 20

// serveResource implements every protected resource under /v1/ (any path
// that is not a registration route): it authenticates the request, records
// it and echoes what it verified, marked with [EchoHeader].
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxResourceBody))
	echo := Echo{Mode: ModeNone, Path: r.URL.Path}
	accountID, fedramp, reason := routing(r.Header)
	status := http.StatusBadRequest
	if reason == "" {
		echo.AccountID, echo.FedRAMP = accountID, fedramp
		reason = s.authenticate(r.Header, &echo)
		status = http.StatusUnauthorized
	}
	seen := SeenRequest{
		Method: r.Method,
		Path:   r.URL.Path,
		Header: r.Header.Clone(),
		Body:   body,
		Status: http.StatusOK,
		Echo:   echo,
	}
	upgrade := reason == "" && s.webSocket != nil && isWebSocketUpgrade(r)
	if upgrade {
		seen.Status = http.StatusSwitchingProtocols
	}
	if reason != "" {
		seen.Status, seen.Reason = status, reason
		seen.Echo = Echo{Mode: ModeNone, Path: r.URL.Path}
	}
	var ua usageAnswer // usage.go
	if reason == "" {
		if ua = s.usageFor(echo.AccountID); ua.limited {
			seen.Status = http.StatusTooManyRequests
		}
	}
	s.mu.Lock()
	if s.requestLog > 0 {
		if len(s.requests) >= s.requestLog {
			s.requests = append(s.requests[:0], s.requests[len(s.requests)-s.requestLog+1:]...)
		}
		s.requests = append(s.requests, seen)
	}
	if reason == "" {
		s.stats.RequestsByMode[echo.Mode]++
	}
	s.mu.Unlock()

	if reason != "" {
		s.reject(w, r, RouteResource, status, reason)
		return
	}
	s.log.Debug("identitytest: resource", "method", r.Method, "path", r.URL.Path, "mode", echo.Mode,
		"agent_runtime_id", echo.AgentRuntimeID, "task_id", echo.TaskID)
	if s.answerUsage(w, ua) {
		return // usage_limit_reached (usage.go)
	}
	w.Header().Set(EchoHeader, "identitytest")
	if upgrade {
		s.serveWebSocket(w, r, echo)
		return
	}
	s.writeAnswer(w, r, body, echo)
}

// authenticate verifies the request's credential, fills in echo and
// returns "" on success or the rejection reason. The order of checks makes
// the reason specific: an assertion on another runtime's task is reported
// as such only after its own signature verified.
func (s *Server) authenticate(h http.Header, echo *Echo) string {
	vals := h.Values(headers.Authorization)
	switch {
	case len(vals) == 0:
		if s.anonymous {
			return ""
		}
		return "missing_authorization"
	case len(vals) > 1:
		return "malformed_authorization"
	}
	v := vals[0]
	if tok, ok := strings.CutPrefix(v, headers.SchemeBearer+" "); ok {
		if tok == "" || !(s.knownAccessToken(tok) || s.apiKeys[tok]) {
			return "unknown_bearer"
		}
		echo.Mode = ModeBearer
		return ""
	}
	if !strings.HasPrefix(v, headers.SchemeAgentAssertion+" ") {
		return "unsupported_scheme"
	}
	a, err := identity.ParseAssertion(v)
	if err != nil {
		return "malformed_assertion"
	}
	ts, err := a.Time()
	if err != nil {
		return "malformed_assertion"
	}
	s.mu.Lock()
	rt := s.runtimes[a.AgentRuntimeID]
	s.mu.Unlock()
	if rt == nil {
		return "unknown_runtime"
	}
	if err := a.Verify(rt.pub); err != nil {
		return "bad_signature"
	}
	s.mu.Lock()
	var task Task
	t, known := s.tasks[a.TaskID]
	if known {
		task = *t
	}
	s.mu.Unlock()
	switch {
	case !known:
		return "unknown_task"
	case task.RuntimeID != a.AgentRuntimeID:
		return "task_runtime_mismatch"
	case task.Revoked:
		return "task_revoked"
	case !s.withinSkew(ts):
		return "timestamp_skew"
	}
	echo.Mode = ModeAssertion
	echo.AgentRuntimeID = a.AgentRuntimeID
	echo.TaskID = a.TaskID
	echo.ExternalTaskRef = task.ExternalTaskRef
	return ""
}

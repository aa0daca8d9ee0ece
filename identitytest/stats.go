package identitytest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"

	"github.com/agentauth/agentauth/internal/headers"
)

// Authentication modes a protected resource reports in [Echo.Mode] and
// counts in [Stats.RequestsByMode].
const (
	ModeBearer    = "bearer"    // a configured access token or API key
	ModeAssertion = "assertion" // a verified AgentAssertion
	ModeNone      = "none"      // no credential (accepted only with Options.AllowAnonymous)
)

// Stats are the server's counters. Every map is a fresh copy and never nil.
//
// Requests answered by an injected fault count only in FaultsServed, not as
// registrations, requests or rejections.
type Stats struct {
	// AgentRegistrations counts successful POST /v1/agent/register calls
	// (not runtimes added with Server.RegisterRuntime).
	AgentRegistrations int
	// TaskRegistrations counts successful task registrations of both kinds.
	TaskRegistrations int
	// ProcessTaskRegistrations counts task registrations without
	// external_task_ref.
	ProcessTaskRegistrations int
	// ThreadTaskRegistrations counts task registrations with
	// external_task_ref.
	ThreadTaskRegistrations int
	// RegistrationsByRuntime counts task registrations per runtime id.
	RegistrationsByRuntime map[string]int
	// RegistrationsByExternalRef counts thread-task registrations per
	// external_task_ref.
	RegistrationsByExternalRef map[string]int
	// RequestsByMode counts accepted protected-resource requests per mode
	// (ModeBearer, ModeAssertion, ModeNone).
	RequestsByMode map[string]int
	// Rejections counts every 4xx answer the server chose itself, at any
	// route: failed authentication (401), malformed registrations (400),
	// unknown runtimes or paths (404), wrong methods (405).
	Rejections int
	// RejectionsByReason splits Rejections by the reason string that the
	// error body's "error" member carries, for example "bad_signature",
	// "task_revoked", "timestamp_skew", "unknown_task",
	// "task_runtime_mismatch", "malformed_assertion", "missing_authorization",
	// "unknown_bearer", "unsupported_scheme", "unsigned", "malformed_body".
	RejectionsByReason map[string]int
	// FaultsServed counts requests to which an injected fault applied.
	FaultsServed int
	// JWKSRequests counts JWKS documents served.
	JWKSRequests int
	// TokenRefreshes counts successful refresh-token exchanges at the
	// token endpoint; its rejections count in Rejections under their
	// error code (refresh_token_reused, ...).
	TokenRefreshes int
}

func newStats() Stats {
	return Stats{
		RegistrationsByRuntime:     map[string]int{},
		RegistrationsByExternalRef: map[string]int{},
		RequestsByMode:             map[string]int{},
		RejectionsByReason:         map[string]int{},
	}
}

func (s Stats) clone() Stats {
	s.RegistrationsByRuntime = maps.Clone(s.RegistrationsByRuntime)
	s.RegistrationsByExternalRef = maps.Clone(s.RegistrationsByExternalRef)
	s.RequestsByMode = maps.Clone(s.RequestsByMode)
	s.RejectionsByReason = maps.Clone(s.RejectionsByReason)
	return s
}

// Task is a registered agent task.
type Task struct {
	TaskID          string
	RuntimeID       string
	ExternalTaskRef string // empty for a process task
	Revoked         bool
}

// Runtime is an agent runtime the server knows, from agent registration or
// [Server.RegisterRuntime].
type Runtime struct {
	RuntimeID    string
	PublicKeySSH string
	// AccountID and FedRAMP are the routing headers that came with the
	// agent registration (or the record's fields for RegisterRuntime).
	AccountID    string
	FedRAMP      bool
	Capabilities []string
	// AgentVersion, AgentHarnessID and RunningLocation are the agent bill
	// of materials (abom) sent at agent registration.
	AgentVersion, AgentHarnessID, RunningLocation string
}

// Echo is the JSON body a protected resource answers with: what the server
// verified, never the credential itself. AccountID and FedRAMP are what the
// request's ChatGPT-Account-ID and X-OpenAI-Fedramp headers said.
type Echo struct {
	Mode            string `json:"mode"`
	AgentRuntimeID  string `json:"agent_runtime_id"`
	TaskID          string `json:"task_id"`
	ExternalTaskRef string `json:"external_task_ref"`
	AccountID       string `json:"account_id"`
	FedRAMP         bool   `json:"fedramp"`
	Path            string `json:"path"`
}

// SeenRequest is a protected-resource request as the server received it,
// accepted or rejected.
//
// Header is an exact clone of the request headers, so it holds the
// credential (Authorization) in memory for tests to assert on. The type
// redacts it whenever it is printed or logged; do not print Header yourself.
type SeenRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte // the request body, at most 1 MiB
	Status int    // the status the server answered
	Reason string // the rejection reason; empty when accepted
	Echo   Echo   // what the server verified (Mode is ModeNone when rejected)
}

// summary describes the request with every credential header redacted.
func (r SeenRequest) summary() string {
	return fmt.Sprintf("identitytest.SeenRequest{%s %s status=%d reason=%q mode=%q header=%v}",
		r.Method, r.Path, r.Status, r.Reason, r.Echo.Mode, headers.RedactAll(r.Header))
}

// Format makes every fmt verb print the request with every credential
// header redacted.
func (r SeenRequest) Format(f fmt.State, _ rune) { io.WriteString(f, r.summary()) }

// MarshalJSON encodes the request with every credential header redacted,
// so that logging a []SeenRequest through a JSON handler cannot leak one.
// Use the Header field, not JSON, to assert on credentials.
func (r SeenRequest) MarshalJSON() ([]byte, error) {
	type plain SeenRequest // drops the methods, so no recursion
	p := plain(r)
	p.Header = headers.RedactAll(r.Header)
	return json.Marshal(p)
}

// LogValue logs the request without its credentials.
func (r SeenRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("method", r.Method),
		slog.String("path", r.Path),
		slog.Int("status", r.Status),
		slog.String("reason", r.Reason),
		slog.String("mode", r.Echo.Mode),
	)
}

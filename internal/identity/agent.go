package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"unicode/utf8"

	"github.com/agentauth/agentauth/internal/headers"
)

// DefaultHarnessID is the agent_harness_id sent when
// [AgentRegistration.HarnessID] is empty, as the Codex CLI sends it.
const DefaultHarnessID = "codex-cli"

// RunningLocation returns the default running_location of an agent
// registration: "agentauth-" + runtime.GOOS.
func RunningLocation() string { return "agentauth-" + runtime.GOOS }

// AgentRegistration is a request to register a new agent runtime for a
// ChatGPT login (provisioning an Agent Identity).
//
// AccessToken is a [Secret]: fmt, log/slog and JSON output of a registration
// never show it, with no method of the registration's own.
type AgentRegistration struct {
	// AccessToken is the ChatGPT access token, sent as
	// "Authorization: Bearer <token>". Required.
	AccessToken Secret
	// Routing.FedRAMP adds X-OpenAI-Fedramp: true. Routing.AccountID is
	// not sent: the AuthAPI takes the account from the access token, and
	// current Codex sends no ChatGPT-Account-ID on agent registration. It
	// names the login in String and logs only.
	Routing headers.Routing
	// PublicKey is the new runtime's public key in ssh-ed25519 form
	// ([PrivateKey.SSHPublicKey]). Required.
	PublicKey string
	// Software describes the registering software (the request's abom).
	Software
}

// Software is what an agent registration says about the software that
// registers (its "abom"): not a credential, the same for every login of a
// deployment. The zero value sends the defaults.
type Software struct {
	// AgentVersion is abom.agent_version. Empty means "agentauth/" +
	// [Version].
	AgentVersion string
	// HarnessID is abom.agent_harness_id. Empty means [DefaultHarnessID]
	// ("codex-cli").
	HarnessID string
	// RunningLocation is abom.running_location. Empty means
	// [RunningLocation]() ("agentauth-" + runtime.GOOS).
	RunningLocation string
}

type abom struct {
	AgentVersion    string `json:"agent_version"`
	AgentHarnessID  string `json:"agent_harness_id"`
	RunningLocation string `json:"running_location"`
}

// agentRegistrationBody is the wire body of an agent registration; TTL is
// always null.
type agentRegistrationBody struct {
	ABOM           abom     `json:"abom"`
	AgentPublicKey string   `json:"agent_public_key"`
	Capabilities   []string `json:"capabilities"`
	TTL            *int64   `json:"ttl"`
}

// RegisterAgent registers a new agent runtime for req.PublicKey on behalf of
// the ChatGPT login req.AccessToken and returns its agent_runtime_id.
//
// It POSTs to <AuthAPIBase>/v1/agent/register with the Bearer token, the
// routing headers and the body
// {"abom":{...},"agent_public_key":"ssh-ed25519 ...","capabilities":["responsesapi"],"ttl":null}.
// Each attempt is bounded by [Client.AgentTimeout]; temporary failures (429,
// 5xx, timeouts, connection errors) are retried up to
// [Client.AgentAttempts] attempts in all, waiting a jittered exponential
// backoff (or the server's Retry-After, capped at [MaxRetryWait]) between
// them. It stops at once when ctx ends. Every failure is a
// *[RegistrationError] whose Attempts says how many requests were made; the
// access token never appears in it.
func (c *Client) RegisterAgent(ctx context.Context, req AgentRegistration) (runtimeID string, err error) {
	if c == nil {
		c = &Client{}
	}
	fail := func(err error) (string, error) {
		return "", &RegistrationError{Op: OpAgentRegistration, Err: err}
	}
	if err := c.validate(); err != nil {
		return fail(err)
	}
	base, err := c.authAPIBase()
	if err != nil {
		return fail(err)
	}
	auth, err := headers.Bearer(req.AccessToken.Reveal())
	if err != nil {
		return fail(fmt.Errorf("%w: access token: %w", errInvalidRequest, err))
	}
	if err := req.Routing.Validate(); err != nil {
		return fail(fmt.Errorf("%w: %w", errInvalidRequest, err))
	}
	if _, err := ParseSSHPublicKey(req.PublicKey); err != nil {
		return fail(err)
	}
	body := agentRegistrationBody{
		ABOM: abom{
			AgentVersion:    orString(req.AgentVersion, "agentauth/"+Version),
			AgentHarnessID:  orString(req.HarnessID, DefaultHarnessID),
			RunningLocation: orString(req.RunningLocation, RunningLocation()),
		},
		AgentPublicKey: req.PublicKey,
		Capabilities:   []string{"responsesapi"},
	}
	for _, s := range []string{body.ABOM.AgentVersion, body.ABOM.AgentHarnessID, body.ABOM.RunningLocation} {
		if !utf8.ValidString(s) {
			return fail(fmt.Errorf("%w: abom values must be valid UTF-8", errInvalidRequest))
		}
	}
	payload, err := marshalJSON(body)
	if err != nil {
		return fail(fmt.Errorf("%w: encoding body: %w", errInvalidRequest, err))
	}
	// Exactly Codex's headers: Bearer, JSON (set by exchange), FedRAMP
	// only for FedRAMP accounts, and our User-Agent; no account header.
	h := http.Header{}
	h.Set(headers.Authorization, auth)
	headers.Routing{FedRAMP: req.Routing.FedRAMP}.Apply(h)
	x := exchange{
		op:      OpAgentRegistration,
		method:  http.MethodPost,
		url:     base + "/v1/agent/register",
		body:    payload,
		header:  h,
		timeout: orDefault(c.AgentTimeout, DefaultAgentTimeout),
		secrets: []string{req.AccessToken.Reveal()},
	}

	attempts := orDefault(c.AgentAttempts, DefaultAgentAttempts)
	for n := 1; ; n++ {
		data, rerr := c.exchange(ctx, x)
		if rerr == nil {
			id, err := runtimeIDFromResponse(data)
			if err != nil {
				return "", &RegistrationError{Op: OpAgentRegistration, Attempts: n, Err: err}
			}
			return id, nil
		}
		rerr.Attempts = n
		if n >= attempts || !rerr.Temporary() {
			return "", rerr
		}
		if stop := c.waitToRetry(ctx, n, rerr); stop != nil {
			return "", stop
		}
	}
}

// retrySummary names the failure that led to a retry without repeating the
// error prefix or the body.
func retrySummary(e *RegistrationError) string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("last attempt got status %d", e.StatusCode)
	}
	return "last attempt failed"
}

// runtimeIDFromResponse reads {"agent_runtime_id": "..."}.
func runtimeIDFromResponse(data []byte) (string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return "", fmt.Errorf("%w: agent registration response is not a JSON object", ErrMalformedResponse)
	}
	id, present, err := stringMember(fields, "agent_runtime_id")
	if err != nil {
		return "", err
	}
	if !present {
		return "", ErrMissingRuntimeID
	}
	return id, nil
}

// orString returns v, or def when v is empty.
func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

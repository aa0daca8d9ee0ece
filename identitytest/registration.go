package identitytest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

// maxRegistrationBody bounds what a registration route reads.
const maxRegistrationBody = 64 << 10

// maxExternalTaskRef is the client's thread-key limit; the server enforces
// it so that a client that forgets to validate is caught.
const maxExternalTaskRef = 512

// readJSONObject reads a registration body and splits its members. It
// returns a reason when the body is too large or not exactly one JSON
// object.
func readJSONObject(r *http.Request) (map[string]json.RawMessage, string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRegistrationBody+1))
	if err != nil {
		return nil, "malformed_body"
	}
	if len(body) > maxRegistrationBody {
		return nil, "body_too_large"
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, "malformed_body"
	}
	return obj, ""
}

// jsonString decodes raw as a JSON string; null and other types fail.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// routing reads the routing headers, rejecting a FedRAMP header whose value
// is anything but the single value "true".
func routing(h http.Header) (accountID string, fedramp bool, reason string) {
	accountID = h.Get(headers.ChatGPTAccountID)
	switch v := h.Values(headers.OpenAIFedRAMP); {
	case len(v) == 0:
	case len(v) == 1 && v[0] == headers.FedRAMPValue:
		fedramp = true
	default:
		return "", false, "malformed_fedramp_header"
	}
	return accountID, fedramp, ""
}

// bearerToken returns the token of the request's single "Bearer" header,
// or a rejection reason.
func bearerToken(h http.Header) (string, string) {
	vals := h.Values(headers.Authorization)
	switch {
	case len(vals) == 0:
		return "", "missing_authorization"
	case len(vals) > 1:
		return "", "malformed_authorization"
	}
	tok, ok := strings.CutPrefix(vals[0], headers.SchemeBearer+" ")
	if !ok {
		return "", "unsupported_scheme"
	}
	if tok == "" {
		return "", "unknown_bearer"
	}
	return tok, ""
}

type agentRegisterResponse struct {
	AgentRuntimeID string `json:"agent_runtime_id"`
}

// serveAgentRegister implements POST /v1/agent/register.
func (s *Server) serveAgentRegister(w http.ResponseWriter, r *http.Request) {
	const route = RouteAgentRegister
	tok, reason := bearerToken(r.Header)
	if reason == "" && !s.acceptAny && !s.knownAccessToken(tok) {
		reason = "unknown_bearer"
	}
	if reason != "" {
		s.reject(w, r, route, http.StatusUnauthorized, reason)
		return
	}
	accountID, fedramp, reason := routing(r.Header)
	if reason != "" {
		s.reject(w, r, route, http.StatusBadRequest, reason)
		return
	}
	// The runtime belongs to the account of the token that registered it.
	// The ChatGPT-Account-ID header (which current Codex no longer sends
	// here) is only a fallback for a configured token whose account the
	// server was not told, so older clients keep working.
	if acct, ok := s.tokenAccountID(tok); ok {
		accountID = acct
	}
	obj, reason := readJSONObject(r)
	if reason != "" {
		s.reject(w, r, route, http.StatusBadRequest, reason)
		return
	}
	rt := Runtime{AccountID: accountID, FedRAMP: fedramp}
	for name, raw := range obj {
		var ok bool
		switch name {
		case "agent_public_key":
			rt.PublicKeySSH, ok = jsonString(raw)
		case "capabilities":
			ok = len(raw) > 0 && raw[0] == '[' && json.Unmarshal(raw, &rt.Capabilities) == nil
		case "abom":
			ok = parseABOM(raw, &rt)
		case "ttl":
			var n *float64
			ok = json.Unmarshal(raw, &n) == nil
		default:
			s.reject(w, r, route, http.StatusBadRequest, "unknown_field")
			return
		}
		if !ok {
			s.reject(w, r, route, http.StatusBadRequest, "malformed_"+name)
			return
		}
	}
	for _, required := range []string{"abom", "agent_public_key", "capabilities"} {
		if _, ok := obj[required]; !ok {
			s.reject(w, r, route, http.StatusBadRequest, "missing_"+required)
			return
		}
	}
	pub, err := identity.ParseSSHPublicKey(rt.PublicKeySSH)
	if err != nil {
		s.reject(w, r, route, http.StatusBadRequest, "invalid_public_key")
		return
	}

	id, ok := s.addRegistration(w, r, route, "rt-", func(id string) bool { return s.runtimes[id] != nil }, func(id string) {
		rt.RuntimeID = id
		s.addRuntimeLocked(&runtimeEntry{info: rt, pub: pub})
		s.stats.AgentRegistrations++
	})
	if !ok {
		return
	}
	s.log.Debug("identitytest: agent registered", "agent_runtime_id", id, "account_id", accountID, "fedramp", fedramp)
	writeJSON(w, http.StatusOK, agentRegisterResponse{AgentRuntimeID: id})
}

// parseABOM requires an object whose three members are strings, and
// stores them in dst.
func parseABOM(raw json.RawMessage, dst *Runtime) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return false
	}
	fields := map[string]*string{
		"agent_version":    &dst.AgentVersion,
		"agent_harness_id": &dst.AgentHarnessID,
		"running_location": &dst.RunningLocation,
	}
	if len(obj) != len(fields) {
		return false
	}
	for name, p := range fields {
		v, ok := jsonString(obj[name])
		if !ok {
			return false
		}
		*p = v
	}
	return true
}

type taskRegisterResponse struct {
	TaskID          string `json:"task_id,omitempty"`
	EncryptedTaskID string `json:"encrypted_task_id,omitempty"`
}

// serveTaskRegister implements POST /v1/agent/{rid}/task/register.
// Unknown runtime: 404. A body that is not one JSON object with
// string members timestamp and signature and optionally a non-empty
// string external_task_ref (unknown members included): 400. A request that
// carries Authorization: 400, since the signature is the only proof and a
// client that sends a credential here is leaking it. Missing signature
// ("unsigned"), malformed or skewed timestamp, or a signature that does not
// verify with the runtime's key: 401.
func (s *Server) serveTaskRegister(w http.ResponseWriter, r *http.Request, rid string) {
	const route = RouteTaskRegister
	s.mu.Lock()
	rt := s.runtimes[rid]
	s.mu.Unlock()
	if rt == nil {
		s.reject(w, r, route, http.StatusNotFound, "unknown_runtime")
		return
	}
	if len(r.Header.Values(headers.Authorization)) > 0 {
		s.reject(w, r, route, http.StatusBadRequest, "authorization_not_allowed")
		return
	}
	obj, reason := readJSONObject(r)
	if reason != "" {
		s.reject(w, r, route, http.StatusBadRequest, reason)
		return
	}
	var timestamp, signature, ref string
	_, hasRef := obj["external_task_ref"]
	for name, raw := range obj {
		var ok bool
		switch name {
		case "timestamp":
			timestamp, ok = jsonString(raw)
		case "signature":
			signature, ok = jsonString(raw)
		case "external_task_ref":
			ref, ok = jsonString(raw)
			ok = ok && validExternalRef(ref)
		default:
			s.reject(w, r, route, http.StatusBadRequest, "unknown_field")
			return
		}
		if !ok {
			s.reject(w, r, route, http.StatusBadRequest, "malformed_"+name)
			return
		}
	}
	if signature == "" {
		s.reject(w, r, route, http.StatusUnauthorized, "unsigned")
		return
	}
	ts, err := identity.ParseTimestamp(timestamp)
	if err != nil {
		s.reject(w, r, route, http.StatusUnauthorized, "malformed_timestamp")
		return
	}
	if err := identity.VerifyRegistrationSignature(rt.pub, rid, timestamp, signature); err != nil {
		s.reject(w, r, route, http.StatusUnauthorized, "bad_signature")
		return
	}
	if !s.withinSkew(ts) {
		s.reject(w, r, route, http.StatusUnauthorized, "timestamp_skew")
		return
	}

	id, ok := s.addRegistration(w, r, route, "task-", func(id string) bool { return s.tasks[id] != nil }, func(id string) {
		s.tasks[id] = &Task{TaskID: id, RuntimeID: rid, ExternalTaskRef: ref}
		s.tkOrder = append(s.tkOrder, id)
		s.stats.TaskRegistrations++
		s.stats.RegistrationsByRuntime[rid]++
		if hasRef {
			s.stats.ThreadTaskRegistrations++
			s.stats.RegistrationsByExternalRef[ref]++
		} else {
			s.stats.ProcessTaskRegistrations++
		}
	})
	if !ok {
		return
	}
	s.log.Debug("identitytest: task registered", "agent_runtime_id", rid, "task_id", id, "thread", hasRef)

	resp := taskRegisterResponse{TaskID: id}
	if s.encrypt {
		sealed, err := identity.SealTaskID(rt.pub, id, s.rand)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal"})
			return
		}
		resp = taskRegisterResponse{EncryptedTaskID: sealed}
	}
	writeJSON(w, http.StatusOK, resp)
}

// validExternalRef applies the client's thread-key rules: non-empty,
// valid UTF-8, no control characters, at most 512 bytes.
func validExternalRef(ref string) bool {
	if ref == "" || len(ref) > maxExternalTaskRef || !utf8.ValidString(ref) {
		return false
	}
	for _, c := range ref {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return false
		}
	}
	return true
}

// addRegistration stores one new runtime or task under s.mu: past
// MaxRegistrations it answers 429 "capacity", otherwise it picks a fresh id
// with prefix and hands it to store. When it reports false it has already
// answered the request.
func (s *Server) addRegistration(w http.ResponseWriter, r *http.Request, route Route, prefix string,
	taken func(string) bool, store func(id string)) (string, bool) {
	s.mu.Lock()
	if s.fullLocked() {
		s.mu.Unlock()
		s.reject(w, r, route, http.StatusTooManyRequests, "capacity")
		return "", false
	}
	id, err := s.newID(prefix, taken)
	if err == nil {
		store(id)
	}
	s.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal"})
		return "", false
	}
	return id, true
}

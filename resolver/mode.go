package resolver

import "github.com/agentauth/agentauth/credentials"

// Mode is how a request is authenticated.
type Mode uint8

// The modes a request can be sent in, by credential kind, flag and thread.
const (
	// ModePassThrough sends the request unchanged: no credential, or an
	// origin outside the first-party allow-list.
	ModePassThrough Mode = iota
	// ModeAPIKey sends "Authorization: Bearer <api key>" and no routing headers.
	ModeAPIKey
	// ModeBearer sends the ChatGPT access token as Bearer plus routing headers.
	ModeBearer
	// ModeThreadTask sends an AgentAssertion on the thread's task plus routing.
	ModeThreadTask
	// ModeProcessTask sends an AgentAssertion on the process task plus routing.
	ModeProcessTask

	numModes
)

// NumModes is the number of modes, for callers that keep per-mode arrays.
const NumModes = int(numModes)

// String returns the mode's name as it appears in stats and logs.
func (m Mode) String() string {
	switch m {
	case ModePassThrough:
		return "pass-through"
	case ModeAPIKey:
		return "api-key"
	case ModeBearer:
		return "bearer"
	case ModeThreadTask:
		return "thread-task"
	case ModeProcessTask:
		return "process-task"
	}
	return "unknown"
}

// IsAssertion reports whether the mode signs with an AgentAssertion.
func (m Mode) IsAssertion() bool { return m == ModeThreadTask || m == ModeProcessTask }

// Input is everything the decision depends on.
type Input struct {
	Kind       credentials.Kind
	FlagOn     bool // use_agent_identity
	HasThread  bool // the request context carries a thread key
	FirstParty bool // the request's origin is in the allow-list
	// BearerFallback is set while agent provisioning for a ChatGPT login is
	// unavailable and the cooldown keeps that login on Bearer.
	BearerFallback bool
}

// Decide returns the mode for in: pass-through off the allow-list; an API
// key as itself; a ChatGPT login as Bearer unless the flag is on and no
// fallback is in force; an agent identity (or an opted-in login) on the
// thread task with a thread key, else on the process task.
func Decide(in Input) Mode {
	if !in.FirstParty {
		return ModePassThrough
	}
	switch in.Kind {
	case credentials.KindAPIKey:
		return ModeAPIKey
	case credentials.KindChatGPT:
		if !in.FlagOn || in.BearerFallback {
			return ModeBearer
		}
	case credentials.KindAgentIdentity:
	default:
		return ModePassThrough
	}
	if in.HasThread {
		return ModeThreadTask
	}
	return ModeProcessTask
}

package resolver

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

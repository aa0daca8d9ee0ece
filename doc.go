// Package agentauth is the home of a Go library that authenticates
// outgoing calls to the ChatGPT / Codex backend the way the Codex CLI does.
// The library's one entry point is package transport
// (github.com/agentauth/agentauth/transport): transport.NewClient and
// transport.New build the client or RoundTripper, transport.WithThread tags
// a request with its conversation thread. This package holds no code; the
// rest of the module is single-purpose packages (resolver, featureflag,
// processtask, login, pool, usage, identitytest) and the agentauth command.
package agentauth

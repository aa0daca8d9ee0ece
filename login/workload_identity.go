package login

import (
	"errors"

	"github.com/agentauth/agentauth/internal/federation"
	"github.com/agentauth/agentauth/transport"
)

// WorkloadIdentity returns a token source that exchanges the platform
// OIDC token in the file OPENAI_IDENTITY_TOKEN_FILE names (an absolute
// path, re-read for every exchange because platforms rotate it) with the
// federation rule OPENAI_FEDERATION_RULE_ID for a ChatGPT access token,
// with Codex's JWT-bearer grant at {issuer}/oauth/token
// (CODEX_WIF_TOKEN_URL_OVERRIDE, a loopback URL, wins). Either variable
// selects workload identity, as in Codex, and then both are required: a
// partial configuration is an error, never a fall back to another
// credential. With neither set it returns [ErrNoWorkloadIdentity].
//
// The source keeps the token in memory only. It re-exchanges ahead of
// expiry (2 minutes, or half the lifetime if shorter, before it), one
// exchange at a time however many callers ask (single flight), keeps
// serving the current token when a refresh-ahead exchange fails until 30
// seconds (or a quarter of the lifetime) before expiry, and refuses an
// answer that maps to another principal than the first one did. Its
// Refresh method (see [transport.TokenSource]) forces a new exchange for a
// rejected token.
func WorkloadIdentity(opts Options) (transport.TokenSource, error) {
	r, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	src, err := federation.New(federation.Config{Issuer: r.issuer, Getenv: r.getenv, Client: r.client})
	if errors.Is(err, federation.ErrNotConfigured) {
		return nil, ErrNoWorkloadIdentity
	}
	if err != nil {
		return nil, err
	}
	return src, nil
}

package transport

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

// tokenPath is where a server named by Options.BaseURL exchanges refresh
// tokens, as the reference server (identitytest.TokenPath) and the Codex
// token endpoint (https://auth.openai.com/oauth/token) do.
const tokenPath = "/oauth/token"

// pointAtBaseURL points cfg and the environment at the one server of
// Options.BaseURL: the ChatGPT and AuthAPI bases, the plain-http opt-in for
// a loopback base, and an environment in which the token endpoint and the
// AuthAPI and JWKS overrides name that server whatever getenv says.
// The errors name the scheme and host only: a URL may carry credentials.
func pointAtBaseURL(raw string, cfg *config, getenv func(string) string) (func(string) string, error) {
	base := strings.TrimRight(strings.TrimSpace(raw), "/")
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("%w: want an absolute http or https URL", errInvalidBaseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %s://%s: a base URL has no userinfo, query or fragment", errInvalidBaseURL, u.Scheme, u.Host)
	}
	if u.Scheme == "http" && !identity.IsLoopbackBase(base) {
		return nil, fmt.Errorf("%w: http://%s is plain http on a host that is not loopback; use https", errInvalidBaseURL, u.Host)
	}
	if cfg.ChatGPTBaseURL != "" || cfg.AuthAPIBaseURL != "" {
		return nil, fmt.Errorf("%w: set either Options.BaseURL or Tuning.ChatGPTBaseURL and AuthAPIBaseURL, not both", errInvalidBaseURL)
	}
	cfg.ChatGPTBaseURL, cfg.AuthAPIBaseURL = base, base
	if u.Scheme == "http" {
		cfg.AllowInsecureHTTP = true
	}
	tokenURL := base + tokenPath
	return func(k string) string {
		switch k {
		case credentials.EnvRefreshTokenURL:
			return tokenURL
		case identity.EnvCodexAuthAPIBase, identity.EnvAuthAPIBase, identity.EnvJWKSBase:
			return base
		}
		return getenv(k)
	}, nil
}

// errInvalidBaseURL is ErrInvalidOptions, named in the message.
var errInvalidBaseURL = fmt.Errorf("%w: Options.BaseURL", ErrInvalidOptions)

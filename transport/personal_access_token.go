package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/useragent"
)

// hydratePersonalAccessToken asks the AuthAPI which ChatGPT account the
// personal access token creds holds acts for, as Codex does when it loads
// one, and returns the credential it is then sent as: a ChatGPT login
// (Bearer with that account's routing headers) that is never refreshed and
// never provisions an agent identity, since Codex provisions only from a
// login it refreshes itself. The AuthAPI is cfg.AuthAPIBaseURL, else env
// CODEX_AUTHAPI_BASE_URL (the lookup base only, as in Codex), else the
// base that belongs to cfg.ChatGPTBaseURL (https://auth.openai.com/api/accounts
// for the default ChatGPT backend).
func hydratePersonalAccessToken(ctx context.Context, cfg config, client *http.Client, creds *credentials.Credentials) (*credentials.Credentials, error) {
	if cfg.TokenSource != nil {
		return nil, errors.New("transport: a TokenSource is set, but the credential is a personal access token, which has no token source")
	}
	base := strings.TrimRight(strings.TrimSpace(cfg.AuthAPIBaseURL), "/")
	if base == "" {
		base = identity.PersonalAccessTokenAuthAPIBase(cfg.hooks.Getenv, cfg.ChatGPTBaseURL)
	}
	getenv := cfg.hooks.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	ctx = useragent.WithOriginator(ctx, useragent.Originator(cfg.Originator, getenv))
	md, err := credentials.HydratePersonalAccessToken(ctx, client, base, creds.APIKey)
	if err != nil {
		return nil, fmt.Errorf("transport: the personal access token of %s: %w", creds.Source, err)
	}
	return credentials.PersonalAccessTokenLogin(creds.APIKey, *md, creds.Source), nil
}

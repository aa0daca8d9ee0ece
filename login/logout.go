package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/jwtclaims"
)

// Logout ends the ChatGPT login in auth.json as Codex does: it revokes the
// login's refresh token at the issuer (its access token when there is no
// refresh token), then removes the login (auth_mode, tokens, last_refresh,
// the API key the login obtained and an agent identity record provisioned
// from it) from auth.json under agentauth's own lock, keeping every
// other member; a file left with nothing in it is removed. A revoke that
// fails does not stop the local logout: the login is removed and the error
// wraps [ErrRevokeFailed]. A file without a ChatGPT login gives
// [ErrNotLoggedIn] and is not changed. When another login replaced the
// one read while its token was being revoked, that new login is kept and
// the error is [ErrLoginReplaced].
func Logout(ctx context.Context, opts Options) error {
	r, err := opts.resolve()
	if err != nil {
		return err
	}
	store := credentials.NewFileStore(r.authFile())
	af, err := store.Load()
	if err != nil {
		return err
	}
	if !hasLogin(af) {
		return ErrNotLoggedIn
	}
	var revokeErr error
	if tok, hint := revocable(af); tok != "" {
		revokeErr = r.revoke(ctx, tok, hint, af.Tokens.IDToken)
	}
	read := *af.Tokens
	removed, replaced := false, false
	err = store.Update(ctx, func(af *credentials.AuthFile) error {
		removed, replaced = false, false // the update may be redone
		if !hasLogin(af) {
			return nil
		}
		if af.Tokens.RefreshToken != read.RefreshToken || af.Tokens.AccessToken != read.AccessToken {
			replaced = true // another login was written meanwhile: it was not revoked, keep it
			return nil
		}
		removed = true
		if af.AuthMode == credentials.AuthModeChatGPT {
			af.OpenAIAPIKey = nil
		}
		if af.AuthMode == credentials.AuthModeChatGPT || af.AuthMode == credentials.AuthModeChatGPTAuthTokens {
			af.AuthMode = ""
		}
		af.Tokens = nil
		af.LastRefresh = nil
		af.AgentIdentityRecord = nil
		af.AgentIdentityTaskID = ""
		return nil
	})
	if err != nil {
		return fmt.Errorf("login: removing the login from %s: %w", r.authFile(), err)
	}
	if removed {
		if _, err := store.RemoveIfEmpty(ctx); err != nil {
			return err
		}
	}
	if replaced {
		if revokeErr != nil {
			return fmt.Errorf("%w; revoking the previous one also failed: %w", ErrLoginReplaced, revokeErr)
		}
		return ErrLoginReplaced
	}
	if revokeErr != nil {
		return fmt.Errorf("%w (logged out locally): %w", ErrRevokeFailed, revokeErr)
	}
	return nil
}

// hasLogin reports whether af holds a ChatGPT login.
func hasLogin(af *credentials.AuthFile) bool {
	return af != nil && af.Tokens != nil
}

// revocable returns the token Codex revokes for a login, and its
// token_type_hint: the refresh token, else the access token, of a login
// Codex manages (auth_mode "chatgpt", or no auth_mode and no API key).
func revocable(af *credentials.AuthFile) (token, hint string) {
	if af == nil || af.Tokens == nil {
		return "", ""
	}
	switch af.AuthMode {
	case credentials.AuthModeChatGPT:
	case "":
		if af.OpenAIAPIKey != nil {
			return "", ""
		}
	default:
		return "", ""
	}
	if af.Tokens.RefreshToken != "" {
		return af.Tokens.RefreshToken, "refresh_token"
	}
	if af.Tokens.AccessToken != "" {
		return af.Tokens.AccessToken, "access_token"
	}
	return "", ""
}

// revoke posts {"token", "token_type_hint", "client_id" (refresh tokens
// only)} as JSON to the revoke endpoint of the login whose id token is
// idToken, with a 10 s bound, as Codex does.
func (r *resolved) revoke(ctx context.Context, token, hint, idToken string) error {
	body := map[string]string{"token": token, "token_type_hint": hint}
	if hint == "refresh_token" {
		body["client_id"] = r.clientID
	}
	endpoint, err := r.revokeURLFor(idToken)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, revokeTimeout)
	defer cancel()
	// Codex revokes with its default client, which sends the originator.
	status, resp, err := r.postJSON(ctx, endpoint, body, "originator", r.originator())
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("login: revoking the %s: no answer within %s", hintLabel(hint), revokeTimeout)
		}
		return fmt.Errorf("login: revoking the %s: %w", hintLabel(hint), err)
	}
	if status/100 != 2 {
		return fmt.Errorf("login: revoking the %s: HTTP %d: %s", hintLabel(hint), status, errorDetail(resp))
	}
	return nil
}

func hintLabel(hint string) string {
	if hint == "refresh_token" {
		return "refresh token"
	}
	return "access token"
}

// revokeURL is CODEX_REVOKE_TOKEN_URL_OVERRIDE, else the refresh override
// with its path replaced by /oauth/revoke, else {issuer}/oauth/revoke when
// the issuer was overridden, else Codex's default.
func (r *resolved) revokeURL() (string, error) {
	if v := r.getenv(envRevokeURL); v != "" {
		if err := checkEndpoint(v); err != nil {
			return "", fmt.Errorf("login: %s: %w", envRevokeURL, err)
		}
		return v, nil
	}
	if v := r.getenv(envRefreshURL); v != "" {
		if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Host != "" {
			u.Path, u.RawPath, u.RawQuery, u.Fragment = "/oauth/revoke", "", "", ""
			return u.String(), nil
		}
	}
	if r.issuer != defaultIssuer {
		return r.issuer + "/oauth/revoke", nil
	}
	return defaultRevokeURL, nil
}

// revokeURLFor is revokeURL for the login whose id token is idToken, except
// that an endpoint derived from an overridden issuer is used only for a
// token that issuer issued: a login whose id token names another issuer
// (its iss claim) is revoked where Codex revokes it, Codex's default
// endpoint, so an --experimental_issuer never receives another issuer's
// refresh token. An id token without iss keeps the issuer's endpoint.
func (r *resolved) revokeURLFor(idToken string) (string, error) {
	if r.issuer != defaultIssuer && r.getenv(envRevokeURL) == "" && r.getenv(envRefreshURL) == "" {
		if iss := jwtIssuer(idToken); iss != "" && strings.TrimRight(iss, "/") != r.issuer {
			return defaultRevokeURL, nil
		}
	}
	return r.revokeURL()
}

// jwtIssuer is the iss claim of a JWT, unverified, or "".
func jwtIssuer(jwt string) string {
	payload, err := jwtclaims.Payload(jwt)
	if err != nil {
		return ""
	}
	var v struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &v) != nil {
		return ""
	}
	return v.Iss
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return errors.New("not an absolute http(s) URL without credentials")
	}
	return nil
}

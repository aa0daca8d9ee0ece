package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/agentauth/agentauth/internal/oauthwire"
)

// checkBaseURL accepts an absolute http(s) URL without user info, query or
// fragment.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("login: the issuer must be an absolute http(s) URL without credentials, query or fragment")
	}
	return nil
}

// tokens is what the token endpoint answers an authorization-code grant.
type tokens struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// post posts body with extra header name/value pairs and returns the
// status and up to maxResponseBytes of the answer.
func (r *resolved) post(ctx context.Context, endpoint, contentType string, body []byte, hdr ...string) (int, []byte, error) {
	return oauthwire.Post(ctx, r.client, endpoint, contentType, body, hdr...)
}

func (r *resolved) postJSON(ctx context.Context, endpoint string, v any, hdr ...string) (int, []byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	return r.post(ctx, endpoint, "application/json", body, hdr...)
}

func (r *resolved) postForm(ctx context.Context, endpoint string, form url.Values) (int, []byte, error) {
	return oauthwire.PostForm(ctx, r.client, endpoint, form)
}

// exchangeCode trades an authorization code and its PKCE verifier for
// tokens at {issuer}/oauth/token, as Codex does for both flows.
func (r *resolved) exchangeCode(ctx context.Context, code, verifier, redirectURI string) (*tokens, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"client_id":     {r.clientID},
		"code_verifier": {verifier},
	}
	status, body, err := r.postForm(ctx, r.issuer+"/oauth/token", form)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("login: the token endpoint answered HTTP %d: %s", status, errorDetail(body))
	}
	t, err := parseTokens(body)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// parseTokens decodes a token answer; every token must be non-empty.
func parseTokens(body []byte) (*tokens, error) {
	var t tokens
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, errors.New("login: the token endpoint's answer is not a JSON token object")
	}
	switch {
	case t.IDToken == "":
		return nil, errors.New("login: the token endpoint's answer has no id_token")
	case t.AccessToken == "":
		return nil, errors.New("login: the token endpoint's answer has no access_token")
	case t.RefreshToken == "":
		return nil, errors.New("login: the token endpoint's answer has no refresh_token")
	}
	for _, s := range []string{t.IDToken, t.AccessToken, t.RefreshToken} {
		if !printableToken(s) {
			return nil, errors.New("login: the token endpoint answered a token with spaces or control characters")
		}
	}
	return &t, nil
}

// obtainAPIKey exchanges the id token for an API key, as Codex does after a
// browser login; failure is not an error of the login.
func (r *resolved) obtainAPIKey(ctx context.Context, idToken string) (string, bool) {
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"client_id":          {r.clientID},
		"requested_token":    {"openai-api-key"},
		"subject_token":      {idToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
	}
	status, body, err := r.postForm(ctx, r.issuer+"/oauth/token", form)
	if err != nil || status/100 != 2 {
		return "", false
	}
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &v) != nil || v.AccessToken == "" || !printableToken(v.AccessToken) {
		return "", false
	}
	return v.AccessToken, true
}

// The checks the flows share with workload identity federation.
var (
	printableToken = oauthwire.PrintableToken
	errorDetail    = oauthwire.ErrorDetail
	safeText       = oauthwire.SafeText
	authClaims     = oauthwire.AuthClaims
)

// errorCode is the "error" string (or error.code) of an OAuth error body.
func errorCode(body []byte) string {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(v.Error, &s) == nil {
		return s
	}
	var o struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(v.Error, &o)
	return o.Code
}

// claimString is a string member of claims, or "".
func claimString(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

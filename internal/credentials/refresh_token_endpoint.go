package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/useragent"
)

// The ChatGPT token endpoint, as the Codex CLI uses it.
const (
	// DefaultTokenURL is where a ChatGPT refresh token is exchanged.
	DefaultTokenURL = "https://auth.openai.com/oauth/token"
	// DefaultClientID is the OAuth client id of the Codex CLI.
	DefaultClientID = "app_EMoamEEZ73f0CkXaXp7hrann"
	// EnvRefreshTokenURL overrides DefaultTokenURL.
	EnvRefreshTokenURL = "CODEX_REFRESH_TOKEN_URL_OVERRIDE"
	// EnvClientID overrides DefaultClientID.
	EnvClientID = "CODEX_APP_SERVER_LOGIN_CLIENT_ID"
)

// maxTokenResponse bounds how much of a token endpoint response is read.
const maxTokenResponse = 1 << 20

// ErrInsecureTokenURL is returned by [NewRefreshingTokenSource] when the
// token endpoint URL is not https (plain http is accepted only on a
// loopback host, for a local test server): the refresh request carries
// the login's refresh token, which must never cross a network in clear.
var ErrInsecureTokenURL = errors.New("credentials: the token endpoint must be an https URL (plain http only on a loopback host)")

// checkTokenURL accepts an absolute https URL, or http on a loopback host.
// The error names the scheme and host only: a URL may carry credentials.
func checkTokenURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: the token endpoint URL (RefreshOptions.TokenURL or %s) is not an absolute http(s) URL", ErrInsecureTokenURL, EnvRefreshTokenURL)
	}
	if u.Scheme == "http" && !identity.IsLoopbackBase("http://"+u.Host) {
		return fmt.Errorf("%w: the token endpoint http://%s is plain http on a non-loopback host and would receive the refresh token in clear", ErrInsecureTokenURL, u.Host)
	}
	return nil
}

// withoutRedirects returns a copy of c (nil: a default client) that hands
// a redirect back as the response instead of following it.
func withoutRedirects(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

type tokenResponse struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`

	sent     time.Time // local clock when the request went out
	received time.Time // local clock when the answer came
	date     time.Time // its Date header; zero when absent or unreadable
}

// exchange sends one refresh request.
func (s *RefreshingTokenSource) exchange(ctx context.Context, refreshToken string) (*tokenResponse, error) {
	body, _ := json.Marshal(struct {
		ClientID     string `json:"client_id"`
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
	}{s.clientID, "refresh_token", refreshToken})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, &RefreshError{Err: errors.New("invalid token endpoint URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	useragent.Set(req.Header, useragent.Originator(useragent.FromContext(ctx), os.Getenv))
	s.requests.Add(1)
	sent := s.now()
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, &RefreshError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		// Never followed (see RefreshOptions.HTTPClient): the refresh
		// token stays with the configured endpoint.
		return nil, &RefreshError{Status: resp.StatusCode, Err: errors.New("the token endpoint answered with a redirect, which is not followed")}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, &RefreshError{Status: resp.StatusCode, Err: errors.New("reading the token response failed")}
	}
	if resp.StatusCode/100 == 2 {
		var tr tokenResponse
		if err := json.Unmarshal(data, &tr); err != nil {
			return nil, &RefreshError{Status: resp.StatusCode, Err: errors.New("the token response is not valid JSON")}
		}
		if tr.RefreshToken != "" && tr.RefreshToken != refreshToken {
			// Rotated: the one sent is spent and is never sent again.
			s.spent.add(refreshToken)
		}
		tr.sent, tr.received = sent, s.now()
		if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			tr.date = d
		}
		return &tr, nil
	}
	code := strings.ToLower(refreshErrorCode(data))
	e := &RefreshError{Status: resp.StatusCode, Reason: safeCode(code)}
	switch {
	case permanentRefreshCodes[code]:
		e.Permanent = true
	case resp.StatusCode == http.StatusBadRequest && code == ReasonInvalidGrant:
		e.Permanent = true
	case resp.StatusCode == http.StatusUnauthorized:
		e.Permanent = true
		if e.Reason == "" {
			e.Reason = ReasonUnauthorized
		}
	}
	return nil, e
}

// permanentRefreshCodes are the token endpoint error codes after which no
// refresh can succeed, whatever the status: the user must log in again.
var permanentRefreshCodes = map[string]bool{
	ReasonRefreshTokenExpired:     true,
	ReasonRefreshTokenReused:      true,
	ReasonRefreshTokenInvalidated: true,
	ReasonAppSessionTerminated:    true,
	ReasonInvalidRefreshToken:     true,
}

// refreshErrorCode finds the error code of a token endpoint error body:
// error.code, a string error, or a top-level code.
func refreshErrorCode(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if raw, ok := m["error"]; ok {
		var obj struct {
			Code *string `json:"code"`
		}
		var str string
		switch {
		case json.Unmarshal(raw, &str) == nil:
			return str
		case json.Unmarshal(raw, &obj) == nil && obj.Code != nil:
			return *obj.Code
		}
	}
	var code string
	if raw, ok := m["code"]; ok && json.Unmarshal(raw, &code) == nil {
		return code
	}
	return ""
}

// safeCode keeps an error code only when it looks like one: at most 64
// lower-case letters and underscores ("invalid_grant", "server_error").
// Anything else yields "": a server that echoes the request could put a
// token there, and tokens carry digits or other characters.
func safeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	for _, r := range code {
		if (r < 'a' || r > 'z') && r != '_' {
			return ""
		}
	}
	return code
}

package login

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/agentauth/agentauth/internal/jwtclaims"
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("login: building the request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, fmt.Errorf("login: %s: %w", redactURL(endpoint), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("login: reading the answer of %s: %w", redactURL(endpoint), err)
	}
	if len(data) > maxResponseBytes {
		return 0, nil, fmt.Errorf("login: the answer of %s is larger than %d bytes", redactURL(endpoint), maxResponseBytes)
	}
	return resp.StatusCode, data, nil
}

func (r *resolved) postJSON(ctx context.Context, endpoint string, v any, hdr ...string) (int, []byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	return r.post(ctx, endpoint, "application/json", body, hdr...)
}

func (r *resolved) postForm(ctx context.Context, endpoint string, form url.Values) (int, []byte, error) {
	return r.post(ctx, endpoint, "application/x-www-form-urlencoded", []byte(form.Encode()))
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL keeps the scheme, host and path of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<invalid URL>"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
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

// printableToken reports whether s can go into an HTTP header.
func printableToken(s string) bool {
	for _, c := range s {
		if c <= ' ' || c == 0x7f || c > unicode.MaxASCII {
			return false
		}
	}
	return s != ""
}

// errorDetail extracts a short, safe description from an OAuth error body:
// "error" (a string or {"code","message"}) and "error_description". Free
// text that is not JSON is not repeated (it could echo a secret).
func errorDetail(body []byte) string {
	var v struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "unknown error"
	}
	var code, msg string
	var s string
	if json.Unmarshal(v.Error, &s) == nil {
		code = s
	} else {
		var o struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(v.Error, &o) == nil {
			code, msg = o.Code, o.Message
		}
	}
	if v.ErrorDescription != "" {
		msg = v.ErrorDescription
	}
	parts := []string{}
	if c := safeText(code); c != "" {
		parts = append(parts, c)
	}
	if m := safeText(msg); m != "" {
		parts = append(parts, m)
	}
	if len(parts) == 0 {
		return "unknown error"
	}
	return strings.Join(parts, ": ")
}

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

// safeText bounds server text quoted in an error to one printable line
// and drops anything that looks like a token (a long word without spaces).
func safeText(s string) string {
	var b strings.Builder
	for _, w := range strings.Fields(s) {
		if len(w) > 40 {
			w = "[REDACTED]"
		}
		clean := strings.Map(func(r rune) rune {
			if unicode.IsPrint(r) {
				return r
			}
			return -1
		}, w)
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(clean)
		if b.Len() > maxErrorTextBytes {
			return b.String()[:maxErrorTextBytes] + "..."
		}
	}
	return b.String()
}

// authClaims returns the "https://api.openai.com/auth" claim object of a
// JWT, unverified (Codex reads it the same way), or nil.
func authClaims(jwt string) map[string]any {
	payload, err := jwtclaims.Payload(jwt)
	if err != nil {
		return nil
	}
	var v map[string]json.RawMessage
	if json.Unmarshal(payload, &v) != nil {
		return nil
	}
	var auth map[string]any
	if json.Unmarshal(v["https://api.openai.com/auth"], &auth) != nil {
		return nil
	}
	return auth
}

// claimString is a string member of claims, or "".
func claimString(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

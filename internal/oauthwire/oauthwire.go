// Package oauthwire holds the OAuth endpoint call and the answer checks
// that the login flows and workload identity federation share: one POST
// with a bounded answer, the safe detail of an OAuth error body, and the
// claim object of an id or access token.
package oauthwire

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

const (
	// MaxResponseBytes bounds an endpoint's answer.
	MaxResponseBytes = 1 << 20
	// MaxErrorTextBytes bounds server text quoted in an error.
	MaxErrorTextBytes = 200
)

// Post posts body with extra header name/value pairs through client and
// returns the status and up to MaxResponseBytes of the answer. Errors name
// the endpoint without its query.
func Post(ctx context.Context, client *http.Client, endpoint, contentType string, body []byte, hdr ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("login: building the request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, fmt.Errorf("login: %s: %w", redactURL(endpoint), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return 0, nil, fmt.Errorf("login: reading the answer of %s: %w", redactURL(endpoint), err)
	}
	if len(data) > MaxResponseBytes {
		return 0, nil, fmt.Errorf("login: the answer of %s is larger than %d bytes", redactURL(endpoint), MaxResponseBytes)
	}
	return resp.StatusCode, data, nil
}

// PostForm posts an url-encoded form.
func PostForm(ctx context.Context, client *http.Client, endpoint string, form url.Values) (int, []byte, error) {
	return Post(ctx, client, endpoint, "application/x-www-form-urlencoded", []byte(form.Encode()))
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

// PrintableToken reports whether s can go into an HTTP header.
func PrintableToken(s string) bool {
	for _, c := range s {
		if c <= ' ' || c == 0x7f || c > unicode.MaxASCII {
			return false
		}
	}
	return s != ""
}

// ErrorDetail extracts a short, safe description from an OAuth error body:
// "error" (a string or {"code","message"}) and "error_description". Free
// text that is not JSON is not repeated (it could echo a secret).
func ErrorDetail(body []byte) string {
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
	if c := SafeText(code); c != "" {
		parts = append(parts, c)
	}
	if m := SafeText(msg); m != "" {
		parts = append(parts, m)
	}
	if len(parts) == 0 {
		return "unknown error"
	}
	return strings.Join(parts, ": ")
}

// SafeText bounds server text quoted in an error to one printable line
// and drops anything that looks like a token (a long word without spaces).
func SafeText(s string) string {
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
		if b.Len() > MaxErrorTextBytes {
			return b.String()[:MaxErrorTextBytes] + "..."
		}
	}
	return b.String()
}

// AuthClaims returns the "https://api.openai.com/auth" claim object of a
// JWT, unverified (Codex reads it the same way), or nil.
func AuthClaims(jwt string) map[string]any {
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

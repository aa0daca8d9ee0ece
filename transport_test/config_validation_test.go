package transport_test

import (
	"strings"
	"testing"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// New rejects settings that could only fail later: a static ChatGPT token
// that cannot be sent, a TokenSource with a credential that ignores it, and
// a plain-http AuthAPI base on a remote host (agent registration sends the
// access token there).
func TestNewRejectsUnusableSettings(t *testing.T) {
	cases := map[string]transport.Config{
		"token with CRLF": {Credentials: chatGPTCreds("tok\r\nX-Evil: 1", "acct", false)},
		"empty token":     {Credentials: chatGPTCreds("", "acct", false)},
		"account with LF": {Credentials: chatGPTCreds("tok", "a\nb", false)},
		"TokenSource with API key": {
			Credentials: apiKeyCreds("sk-1"),
			TokenSource: credentials.StaticTokenSource(credentials.Token{AccessToken: "tok"}),
		},
		"http AuthAPI on a remote host":                   {Credentials: chatGPTCreds("tok", "acct", false), AuthAPIBaseURL: "http://auth.example.com/api/accounts"},
		"AuthAPI without scheme":                          {Credentials: chatGPTCreds("tok", "acct", false), AuthAPIBaseURL: "auth.example.com"},
		"http AuthAPI on a remote host, insecure allowed": {Credentials: chatGPTCreds("tok", "acct", false), AuthAPIBaseURL: "http://auth.internal/api", AllowInsecureHTTP: true},
	}
	for name, cfg := range cases {
		if _, err := transport.New(nil, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "tok\r\n") {
			t.Errorf("%s: error repeats the token", name)
		}
	}
	ok := map[string]transport.Config{
		"loopback http AuthAPI":          {Credentials: chatGPTCreds("tok", "acct", false), AuthAPIBaseURL: "http://127.0.0.1:9/api"},
		"TokenSource alone is a ChatGPT": {TokenSource: credentials.StaticTokenSource(credentials.Token{AccessToken: "tok"})},
	}
	for name, cfg := range ok {
		if _, err := transport.New(nil, cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

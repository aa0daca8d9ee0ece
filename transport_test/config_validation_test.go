package transport_test

import (
	"strings"
	"testing"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// New rejects settings that could only fail later: a static ChatGPT token
// that cannot be sent and a plain-http AuthAPI base on a remote host (agent
// registration sends the access token there). (A TokenSource beside an API
// key, once also rejected here, can no longer be built: a Credential is of
// one kind by construction.)
func TestNewRejectsUnusableSettings(t *testing.T) {
	type settings struct {
		cred   transport.Credential
		tuning transport.Tuning
	}
	cases := map[string]settings{
		"token with CRLF":               {cred: transport.BearerToken("tok\r\nX-Evil: 1", "acct", false)},
		"empty token":                   {cred: transport.BearerToken("", "acct", false)},
		"account with LF":               {cred: transport.BearerToken("tok", "a\nb", false)},
		"http AuthAPI on a remote host": {transport.BearerToken("tok", "acct", false), transport.Tuning{AuthAPIBaseURL: "http://auth.example.com/api/accounts"}},
		"AuthAPI without scheme":        {transport.BearerToken("tok", "acct", false), transport.Tuning{AuthAPIBaseURL: "auth.example.com"}},
		"http AuthAPI on a remote host, insecure allowed": {transport.BearerToken("tok", "acct", false), transport.Tuning{AuthAPIBaseURL: "http://auth.internal/api", AllowInsecureHTTP: true}},
	}
	build := func(s settings) error {
		_, err := tryEnv(t, envOptions{production: true, plain: true, credential: s.cred,
			options: func(o *transport.Options) { o.Tuning = s.tuning }})
		return err
	}
	for name, s := range cases {
		if err := build(s); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "tok\r\n") {
			t.Errorf("%s: error repeats the token", name)
		}
	}
	ok := map[string]settings{
		"loopback http AuthAPI":          {transport.BearerToken("tok", "acct", false), transport.Tuning{AuthAPIBaseURL: "http://127.0.0.1:9/api"}},
		"TokenSource alone is a ChatGPT": {cred: transport.ChatGPT(credentials.StaticTokenSource(credentials.Token{AccessToken: "tok"}))},
	}
	for name, s := range ok {
		if err := build(s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

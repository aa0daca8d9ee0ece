package transport

import (
	"strings"
	"testing"

	"github.com/agentauth/agentauth/internal/credentials"
)

// TestPlainHTTPOnlyOnLoopback: AllowInsecureHTTP admits plain-http origins
// on loopback hosts only. A plain-http origin or AuthAPI base on any other
// host is rejected by New whatever the setting, because the credential would
// cross the network in the clear; a loopback http origin still needs the
// opt-in.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	key := &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: "sk-origin-check"}
	login := &credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{AccessToken: "tok", AccountID: "acct"}}

	rejected := map[string]config{
		"remote ChatGPT base":      {Credentials: key, ChatGPTBaseURL: "http://example.com/backend-api", AllowInsecureHTTP: true},
		"remote allowed origin":    {Credentials: key, AllowedOrigins: []string{"https://chatgpt.com", "http://example.com"}, AllowInsecureHTTP: true},
		"remote extra origin":      {Credentials: key, ExtraOrigins: []string{"http://10.0.0.7:8080"}, AllowInsecureHTTP: true},
		"loopback-looking name":    {Credentials: key, ExtraOrigins: []string{"http://localhost.example.com"}, AllowInsecureHTTP: true},
		"remote AuthAPI":           {Credentials: login, AuthAPIBaseURL: "http://auth.example.com/api/accounts", AllowInsecureHTTP: true},
		"remote AuthAPI, no optin": {Credentials: login, AuthAPIBaseURL: "http://auth.example.com/api/accounts"},
	}
	for name, cfg := range rejected {
		t.Run("rejects "+name, func(t *testing.T) {
			_, err := newTransport(nil, cfg)
			if err == nil {
				t.Fatal("New accepted a plain-http URL on a non-loopback host")
			}
			if !strings.Contains(err.Error(), "non-loopback") {
				t.Errorf("error does not say why: %v", err)
			}
			if strings.Contains(err.Error(), "sk-origin-check") {
				t.Errorf("error repeats the API key: %v", err)
			}
		})
	}

	loopback := map[string]config{
		"localhost":  {Credentials: key, ChatGPTBaseURL: "http://localhost:8080/backend-api"},
		"127.0.0.1":  {Credentials: key, AllowedOrigins: []string{"http://127.0.0.1:9"}},
		"127.8.9.10": {Credentials: key, ExtraOrigins: []string{"http://127.8.9.10:9"}},
		"[::1]":      {Credentials: key, ExtraOrigins: []string{"http://[::1]:9"}},
	}
	for name, cfg := range loopback {
		t.Run("loopback "+name, func(t *testing.T) {
			if _, err := newTransport(nil, cfg); err == nil || !strings.Contains(err.Error(), "AllowInsecureHTTP") {
				t.Fatalf("New without AllowInsecureHTTP: err %v, want a request for the opt-in", err)
			}
			cfg.AllowInsecureHTTP = true
			if _, err := newTransport(nil, cfg); err != nil {
				t.Fatalf("New with AllowInsecureHTTP: %v", err)
			}
		})
	}

	// The AuthAPI base on loopback needs no opt-in: it only ever receives
	// what the loopback server is meant to see.
	if _, err := newTransport(nil, config{Credentials: login, AuthAPIBaseURL: "http://127.0.0.1:9/api/accounts"}); err != nil {
		t.Errorf("loopback http AuthAPI: %v", err)
	}
}

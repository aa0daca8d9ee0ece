package transport_test

import (
	"context"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// Each constructor of package credentials gives a credential the transport
// accepts and the reference server verifies in the mode its kind implies.
func TestStaticCredentialConstructorsReachTheServer(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{
		APIKeys:      []string{"sk-constructor"},
		AccessTokens: []string{"at-constructor"},
	})
	ident := newRuntime(t, srv, "acct-record", false)
	recordJSON, err := ident.StorageJSON()
	if err != nil {
		t.Fatal(err)
	}
	record, err := credentials.AgentIdentityRecord(recordJSON)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		creds   *credentials.Credentials
		flag    bool
		mode    string
		account string
	}{
		{"APIKey", credentials.APIKey("sk-constructor"), false, "bearer", ""},
		{"ChatGPTToken flag off", credentials.ChatGPTToken("at-constructor", "acct-token", false), false, "bearer", "acct-token"},
		{"ChatGPTToken flag on", credentials.ChatGPTToken("at-constructor", "acct-token", false), true, "assertion", "acct-token"},
		{"AgentIdentityRecord", record, false, "assertion", "acct-record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loopbackConfig(srv, tc.creds)
			cfg.Flag = featureflag.New(tc.flag)
			rt := newTransport(t, newHTTPBase(t), cfg)
			t.Cleanup(rt.CloseIdleConnections)
			echo := mustEcho(t, context.Background(), rt, srv.URL()+"/v1/responses", "thread-constructor")
			if echo.Mode != tc.mode || echo.AccountID != tc.account {
				t.Errorf("server saw mode %q account %q, want %q %q", echo.Mode, echo.AccountID, tc.mode, tc.account)
			}
		})
	}
}

package transport_test

import (
	"context"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
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
	record, err := transport.AgentIdentity(recordJSON)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		creds   transport.Credential
		flag    bool
		mode    string
		account string
	}{
		{"APIKey", transport.APIKey("sk-constructor"), false, "bearer", ""},
		{"BearerToken flag off", transport.BearerToken("at-constructor", "acct-token", false), false, "bearer", "acct-token"},
		{"BearerToken flag on", transport.BearerToken("at-constructor", "acct-token", false), true, "assertion", "acct-token"},
		{"AgentIdentity", record, false, "assertion", "acct-record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: tc.creds, flag: featureflag.New(tc.flag)}).rt
			t.Cleanup(rt.CloseIdleConnections)
			echo := mustEcho(t, context.Background(), rt, srv.URL()+"/v1/responses", "thread-constructor")
			if echo.Mode != tc.mode || echo.AccountID != tc.account {
				t.Errorf("server saw mode %q account %q, want %q %q", echo.Mode, echo.AccountID, tc.mode, tc.account)
			}
		})
	}
}

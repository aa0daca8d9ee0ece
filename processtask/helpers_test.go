package processtask_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// agentEnv is a reference server, an Agent Identity it knows and a
// transport signing with it. Every URL is on 127.0.0.1.
type agentEnv struct {
	srv  *identitytest.Server
	rt   *transport.Transport
	net  *http.Transport
	plan *http.Client // sends without the agentauth transport
}

func newAgentEnv(t *testing.T, runtimeID string) *agentEnv {
	t.Helper()
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := identity.Record{AgentRuntimeID: runtimeID, AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-pt"}
	if err := srv.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	js, err := rec.StorageJSON()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := transport.AgentIdentity(js)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := transport.New(base, transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		BaseURL:       srv.URL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &agentEnv{srv: srv, rt: rt, net: base, plan: &http.Client{Transport: base}}
}

// echo sends req and decodes the reference server's echo of what it
// verified.
func echo(t *testing.T, c *http.Client, req *http.Request) identitytest.Echo {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var e identitytest.Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

func newRequest(t *testing.T, ctx context.Context, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

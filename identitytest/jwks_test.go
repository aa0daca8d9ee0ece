package identitytest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentauth/agentauth/internal/identity"
)

func TestJWKSAndNewAgentIdentity(t *testing.T) {
	s, clock := newTestServer(t, Options{})
	c := newClient(t)

	rec, tok, err := s.NewAgentIdentity("", Login{AccountID: "acct-7", FedRAMP: true, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := s.Issuer()
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{s.URL(), s.URL() + "/backend-api", s.URL() + "/api/codex"} {
		r := do(t, c, http.MethodGet, identity.JWKSURL(base), nil, nil)
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", identity.JWKSURL(base), r.status, r.body)
		}
		keys, err := identity.ParseJWKS(r.body)
		if err != nil {
			t.Fatalf("ParseJWKS: %v", err)
		}
		if ids := keys.KeyIDs(); len(ids) != 1 || ids[0] != iss.KID() {
			t.Fatalf("JWKS kids %v, want [%s]", ids, iss.KID())
		}
		got, err := identity.VerifyAgentIdentityJWT(tok, keys, time.Time{})
		if err != nil {
			t.Fatalf("VerifyAgentIdentityJWT: %v", err)
		}
		if diff := cmp.Diff(rec, *got); diff != "" {
			t.Fatalf("verified record (-want +got):\n%s", diff)
		}
	}
	if st := s.Stats(); st.JWKSRequests != 3 {
		t.Errorf("JWKSRequests = %d", st.JWKSRequests)
	}
	if !strings.HasPrefix(rec.AgentRuntimeID, "rt-") || rec.PlanType != "plus" || rec.ChatGPTUserID != "user-identitytest" {
		t.Errorf("record defaults: %v", rec)
	}

	// The identity's runtime is registered: it can register a task and use
	// it at a resource, and the routing headers come from the request.
	k, err := rec.Key()
	if err != nil {
		t.Fatal(err)
	}
	task := newTask(t, c, s, k, rec.AgentRuntimeID, "", clock.Now())
	r := do(t, c, http.MethodPost, s.URL()+"/v1/responses", map[string]string{
		"Authorization": sign(t, k, rec.AgentRuntimeID, task, clock.Now()), "ChatGPT-Account-ID": rec.AccountID, "X-OpenAI-Fedramp": "true",
	}, nil)
	if e := decodeEcho(t, r); e.AgentRuntimeID != rec.AgentRuntimeID || e.AccountID != "acct-7" || !e.FedRAMP {
		t.Errorf("echo %+v", e)
	}
	if rts := s.Runtimes(); len(rts) != 1 || rts[0].PublicKeySSH != k.SSHPublicKey() {
		t.Errorf("Runtimes() = %+v", rts)
	}

	// A fixed runtime id is honoured; reusing it with a new key fails.
	if rec2, _, err := s.NewAgentIdentity("agent-fixed", Login{}); err != nil || rec2.AgentRuntimeID != "agent-fixed" {
		t.Fatalf("fixed runtime id: %v %v", rec2, err)
	}
	if _, _, err := s.NewAgentIdentity("agent-fixed", Login{}); err == nil {
		t.Fatal("second identity on the same runtime id with another key succeeded")
	}

	if r := do(t, c, http.MethodPost, s.URL()+"/agent-identities/jwks", nil, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST JWKS: %d", r.status)
	}
}

func TestJWKSFetchedByIdentityClient(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	cl := &identity.Client{HTTPClient: newClient(t)}
	keys, err := cl.FetchJWKS(context.Background(), identity.JWKSURL(s.URL()+"/backend-api"))
	if err != nil {
		t.Fatalf("FetchJWKS: %v", err)
	}
	iss, _ := s.Issuer()
	if ids := keys.KeyIDs(); len(ids) != 1 || ids[0] != iss.KID() {
		t.Fatalf("kids %v", ids)
	}
	s.InjectFault(RouteJWKS, Fault{Status: 503, Times: 1})
	if _, err := cl.FetchJWKS(context.Background(), identity.JWKSURL(s.URL())); err == nil {
		t.Fatal("FetchJWKS succeeded on an injected 503")
	}
}

package transport

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

type panickingTransport struct{}

func (panickingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	panic("registrar blew up")
}

// A registration whose RegisterFunc panics is reported with a non-nil,
// permanent Err, as the cache counts it: an observer classifying Err
// never sees it as a success.
func TestRegistrationPanicIsReportedAsPermanentFailure(t *testing.T) {
	srv, creds := agentServer(t, identitytest.Options{})
	var rec recorder
	_, c := observedTransport(t, srv, config{Credentials: creds, Observer: rec.observer(false),
		RegistrationClient: &http.Client{Transport: panickingTransport{}}})
	req, _ := http.NewRequestWithContext(WithThread(context.Background(), "thread-panic"), http.MethodGet, srv.URL()+"/v1/models", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request succeeded though its registration panicked")
	}
	regs := rec.registrations()
	if len(regs) == 0 {
		t.Fatal("no registration reported")
	}
	for _, ev := range regs {
		if ev.Err == nil || outcomeOf(ev.Err) != "permanent" {
			t.Errorf("panicked registration reported as %+v (%s)", ev, outcomeOf(ev.Err))
		}
	}
}

// Events carry errors now: none of them, printed, holds a credential of
// the transport (the login's access token, the identity's private key, an
// assertion or token it sent), whatever failed.
func TestObserverEventsCarryNoSecret(t *testing.T) {
	const loginToken = "at-observer-secret-0123456789"
	var all []Event
	var sent []string
	collect := func(rec *recorder, sn *sniffingBase) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, l := range [][]Event{rec.provs, rec.regs, rec.refresh, rec.recovery, rec.fallback, rec.sigs, rec.removals, rec.usage} {
			all = append(all, l...)
		}
		sent = append(sent, sn.secrets()...)
	}

	// A ChatGPT login whose provisioning fails: a fallback to Bearer.
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{loginToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var login recorder
	sn := &sniffingBase{}
	rt, err := newTransport(sn, config{
		Credentials: &credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{AccessToken: loginToken, AccountID: "acct-secret"}},
		Flag:        featureflag.New(true), IdentityStore: credentials.NewMemoryStore(), Observer: login.observer(true),
		ChatGPTBaseURL: srv.URL(), AuthAPIBaseURL: srv.URL(), AllowInsecureHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: http.StatusServiceUnavailable, Times: identity.DefaultAgentAttempts})
	get(t, &http.Client{Transport: rt}, context.Background(), srv.URL()+"/v1/models")
	collect(&login, sn)

	// An Agent Identity whose thread task registration is refused once.
	asrv, creds := agentServer(t, identitytest.Options{})
	var agent recorder
	sn = &sniffingBase{}
	cfg := config{Credentials: creds, Observer: agent.observer(true), ChatGPTBaseURL: asrv.URL(), AuthAPIBaseURL: asrv.URL(), AllowInsecureHTTP: true}
	if rt, err = newTransport(sn, cfg); err != nil {
		t.Fatal(err)
	}
	asrv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusBadRequest, Times: 1})
	req, _ := http.NewRequestWithContext(WithThread(context.Background(), "thread-secret"), http.MethodGet, asrv.URL()+"/v1/models", nil)
	if resp, err := (&http.Client{Transport: rt}).Do(req); err == nil {
		resp.Body.Close()
	}
	collect(&agent, sn)

	secrets := append(sent, loginToken, string(creds.AgentIdentity.AgentPrivateKey))
	failed := 0
	for _, ev := range all {
		if ev.Err != nil {
			failed++
		}
		text := fmt.Sprintf("%+v %v", ev, ev.Err)
		for _, secret := range secrets {
			if secret != "" && strings.Contains(text, secret) {
				t.Errorf("event %s holds a credential", text)
			}
		}
	}
	if failed < 2 {
		t.Errorf("%d events with an error, want the failed provisioning and registration: %+v", failed, all)
	}
}

// sniffingBase forwards requests and keeps the credentials they carried.
type sniffingBase struct {
	base http.Transport
	mu   sync.Mutex
	seen []string
}

func (s *sniffingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if v := req.Header.Get("Authorization"); v != "" {
		_, cred, _ := strings.Cut(v, " ")
		s.mu.Lock()
		s.seen = append(s.seen, cred)
		s.mu.Unlock()
	}
	return s.base.RoundTrip(req)
}

func (s *sniffingBase) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base.CloseIdleConnections()
	return append([]string(nil), s.seen...)
}

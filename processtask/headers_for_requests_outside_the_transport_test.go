package processtask_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/processtask"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// Headers authenticates a request sent without the transport (as a
// WebSocket or SSE library would): the server accepts it as the process
// task, or as the thread's task for a thread context.
func TestHeadersAuthenticateARequestSentWithoutTheTransport(t *testing.T) {
	env := newAgentEnv(t, "rt-headers")
	url := env.srv.URL() + "/v1/responses"
	inThread := transport.WithThread(context.Background(), "thread-h")
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		wantRef string
	}{
		{"no thread", context.Background(), ""},
		{"thread", inThread, "thread-h"},
		{"background in a thread", processtask.Background(inThread), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := processtask.Headers(tc.ctx, env.rt, url)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h.Get(headers.Authorization), "AgentAssertion ") || h.Get(headers.ChatGPTAccountID) != "acct-pt" || len(h) != 2 {
				t.Fatalf("headers have %d keys, Authorization scheme %q, account %q", len(h), strings.SplitN(h.Get(headers.Authorization), " ", 2)[0], h.Get(headers.ChatGPTAccountID))
			}
			req := newRequest(t, context.Background(), url)
			for k, v := range h {
				req.Header[k] = v
			}
			if e := echo(t, env.plan, req); e.Mode != identitytest.ModeAssertion || e.ExternalTaskRef != tc.wantRef || e.AccountID != "acct-pt" {
				t.Errorf("echo %+v, want an assertion on %q", e, tc.wantRef)
			}
		})
	}
	// A WebSocket URL of the same origin is the same origin.
	ws := "ws" + strings.TrimPrefix(env.srv.URL(), "http") + "/v1/realtime"
	if _, err := processtask.Headers(context.Background(), env.rt, ws); err != nil {
		t.Errorf("Headers(%s): %v", ws, err)
	}
	st := env.rt.Stats()
	if st.ProcessRegistrations != 1 || st.ThreadRegistrations != 1 || st.Requests[resolver.ModeProcessTask] != 3 || st.Requests[resolver.ModeThreadTask] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// No credential for an origin outside the allow-list, nor for bad input;
// nothing reaches the AuthAPI for them.
func TestHeadersRefuseForeignOriginsAndBadInput(t *testing.T) {
	env := newAgentEnv(t, "rt-foreign")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		url  string
		want error
	}{
		{"foreign origin", context.Background(), "https://example.com/v1/responses", processtask.ErrForeignOrigin},
		{"foreign websocket", context.Background(), "wss://example.com/v1/realtime", processtask.ErrForeignOrigin},
		{"same host other port", context.Background(), "http://127.0.0.1:1/v1/responses", processtask.ErrForeignOrigin},
		{"invalid thread key", transport.WithThread(context.Background(), ""), env.srv.URL() + "/v1/responses", transport.ErrInvalidThreadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := processtask.Headers(tc.ctx, env.rt, tc.url)
			if !errors.Is(err, tc.want) || h != nil {
				t.Errorf("Headers = %v, %v; want nil and %v", h, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "not a url", "/relative"} {
		if h, err := processtask.Headers(context.Background(), env.rt, bad); err == nil || h != nil {
			t.Errorf("Headers(%q) = %v, %v; want an error", bad, h, err)
		}
	}
	if _, err := processtask.Headers(context.Background(), nil, env.srv.URL()); err == nil {
		t.Error("Headers with a nil transport: no error")
	}
	if st := env.srv.Stats(); st.TaskRegistrations != 0 {
		t.Errorf("%d task registrations for refused calls", st.TaskRegistrations)
	}
}

// An API key is Bearer without routing headers, as on the RoundTripper.
func TestHeadersForAnAPIKeyAreBearer(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{APIKeys: []string{"sk-processtask-0123456789"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rt, err := transport.New(nil, transport.Options{
		Credential:    transport.APIKey("sk-processtask-0123456789"),
		AgentIdentity: featureflag.New(false),
		Tuning:        transport.Tuning{AllowedOrigins: []string{srv.URL()}, AllowInsecureHTTP: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := processtask.Headers(context.Background(), rt, srv.URL()+"/v1/models")
	if err != nil || h.Get(headers.Authorization) != "Bearer sk-processtask-0123456789" || len(h) != 1 {
		t.Errorf("Headers: %d keys, %v", len(h), err)
	}
}

// Concurrent callers share one process task registration.
func TestHeadersConcurrentCallersShareOneProcessTask(t *testing.T) {
	env := newAgentEnv(t, "rt-concurrent")
	url := env.srv.URL() + "/v1/responses"
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := processtask.Headers(context.Background(), env.rt, url); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := env.srv.Stats(); st.ProcessTaskRegistrations != 1 {
		t.Errorf("%d process task registrations, want 1", st.ProcessTaskRegistrations)
	}
	if n := env.rt.Stats().Requests[resolver.ModeProcessTask]; n != 160 {
		t.Errorf("%d process-task requests counted, want 160", n)
	}
}

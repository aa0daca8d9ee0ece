package transport_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// TestContractRequestUnchanged: in every mode, the caller's request — header
// map, URL, body field, context — is the same after RoundTrip, while the
// caller reads its headers concurrently (run with -race: a write to the
// caller's map would be reported).
func TestContractRequestUnchanged(t *testing.T) {
	const token, apiKey = "contract-access-token", "sk-contract"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}, APIKeys: []string{apiKey}})
	base := newHTTPBase(t)
	ident := newRuntime(t, srv, uniqueAccount("contract"), true)
	cases := []struct {
		name   string
		creds  transport.Credential
		flagOn bool
		thread string
	}{
		{"api-key", transport.APIKey(apiKey), false, ""},
		{"chatgpt-bearer", transport.BearerToken(token, uniqueAccount("contract"), true), false, "t1"},
		{"chatgpt-assertion", transport.BearerToken(token, uniqueAccount("contract"), false), true, "t1"},
		{"agent-thread", agentCred(t, ident), false, "t1"},
		{"agent-process", agentCred(t, ident), false, ""},
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: tc.creds, flag: featureflag.New(tc.flagOn)}).rt
			for attempt := range 2 { // first request registers, second hits the caches
				reqCtx := threadCtx(ctx, tc.thread)
				req := newRequest(t, reqCtx, srv.URL()+"/v1/responses?q=1")
				req.Header.Add("X-Multi", "a")
				req.Header.Add("X-Multi", "b")
				req.Header.Set("Authorization", "Bearer caller-set")
				wantHeader := req.Header.Clone()
				hdrMap, urlPtr, urlVal, body, getBody := req.Header, req.URL, *req.URL, req.Body, req.GetBody

				done, started := make(chan struct{}), make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 1_000_000 {
						n := 0
						for _, vv := range req.Header {
							n += len(vv)
						}
						_ = req.Header.Get("Authorization")
						_ = req.URL.String()
						if i == 0 {
							close(started)
						}
						select {
						case <-done:
							return
						default:
						}
					}
				}()
				<-started // the reader is running before RoundTrip starts
				resp, err := rt.RoundTrip(req)
				close(done)
				wg.Wait()
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("attempt %d: status %d", attempt, resp.StatusCode)
				}
				if diff := cmp.Diff(wantHeader, req.Header); diff != "" {
					t.Fatalf("attempt %d: caller's headers changed:\n%s", attempt, redactDiff(diff))
				}
				if !sameMap(hdrMap, req.Header) || req.URL != urlPtr || *req.URL != urlVal ||
					req.Body != body || req.Context() != reqCtx || req.GetBody == nil || getBody == nil {
					t.Fatalf("attempt %d: caller's request fields were replaced", attempt)
				}
			}
		})
	}
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap(a, b http.Header) bool {
	const probe = "X-Agentauth-Identity-Probe"
	if _, ok := a[probe]; ok {
		return false
	}
	a[probe] = nil
	_, ok := b[probe]
	delete(a, probe)
	return ok
}

// failingSource is a ChatGPT token source that always fails.
type failingSource struct{}

func (failingSource) Token(context.Context) (*credentials.Token, error) {
	return nil, errors.New("token source unavailable")
}

// TestContractBodyClosedOnce: the request body is closed exactly once on
// every path, including errors returned before the base transport is
// called and the 401 recovery paths.
func TestContractBodyClosedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	type outcome struct {
		status  int
		err     error
		replays uint64
	}
	cases := []struct {
		name      string
		thread    string
		setup     func(srv *identitytest.Server)
		replay    bool // give the request a GetBody
		chatGPT   bool // use a failing ChatGPT token source instead of an agent identity
		check     func(t *testing.T, o outcome)
		wantSeen  int // protected requests the server recorded
		wantBases int // bodies handed to the base (replay bodies included)
	}{
		{
			name: "success", thread: "ok",
			check: func(t *testing.T, o outcome) {
				if o.err != nil || o.status != 200 {
					t.Fatalf("status %d err %v", o.status, o.err)
				}
			},
			wantSeen: 1,
		},
		{
			name: "invalid thread key", thread: "bad\nkey",
			check: func(t *testing.T, o outcome) {
				if !errors.Is(o.err, transport.ErrInvalidThreadKey) {
					t.Fatalf("err %v, want ErrInvalidThreadKey", o.err)
				}
			},
		},
		{
			name: "credential error", chatGPT: true,
			check: func(t *testing.T, o outcome) {
				if !errors.Is(o.err, transport.ErrCredential) {
					t.Fatalf("err %v, want ErrCredential", o.err)
				}
			},
		},
		{
			name: "registration failure", thread: "fails",
			setup: func(srv *identitytest.Server) {
				srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: 500, Times: identity.DefaultTaskAttempts})
			},
			check: func(t *testing.T, o outcome) {
				if !errors.Is(o.err, transport.ErrRegistration) {
					t.Fatalf("err %v, want ErrRegistration", o.err)
				}
			},
		},
		{
			name: "base transport error", thread: "drop",
			setup: func(srv *identitytest.Server) {
				srv.InjectFault(identitytest.RouteResource, identitytest.Fault{DropConnection: true, Times: 1})
			},
			check: func(t *testing.T, o outcome) {
				var ae *transport.Error
				if o.err == nil || errors.As(o.err, &ae) {
					t.Fatalf("err %v, want the base transport's error", o.err)
				}
			},
		},
		{
			name: "401 without replay", thread: "unauth",
			setup: func(srv *identitytest.Server) {
				srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: 401, Times: 1})
			},
			check: func(t *testing.T, o outcome) {
				if o.err != nil || o.status != 401 || o.replays != 0 {
					t.Fatalf("status %d err %v replays %d, want the 401 without replay", o.status, o.err, o.replays)
				}
			},
		},
		{
			name: "401 with replay", thread: "replayed", replay: true,
			setup: func(srv *identitytest.Server) {
				srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: 401, Times: 1})
			},
			check: func(t *testing.T, o outcome) {
				if o.err != nil || o.status != 200 || o.replays != 1 {
					t.Fatalf("status %d err %v replays %d, want 200 after one replay", o.status, o.err, o.replays)
				}
			},
			wantSeen: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newIdentityServer(t, identitytest.Options{})
			base := newHTTPBase(t)
			eo := envOptions{srv: srv, base: base, plain: true}
			if tc.chatGPT {
				eo.credential = transport.ChatGPT(failingSource{})
			}
			rt := newEnv(t, eo).rt
			if tc.setup != nil {
				tc.setup(srv)
			}
			body := newCountingBody(`{"input":"once"}`)
			req, err := http.NewRequestWithContext(threadCtx(ctx, tc.thread), http.MethodPost, srv.URL()+"/v1/responses", body)
			if err != nil {
				t.Fatal(err)
			}
			var replayBodies []*countingBody
			var mu sync.Mutex
			if tc.replay {
				req.GetBody = func() (io.ReadCloser, error) {
					b := newCountingBody(`{"input":"once"}`)
					mu.Lock()
					replayBodies = append(replayBodies, b)
					mu.Unlock()
					return b, nil
				}
			}
			resp, err := rt.RoundTrip(req)
			o := outcome{err: err, replays: rt.Stats().Replays}
			if resp != nil {
				o.status = resp.StatusCode
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			tc.check(t, o)

			body.waitClosed(t)
			mu.Lock()
			bodies := append([]*countingBody(nil), replayBodies...)
			mu.Unlock()
			for _, b := range bodies {
				b.waitClosed(t)
			}
			// Let every connection and write loop finish before the final count.
			base.CloseIdleConnections()
			srv.Close()
			if n := body.closes.Load(); n != 1 {
				t.Errorf("request body closed %d times, want 1", n)
			}
			if tc.replay && len(bodies) != 1 {
				t.Errorf("GetBody called %d times, want 1", len(bodies))
			}
			for i, b := range bodies {
				if n := b.closes.Load(); n != 1 {
					t.Errorf("replay body %d closed %d times, want 1", i, n)
				}
			}
			if n := len(srv.Requests()); n < tc.wantSeen {
				t.Errorf("server recorded %d protected requests, want at least %d", n, tc.wantSeen)
			}
		})
	}
}

// TestContractCloseIdleConnections: http.Client.CloseIdleConnections reaches
// the base transport through the agentauth transport for every credential
// kind, and reaches a separate registration client too.
func TestContractCloseIdleConnections(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	ident := newRuntime(t, srv, uniqueAccount("idle"), false)
	cases := map[string]transport.Credential{
		"none":           {}, // pass through
		"api-key":        transport.APIKey("sk-idle"),
		"chatgpt":        transport.BearerToken("idle-token", uniqueAccount("idle"), false),
		"agent-identity": agentCred(t, ident),
	}
	for name, creds := range cases {
		t.Run(name, func(t *testing.T) {
			base := newStubBase(nil)
			regBase := newStubBase(nil)
			e := newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: creds, noCredential: creds == (transport.Credential{}),
				flag: featureflag.New(true)})
			rt := e.rt
			(&http.Client{Transport: rt}).CloseIdleConnections()
			if n := base.closeIdle.Load(); n != 1 {
				t.Fatalf("base got %d CloseIdleConnections calls, want 1", n)
			}
			if rt.WrappedRoundTripper() != http.RoundTripper(base) {
				t.Fatal("WrappedRoundTripper does not return the base transport")
			}

			rt = e.another(func(o *transport.Options) { o.HTTPClient = &http.Client{Transport: regBase} })
			(&http.Client{Transport: rt}).CloseIdleConnections()
			if b, r := base.closeIdle.Load(), regBase.closeIdle.Load(); b != 2 || r != 1 {
				t.Fatalf("with an HTTPClient: base %d, registration transport %d calls; want 2 and 1", b, r)
			}
		})
	}
}

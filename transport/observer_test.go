package transport

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/testhooks"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu       sync.Mutex
	starts   []Operation
	provs    []Event
	regs     []Event
	refresh  []Event
	recovery []Event
	fallback []Event
	sigs     []Event
	removals []Event
	usage    []Event
	news     int
}

// outcomeOf classifies an event's error the way a metrics observer does.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case IsTemporary(err):
		return "temporary"
	}
	return "permanent"
}

type startKey struct{}

func (r *recorder) observer(includeKeys bool) *Observer {
	add := func(f func()) { r.mu.Lock(); defer r.mu.Unlock(); f() }
	obs := &Observer{
		IncludeThreadKeys: includeKeys,
		OnStart: func(ctx context.Context, op Operation) context.Context {
			add(func() { r.starts = append(r.starts, op) })
			return context.WithValue(ctx, startKey{}, op)
		},
		OnEvent: func(ctx context.Context, ev Event) {
			if ev.Op == OpCacheRemoval { // under the cache lock; read after
				r.removals = append(r.removals, ev)
				return
			}
			if ev.Op == OpRegistration && ctx.Value(startKey{}) != OpRegistration {
				panic("registration reported without the context OnStart returned")
			}
			add(func() {
				list := map[Operation]*[]Event{OpProvisioning: &r.provs, OpRegistration: &r.regs, OpRefresh: &r.refresh,
					OpRecovery: &r.recovery, OpFallback: &r.fallback, OpSignature: &r.sigs, OpUsage: &r.usage}[ev.Op]
				*list = append(*list, ev)
			})
		},
	}
	obs.onNew = func(*Transport) { add(func() { r.news++ }) }
	return obs
}

func (r *recorder) registrations() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.regs...)
}

func agentServer(t *testing.T, opts identitytest.Options) (*identitytest.Server, *credentials.Credentials) {
	t.Helper()
	srv, err := identitytest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := identity.Record{AgentRuntimeID: "rt-observer-" + t.Name(), AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-observer"}
	if err := srv.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	return srv, &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: &rec}
}

func observedTransport(t *testing.T, srv *identitytest.Server, cfg config) (*Transport, *http.Client) {
	t.Helper()
	cfg.ChatGPTBaseURL, cfg.AuthAPIBaseURL, cfg.AllowInsecureHTTP = srv.URL(), srv.URL(), true
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	rt, err := newTransport(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rt, &http.Client{Transport: rt}
}

func get(t *testing.T, c *http.Client, ctx context.Context, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestObserverThreadRegistrationOmitsKeyUnlessOptedIn(t *testing.T) {
	for _, include := range []bool{false, true} {
		srv, creds := agentServer(t, identitytest.Options{})
		var rec recorder
		_, c := observedTransport(t, srv, config{Credentials: creds, Observer: rec.observer(include)})
		ctx := WithThread(context.Background(), "thread-private-42")
		for range 3 {
			if code := get(t, c, ctx, srv.URL()+"/v1/models"); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
		}
		regs := rec.registrations()
		if len(regs) != 1 {
			t.Fatalf("include=%v: %d registrations reported for one cold thread, want 1: %+v", include, len(regs), regs)
		}
		ev := regs[0]
		wantThread := ""
		if include {
			wantThread = "thread-private-42"
		}
		if ev.Task != "thread" || ev.Attempt != 1 || ev.Err != nil || ev.StatusCode != 0 || ev.Thread != wantThread {
			t.Errorf("include=%v: event %+v", include, ev)
		}
		if ev.Duration <= 0 || ev.Start.IsZero() {
			t.Errorf("include=%v: no timing in %+v", include, ev)
		}
		if len(rec.sigs) == 0 || rec.sigs[0].Task != "thread" || rec.sigs[0].Thread != wantThread {
			t.Errorf("include=%v: signatures %+v", include, rec.sigs)
		}
		if rec.news != 1 {
			t.Errorf("onNew hook called %d times, want 1", rec.news)
		}
	}
}

func TestObserverProcessRegistration(t *testing.T) {
	srv, creds := agentServer(t, identitytest.Options{})
	var rec recorder
	_, c := observedTransport(t, srv, config{Credentials: creds, Observer: rec.observer(false)})
	get(t, c, context.Background(), srv.URL()+"/v1/models")
	regs := rec.registrations()
	if len(regs) != 1 || regs[0].Task != "process" || regs[0].Err != nil {
		t.Fatalf("registrations %+v, want one process registration", regs)
	}
}

func TestObserverCountsAttemptsAndClassifiesFailures(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	srv, creds := agentServer(t, identitytest.Options{Now: clock})
	var rec recorder
	_, c := observedTransport(t, srv, config{Credentials: creds, Observer: rec.observer(false), hooks: testhooks.Hooks{Now: clock}})
	// The fault outlasts the registration's own three attempts.
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: http.StatusServiceUnavailable, Times: 3})
	ctx := WithThread(context.Background(), "thread-retry")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/models", nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("request succeeded despite the registration fault")
	}
	now.Add(int64(2 * taskcache.DefaultBackoffMax / time.Second)) // past any backoff
	if code := get(t, c, ctx, srv.URL()+"/v1/models"); code != http.StatusOK {
		t.Fatalf("status %d after the backoff", code)
	}
	regs := rec.registrations()
	if len(regs) != 2 {
		t.Fatalf("%d registrations, want 2: %+v", len(regs), regs)
	}
	if regs[0].Attempt != 1 || outcomeOf(regs[0].Err) != "temporary" || regs[0].StatusCode != http.StatusServiceUnavailable {
		t.Errorf("failed attempt reported as %+v", regs[0])
	}
	if regs[1].Attempt != 2 || regs[1].Err != nil {
		t.Errorf("second attempt reported as %+v", regs[1])
	}
}

func TestObserverReportsCacheEvictions(t *testing.T) {
	srv, creds := agentServer(t, identitytest.Options{})
	var rec recorder
	rt, c := observedTransport(t, srv, config{Credentials: creds, Observer: rec.observer(true), ThreadCache: taskcache.CacheOptions{Capacity: 1}})
	get(t, c, WithThread(context.Background(), "thread-a"), srv.URL()+"/v1/models")
	get(t, c, WithThread(context.Background(), "thread-b"), srv.URL()+"/v1/models")
	_ = rt.Stats() // takes the cache lock: the removal was recorded before it
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.removals) != 1 || rec.removals[0].Detail != "evicted" || rec.removals[0].Thread != "thread-a" {
		t.Fatalf("removals %+v, want thread-a evicted", rec.removals)
	}
}

// refreshingSource is a token source that refreshes on 401 and, when
// reporting, reports its own refreshes like a source with a token endpoint.
type refreshingSource struct {
	mu       sync.Mutex
	tok      *credentials.Token
	next     string
	report   func(context.Context, credentials.RefreshEvent)
	setCalls int
}

func (s *refreshingSource) Token(context.Context) (*credentials.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, nil
}

func (s *refreshingSource) Refresh(ctx context.Context, rejected *credentials.Token) (*credentials.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == "" {
		return nil, credentials.ErrTokenUnchanged
	}
	s.tok = &credentials.Token{AccessToken: identity.Secret(s.next), AccountID: s.tok.AccountID}
	s.next = ""
	return s.tok, nil
}

type reportingSource struct{ *refreshingSource }

func (s reportingSource) SetRefreshObserver(fn func(context.Context, credentials.RefreshEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report, s.setCalls = fn, s.setCalls+1
}

func TestObserverRefreshAfter401(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{"at-fresh"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	src := &refreshingSource{tok: &credentials.Token{AccessToken: "at-stale", AccountID: "acct-1"}, next: "at-fresh"}
	var rec recorder
	_, c := observedTransport(t, srv, config{TokenSource: src, Observer: rec.observer(false)})
	if code := get(t, c, context.Background(), srv.URL()+"/v1/models"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	// The second refresh finds nothing newer: a failed recovery.
	src.mu.Lock()
	src.tok = &credentials.Token{AccessToken: "at-revoked", AccountID: "acct-1"}
	src.mu.Unlock()
	if code := get(t, c, context.Background(), srv.URL()+"/v1/models"); code != http.StatusUnauthorized {
		t.Fatalf("status %d, want the 401", code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.refresh) != 2 || rec.refresh[0].Detail != "unauthorized" || rec.refresh[0].Err != nil ||
		outcomeOf(rec.refresh[1].Err) != "permanent" {
		t.Errorf("refreshes %+v", rec.refresh)
	}
	want := []Event{{Op: OpRecovery, Task: "bearer", Detail: "replayed"}, {Op: OpRecovery, Task: "bearer", Detail: "failed"}}
	if len(rec.recovery) != 2 || rec.recovery[0] != want[0] || rec.recovery[1] != want[1] {
		t.Errorf("recoveries %+v, want %+v", rec.recovery, want)
	}
	if len(rec.starts) != 2 || rec.starts[0] != OpRefresh {
		t.Errorf("starts %v, want two refreshes", rec.starts)
	}
}

func TestObserverWiresReportingSource(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{"at-fresh"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	src := reportingSource{&refreshingSource{tok: &credentials.Token{AccessToken: "at-stale", AccountID: "acct-1"}, next: "at-fresh"}}
	var rec recorder
	_, c := observedTransport(t, srv, config{TokenSource: src, Observer: rec.observer(false)})
	if src.setCalls != 1 || src.report == nil {
		t.Fatalf("SetRefreshObserver called %d times", src.setCalls)
	}
	// A 401 refresh by a reporting source is the source's to report.
	if code := get(t, c, context.Background(), srv.URL()+"/v1/models"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	rec.mu.Lock()
	n := len(rec.refresh)
	rec.mu.Unlock()
	if n != 0 {
		t.Fatalf("transport reported %d refreshes of a reporting source", n)
	}
	src.report(context.Background(), credentials.RefreshEvent{Trigger: credentials.RefreshProactive, Start: time.Now(), Duration: time.Millisecond,
		Err: &identity.RegistrationError{StatusCode: http.StatusBadGateway}})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.refresh) != 1 {
		t.Fatalf("refreshes %+v", rec.refresh)
	}
	if ev := rec.refresh[0]; ev.Detail != "proactive" || outcomeOf(ev.Err) != "temporary" || ev.StatusCode != http.StatusBadGateway || ev.Duration != time.Millisecond {
		t.Errorf("reported refresh became %+v", ev)
	}
}

func TestObserverBearerFallbackStartAndEnd(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{"at-login"}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var rec recorder
	_, c := observedTransport(t, srv, config{
		Credentials: &credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{AccessToken: "at-login", AccountID: "acct-fb"}},
		Flag:        featureflag.New(true), IdentityStore: credentials.NewMemoryStore(), Observer: rec.observer(false), hooks: testhooks.Hooks{Now: clock},
		ProvisioningCooldown: time.Minute,
	})
	// Every attempt of the first provisioning fails: the login uses Bearer.
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: http.StatusServiceUnavailable, Times: identity.DefaultAgentAttempts})
	if code := get(t, c, context.Background(), srv.URL()+"/v1/models"); code != http.StatusOK {
		t.Fatalf("status %d during the fallback", code)
	}
	now.Add(90)
	if code := get(t, c, context.Background(), srv.URL()+"/v1/models"); code != http.StatusOK {
		t.Fatalf("status %d after the cooldown", code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.fallback) != 2 {
		t.Fatalf("fallback events %+v, want start and end", rec.fallback)
	}
	if s := rec.fallback[0]; s.Detail != "start" || s.Duration != time.Minute || s.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("start %+v", s)
	}
	if e := rec.fallback[1]; e.Detail != "end" || e.Duration != 90*time.Second {
		t.Errorf("end %+v", e)
	}
	if len(rec.provs) != 2 || outcomeOf(rec.provs[0].Err) != "temporary" || rec.provs[1].Err != nil {
		t.Errorf("provisionings %+v", rec.provs)
	}
}

type okBase struct{ resp *http.Response }

func (b okBase) RoundTrip(*http.Request) (*http.Response, error) { return b.resp, nil }

// The cached thread path has no event site: a transport with every
// observer hook set allocates exactly what one without an observer does.
func TestObserverCostsNothingOnCachedPath(t *testing.T) {
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := identity.Record{AgentRuntimeID: "rt-observer-allocs", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-allocs"}
	registrar := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"task_id":"task-1"}`)) })
	fixed := time.Unix(1_800_000_000, 0) // one assertion second: no re-signing
	allocs := func(obs *Observer) float64 {
		rt, err := newTransport(okBase{&http.Response{StatusCode: http.StatusOK, Body: http.NoBody}}, config{
			Credentials:        &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: &rec},
			RegistrationClient: &http.Client{Transport: handlerTransport{registrar}},
			Observer:           obs,
			hooks:              testhooks.Hooks{Now: func() time.Time { return fixed }},
		})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(WithThread(context.Background(), "thread-hot"), http.MethodGet, "https://chatgpt.com/backend-api/x", nil)
		if _, err := rt.RoundTrip(req); err != nil { // registers and signs
			t.Fatal(err)
		}
		return testing.AllocsPerRun(200, func() {
			if _, err := rt.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
		})
	}
	var r recorder
	none, observed := allocs(nil), allocs(r.observer(true))
	if observed != none {
		t.Errorf("cached thread request: %v allocs with an observer, %v without", observed, none)
	}
	if len(r.registrations()) != 1 || len(r.sigs) != 1 {
		t.Errorf("observer saw %d registrations and %d signatures, want the warm-up's 1 each", len(r.registrations()), len(r.sigs))
	}
}

// handlerTransport serves requests with a handler in process.
type handlerTransport struct{ h http.Handler }

func (h handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	return w.Result(), nil
}

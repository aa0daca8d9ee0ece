package otelauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/otelauth"
	"github.com/agentauth/agentauth/transport"
)

const privateThread = "thread-of-alice@example.com"

// coldThread sends two requests on a new thread through otelhttp wrapped
// around the transport and returns the client span of the first.
func coldThread(t *testing.T, tel *telemetry, opts ...otelauth.Option) (client trace.SpanContext, secrets []string) {
	t.Helper()
	srv, creds := agentServer(t, identitytest.Options{})
	rt, sn := newTransport(t, srv, transport.Options{Credential: testCredential(creds), Observer: otelauth.Observer(tel.mp, tel.tp, opts...)})
	outer := otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tel.tp), otelhttp.WithMeterProvider(tel.mp))
	ctx := transport.WithThread(context.Background(), privateThread)
	for range 2 {
		if code := do(t, outer, ctx, srv.URL()+"/v1/models"); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	for _, s := range tel.spans.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s.SpanContext()
			break
		}
	}
	return client, append(sn.headers(), string(creds.AgentIdentity.AgentPrivateKey))
}

func TestColdThreadRegistrationSpanIsChildOfClientSpan(t *testing.T) {
	tel := newTelemetry(t)
	client, _ := coldThread(t, tel)
	regs := tel.ended(otelauth.SpanRegistration)
	if len(regs) != 1 {
		t.Fatalf("%d registration spans for one cold thread, want 1", len(regs))
	}
	reg := regs[0]
	if !client.IsValid() {
		t.Fatal("otelhttp recorded no client span")
	}
	if reg.Parent().SpanID() != client.SpanID() || reg.SpanContext().TraceID() != client.TraceID() {
		t.Errorf("registration span's parent %v, want the client span %v", reg.Parent().SpanID(), client.SpanID())
	}
	if reg.SpanKind() != trace.SpanKindInternal || reg.Status().Code == codes.Error {
		t.Errorf("registration span kind %v status %v", reg.SpanKind(), reg.Status())
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range reg.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	if attrs[otelauth.AttrTaskKind].AsString() != "thread" || attrs[otelauth.AttrOutcome].AsString() != "success" || attrs[otelauth.AttrAttempt].AsInt64() != 1 {
		t.Errorf("registration span attributes %v", reg.Attributes())
	}
	if _, ok := attrs[otelauth.AttrThreadKey]; ok {
		t.Error("thread key on the span without WithThreadKeys")
	}
	if !reg.EndTime().After(reg.StartTime()) {
		t.Errorf("registration span has no duration")
	}

	rm := tel.collect(t)
	ok := map[string]string{"agentauth.task.kind": "thread", "agentauth.outcome": "success"}
	if n, found := sumPoint(t, rm, otelauth.MetricRegistrations, ok); !found || n != 1 {
		t.Errorf("%s{thread,success} = %d (found %v), want 1", otelauth.MetricRegistrations, n, found)
	}
	if n, found := histogramCount(t, rm, otelauth.MetricRegistrationDuration, ok); !found || n != 1 {
		t.Errorf("%s{thread,success} count = %d (found %v), want 1", otelauth.MetricRegistrationDuration, n, found)
	}
	if m, found := findMetric(rm, otelauth.MetricRegistrationDuration); !found || m.Unit != "s" {
		t.Errorf("registration duration unit %q", m.Unit)
	}
	if n, found := sumPoint(t, rm, otelauth.MetricSignatures, map[string]string{"agentauth.task.kind": "thread"}); !found || n < 1 {
		t.Errorf("%s{thread} = %d, want at least 1", otelauth.MetricSignatures, n)
	}
	if n, found := sumPoint(t, rm, otelauth.MetricCachedThreads, map[string]string{}); !found || n != 1 {
		t.Errorf("%s = %d (found %v), want 1", otelauth.MetricCachedThreads, n, found)
	}
}

func TestThreadKeyOnSpanOnlyWhenOptedIn(t *testing.T) {
	tel := newTelemetry(t)
	coldThread(t, tel, otelauth.WithThreadKeys())
	regs := tel.ended(otelauth.SpanRegistration)
	if len(regs) != 1 {
		t.Fatalf("%d registration spans", len(regs))
	}
	found := false
	for _, kv := range regs[0].Attributes() {
		found = found || (kv.Key == otelauth.AttrThreadKey && kv.Value.AsString() == privateThread)
	}
	if !found {
		t.Errorf("thread key missing from %v", regs[0].Attributes())
	}
	dump := exported(t, tel)
	if strings.Contains(dump.metrics, privateThread) {
		t.Error("thread key in a metric attribute")
	}
}

// proactiveSource is a token source that reports one proactive refresh on
// its first Token call, on the caller's context, as a source with a token
// endpoint would. It has no Refresh: the test sends no request it rejects.
type proactiveSource struct {
	mu       sync.Mutex
	tok      *credentials.Token
	report   func(context.Context, credentials.RefreshEvent)
	reported bool
}

func (s *proactiveSource) SetRefreshObserver(fn func(context.Context, credentials.RefreshEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report = fn
}

func (s *proactiveSource) Token(ctx context.Context) (*credentials.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reported && s.report != nil {
		s.reported = true
		start := time.Now()
		s.report(ctx, credentials.RefreshEvent{Trigger: credentials.RefreshProactive, Start: start.Add(-5 * time.Millisecond), Duration: 5 * time.Millisecond})
	}
	return s.tok, nil
}

// plainSource refreshes on 401 without reporting: the transport times it.
type plainSource struct {
	mu   sync.Mutex
	tok  *credentials.Token
	next string
}

func (s *plainSource) Token(context.Context) (*credentials.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, nil
}

func (s *plainSource) Refresh(_ context.Context, rejected *credentials.Token) (*credentials.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == "" || rejected.AccessToken == identity.Secret(s.next) {
		return nil, credentials.ErrTokenUnchanged
	}
	s.tok = &credentials.Token{AccessToken: identity.Secret(s.next), AccountID: s.tok.AccountID}
	return s.tok, nil
}

const (
	staleToken = "at-stale-0123456789abcdef"
	freshToken = "at-fresh-fedcba9876543210"
)

// refreshes runs a proactive refresh reported by the source and a 401
// refresh timed by the transport, each inside a request span, and returns
// those spans.
func refreshes(t *testing.T, tel *telemetry) (proactiveReq, unauthorizedReq trace.SpanContext, secrets []string) {
	t.Helper()
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{freshToken}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	obs := otelauth.Observer(tel.mp, tel.tp)
	tracer := tel.tp.Tracer("test")

	ps := &proactiveSource{tok: &credentials.Token{AccessToken: freshToken, AccountID: "acct-1"}}
	rt1, sn1 := newTransport(t, srv, transport.Options{Credential: transport.ChatGPT(ps), Observer: obs})
	ctx, span := tracer.Start(context.Background(), "proactive request")
	if code := do(t, rt1, ctx, srv.URL()+"/v1/models"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	span.End()
	proactiveReq = span.SpanContext()

	src := &plainSource{tok: &credentials.Token{AccessToken: staleToken, AccountID: "acct-1"}, next: freshToken}
	rt2, sn2 := newTransport(t, srv, transport.Options{Credential: transport.ChatGPT(src), Observer: obs})
	ctx, span = tracer.Start(context.Background(), "unauthorized request")
	if code := do(t, rt2, ctx, srv.URL()+"/v1/models"); code != http.StatusOK {
		t.Fatalf("status %d after the 401 refresh", code)
	}
	span.End()
	unauthorizedReq = span.SpanContext()
	return proactiveReq, unauthorizedReq, append(append(sn1.headers(), sn2.headers()...), staleToken, freshToken)
}

func TestRefreshSpans(t *testing.T) {
	tel := newTelemetry(t)
	proactive, unauthorized, _ := refreshes(t, tel)
	spans := tel.ended(otelauth.SpanRefresh)
	if len(spans) != 2 {
		t.Fatalf("%d refresh spans, want 2", len(spans))
	}
	byTrigger := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if kv.Key == otelauth.AttrTrigger {
				byTrigger[kv.Value.AsString()] = s
			}
		}
	}
	p, u := byTrigger["proactive"], byTrigger["unauthorized"]
	if p == nil || u == nil {
		t.Fatalf("refresh triggers %v", byTrigger)
	}
	if p.Parent().SpanID() != proactive.SpanID() {
		t.Errorf("proactive refresh span not a child of its request span")
	}
	if d := p.EndTime().Sub(p.StartTime()); d != 5*time.Millisecond {
		t.Errorf("reported refresh span lasts %v, want the reported 5ms", d)
	}
	if u.Parent().SpanID() != unauthorized.SpanID() {
		t.Errorf("401 refresh span not a child of its request span")
	}
	// The recovery is an event on the request span.
	var events []string
	for _, s := range tel.spans.Ended() {
		if s.SpanContext().SpanID() == unauthorized.SpanID() {
			for _, e := range s.Events() {
				events = append(events, e.Name)
			}
		}
	}
	if len(events) != 1 || events[0] != otelauth.EventRecovery {
		t.Errorf("request span events %v, want one %s", events, otelauth.EventRecovery)
	}

	rm := tel.collect(t)
	for _, trig := range []string{"proactive", "unauthorized"} {
		want := map[string]string{"agentauth.refresh.trigger": trig, "agentauth.outcome": "success"}
		if n, found := sumPoint(t, rm, otelauth.MetricRefreshes, want); !found || n != 1 {
			t.Errorf("%s%v = %d (found %v)", otelauth.MetricRefreshes, want, n, found)
		}
		if n, found := histogramCount(t, rm, otelauth.MetricRefreshDuration, want); !found || n != 1 {
			t.Errorf("%s%v count = %d (found %v)", otelauth.MetricRefreshDuration, want, n, found)
		}
	}
	if n, found := sumPoint(t, rm, otelauth.MetricRecoveries, map[string]string{"agentauth.mode": "bearer", "agentauth.recovery.result": "replayed"}); !found || n != 1 {
		t.Errorf("%s{bearer,replayed} = %d (found %v)", otelauth.MetricRecoveries, n, found)
	}
}

const loginToken = "at-login-5555aaaa5555aaaa"

// fallback makes provisioning unavailable (every attempt answered 503)
// for a ChatGPT login with the flag on, inside a request span.
func fallback(t *testing.T, tel *telemetry) (req trace.SpanContext, secrets []string) {
	t.Helper()
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{loginToken}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	rt, sn := newTransport(t, srv, transport.Options{
		Credential:    testCredential(&credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{AccessToken: loginToken, AccountID: "acct-fallback"}}),
		AgentIdentity: featureflag.New(true),
		Fleet:         transport.Fleet{IdentityStore: credentials.NewMemoryStore()},
		Observer:      otelauth.Observer(tel.mp, tel.tp),
	})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: http.StatusServiceUnavailable, Times: identity.DefaultAgentAttempts})
	ctx, span := tel.tp.Tracer("test").Start(context.Background(), "request")
	if code := do(t, rt, ctx, srv.URL()+"/v1/models"); code != http.StatusOK {
		t.Fatalf("status %d during the fallback", code)
	}
	span.End()
	return span.SpanContext(), append(sn.headers(), loginToken)
}

func TestBearerFallbackEvent(t *testing.T) {
	tel := newTelemetry(t)
	req, _ := fallback(t, tel)
	var events []sdktrace.Event
	for _, s := range tel.spans.Ended() {
		if s.SpanContext().SpanID() == req.SpanID() {
			events = s.Events()
		}
	}
	if len(events) != 1 || events[0].Name != otelauth.EventFallback {
		t.Fatalf("request span events %v, want one %s", events, otelauth.EventFallback)
	}
	if got := attribute.NewSet(events[0].Attributes...); got.Len() != 2 {
		t.Errorf("fallback event attributes %v", events[0].Attributes)
	}
	provs := tel.ended(otelauth.SpanProvisioning)
	if len(provs) != 1 || provs[0].Status().Code != codes.Error || provs[0].Parent().SpanID() != req.SpanID() {
		t.Fatalf("provisioning spans %v", provs)
	}
	rm := tel.collect(t)
	if n, found := sumPoint(t, rm, otelauth.MetricFallbacks, map[string]string{"agentauth.fallback.phase": "start"}); !found || n != 1 {
		t.Errorf("%s{start} = %d (found %v)", otelauth.MetricFallbacks, n, found)
	}
	failed := map[string]string{"agentauth.outcome": "temporary_failure", "error.type": "503"}
	if n, found := sumPoint(t, rm, otelauth.MetricProvisionings, failed); !found || n != 1 {
		t.Errorf("%s%v = %d (found %v)", otelauth.MetricProvisionings, failed, n, found)
	}
}

// dump is everything the exporters would see, as text.
type dump struct{ metrics, spans string }

func exported(t *testing.T, tel *telemetry) dump {
	t.Helper()
	rm := tel.collect(t)
	m, err := json.Marshal(rm)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(m)
	fmt.Fprintf(&b, "%+v", rm)
	var s strings.Builder
	stubs := tracetest.SpanStubsFromReadOnlySpans(tel.spans.Ended())
	js, err := json.Marshal(stubs)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(js)
	for _, st := range stubs {
		fmt.Fprintf(&s, "%s|%s|%+v|%+v|%+v|%+v\n", st.Name, st.Status.Description, st.Attributes, st.Events, st.Links, st.Resource)
	}
	return dump{metrics: b.String(), spans: s.String()}
}

func TestNoSecretInExportedTelemetry(t *testing.T) {
	tel := newTelemetry(t)
	_, s1 := coldThread(t, tel)
	_, _, s2 := refreshes(t, tel)
	_, s3 := fallback(t, tel)
	secrets := append(append(s1, s2...), s3...)
	var assertions int
	for _, s := range secrets {
		if strings.HasPrefix(s, "AgentAssertion ") {
			assertions++
			secrets = append(secrets, strings.TrimPrefix(s, "AgentAssertion "))
		}
		if strings.HasPrefix(s, "Bearer ") {
			secrets = append(secrets, strings.TrimPrefix(s, "Bearer "))
		}
	}
	if assertions == 0 {
		t.Fatal("no assertion was sent: the scan would prove nothing")
	}
	secrets = append(secrets, privateThread) // caller data, not opted in
	d := exported(t, tel)
	if len(d.metrics) < 1000 || len(d.spans) < 1000 {
		t.Fatalf("suspiciously little exported (%d, %d bytes)", len(d.metrics), len(d.spans))
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(d.metrics, s) {
			t.Errorf("metric output holds a secret (%.12s...)", s)
		}
		if strings.Contains(d.spans, s) {
			t.Errorf("span output holds a secret (%.12s...)", s)
		}
	}
}

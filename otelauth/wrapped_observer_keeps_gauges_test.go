package otelauth_test

import (
	"context"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/otelauth"
	"github.com/agentauth/agentauth/transport"
)

// A copy of the observer whose OnEvent is wrapped (the package doc's way
// to add one's own events) still finds its transports: the gauges read
// their Stats, and the wrapper hears the events too.
func TestWrappedObserverKeepsGauges(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokenAccounts: map[string]string{"tok-w": "acct-w"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.SetUsage("acct-w", identitytest.Usage{PrimaryUsedPercent: 12, SecondaryUsedPercent: 3})
	tel := newTelemetry(t)
	obs := *otelauth.Observer(tel.mp, tel.tp)
	var mine atomic.Int64
	next := obs.OnEvent
	obs.OnEvent = func(ctx context.Context, ev transport.Event) {
		next(ctx, ev)
		if ev.Op == transport.OpUsage {
			mine.Add(1)
		}
	}
	rt, _ := newTransport(t, srv, transport.Options{
		Credential: testCredential(&credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{AccessToken: "tok-w", AccountID: "acct-w"}}),
		Observer:   &obs,
	})
	if code := do(t, rt, context.Background(), srv.URL()+"/v1/echo"); code != 200 {
		t.Fatalf("status %d", code)
	}
	m, ok := findMetric(tel.collect(t), otelauth.MetricUsedPercent)
	if !ok || len(m.Data.(metricdata.Gauge[float64]).DataPoints) != 2 {
		t.Fatalf("usage gauge of a wrapped observer's transport: %+v (found %v)", m.Data, ok)
	}
	if mine.Load() != 1 {
		t.Errorf("the wrapper heard %d usage events, want 1", mine.Load())
	}
}

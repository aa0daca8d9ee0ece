package otelauth_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/otelauth"
	"github.com/agentauth/agentauth/transport"
)

// The usage gauge reports each window the login's answers last reported,
// named by limit, window and the observer's login.
func TestUsageGaugePerLogin(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokenAccounts: map[string]string{"tok-a": "acct-a"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.SetUsage("acct-a", identitytest.Usage{PrimaryUsedPercent: 37.5, SecondaryUsedPercent: 4})
	tel := newTelemetry(t)
	rt, _ := newTransport(t, srv, transport.Options{
		Credential: testCredential(&credentials.Credentials{Kind: credentials.KindChatGPT, ChatGPT: &credentials.ChatGPTLogin{AccessToken: "tok-a", AccountID: "acct-a"}}),
		Observer:   otelauth.Observer(tel.mp, tel.tp, otelauth.WithLogin("team-a")),
	})
	rm := tel.collect(t)
	if m, ok := findMetric(rm, otelauth.MetricUsedPercent); ok && len(m.Data.(metricdata.Gauge[float64]).DataPoints) != 0 {
		t.Fatalf("usage before any answer: %+v", m.Data)
	}
	if code := do(t, rt, context.Background(), srv.URL()+"/v1/echo"); code != 200 {
		t.Fatalf("status %d", code)
	}
	m, ok := findMetric(tel.collect(t), otelauth.MetricUsedPercent)
	if !ok {
		t.Fatal("no usage gauge")
	}
	got := map[string]float64{}
	for _, dp := range m.Data.(metricdata.Gauge[float64]).DataPoints {
		login, _ := dp.Attributes.Value(otelauth.AttrLogin)
		limit, _ := dp.Attributes.Value(otelauth.AttrUsageLimit)
		window, _ := dp.Attributes.Value(otelauth.AttrUsageWindow)
		got[login.AsString()+"/"+limit.AsString()+"/"+window.AsString()] = dp.Value
	}
	if len(got) != 2 || got["team-a/codex/primary"] != 37.5 || got["team-a/codex/secondary"] != 4 {
		t.Errorf("usage gauge = %v", got)
	}
}

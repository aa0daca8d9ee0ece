package otelauth_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/transporthook"
	"github.com/agentauth/agentauth/transport"
)

// telemetry is an in-memory meter and tracer provider pair.
type telemetry struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() {
		_ = tel.mp.Shutdown(context.Background())
		_ = tel.tp.Shutdown(context.Background())
	})
	return tel
}

func (tel *telemetry) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// ended returns the ended spans called name.
func (tel *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// sumPoint returns the value of the int64 sum point whose attributes are
// exactly want (key → value).
func sumPoint(t *testing.T, rm metricdata.ResourceMetrics, name string, want map[string]string) (int64, bool) {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return 0, false
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, not an int64 sum", name, m.Data)
	}
	for _, dp := range sum.DataPoints {
		if attrsEqual(dp.Attributes.ToSlice(), want) {
			return dp.Value, true
		}
	}
	return 0, false
}

func histogramCount(t *testing.T, rm metricdata.ResourceMetrics, name string, want map[string]string) (uint64, bool) {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return 0, false
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is %T, not a float64 histogram", name, m.Data)
	}
	for _, dp := range h.DataPoints {
		if attrsEqual(dp.Attributes.ToSlice(), want) {
			return dp.Count, true
		}
	}
	return 0, false
}

func attrsEqual(kvs []attribute.KeyValue, want map[string]string) bool {
	if len(kvs) != len(want) {
		return false
	}
	for _, kv := range kvs {
		if want[string(kv.Key)] != kv.Value.String() {
			return false
		}
	}
	return true
}

// agentServer starts the reference server with one agent runtime and
// returns Agent Identity credentials for it.
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
	rec := identity.Record{AgentRuntimeID: "rt-otel-" + t.Name(), AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-otel"}
	if err := srv.RegisterRuntime(rec); err != nil {
		t.Fatal(err)
	}
	return srv, &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: &rec}
}

// sniffer is a base transport that remembers every Authorization header
// it sends, so that tests can look for them in the exported telemetry.
type sniffer struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (s *sniffer) RoundTrip(req *http.Request) (*http.Response, error) {
	if v := req.Header.Get("Authorization"); v != "" {
		s.mu.Lock()
		s.seen = append(s.seen, v)
		s.mu.Unlock()
	}
	return s.base.RoundTrip(req)
}

func (s *sniffer) headers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// newTransport builds a transport on srv over a sniffing base.
func newTransport(t *testing.T, srv *identitytest.Server, cfg transport.Options) (*transport.Transport, *sniffer) {
	t.Helper()
	cfg.BaseURL = srv.URL()
	if cfg.AgentIdentity == nil {
		cfg.AgentIdentity = featureflag.New(false)
	}
	hb := &http.Transport{}
	t.Cleanup(hb.CloseIdleConnections)
	sn := &sniffer{base: hb}
	rt, err := transport.New(sn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rt, sn
}

func do(t *testing.T, rt http.RoundTripper, ctx context.Context, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// testCredential wraps a resolved credential for a test's transport.
func testCredential(c *credentials.Credentials) transport.Credential {
	return transporthook.NewCredential(c).(transport.Credential)
}

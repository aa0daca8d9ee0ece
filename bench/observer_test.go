package bench_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/agentauth/agentauth/bench/internal/workload"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/otelauth"
	"github.com/agentauth/agentauth/transport"
)

// observedThread builds the "thread" case (an AgentAssertion on a cached
// thread task) with obs as the transport's observer, warmed up: its task
// is registered and its first assertion signed.
func observedThread(tb testing.TB, obs *transport.Observer) *workload.Target {
	tb.Helper()
	ctx, cancel := workload.HandlerContext()
	tb.Cleanup(cancel)
	cred, err := workload.AgentIdentity(workload.NewRecord())
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := transport.New(workload.NewNopBase(), transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		HTTPClient:    (&workload.Registrar{}).Client(),
		Observer:      obs,
	})
	if err != nil {
		tb.Fatal(err)
	}
	c, _ := workload.CaseNamed("thread")
	t := &workload.Target{Case: c, RT: rt, Ctx: transport.WithThread(ctx, workload.ThreadKey), Transport: rt}
	if err := t.Warm(); err != nil {
		tb.Fatal(err)
	}
	return t
}

// otelObserver is the otelauth observer on SDK providers, as a service
// would install it: a meter provider with a reader and a tracer provider
// that samples every span.
func otelObserver(tb testing.TB) (*transport.Observer, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider()
	tb.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	return otelauth.Observer(mp, tp), reader
}

// BenchmarkObserver is the cached thread path without an observer and
// with the OpenTelemetry observer installed; compare the first with
// BenchmarkRoundTrip/thread of a build without the observer seam.
func BenchmarkObserver(b *testing.B) {
	b.Run("thread/nil/serial", func(b *testing.B) { workload.Serial(b, observedThread(b, nil)) })
	b.Run("thread/nil/parallel", func(b *testing.B) { workload.Parallel(b, observedThread(b, nil)) })
	b.Run("thread/otel/serial", func(b *testing.B) {
		obs, _ := otelObserver(b)
		workload.Serial(b, observedThread(b, obs))
	})
	b.Run("thread/otel/parallel", func(b *testing.B) {
		obs, _ := otelObserver(b)
		workload.Parallel(b, observedThread(b, obs))
	})
}

// TestObserverTargetsAreCached checks that both targets of
// BenchmarkObserver measure the cached path, and that the OpenTelemetry
// one is really observed (its warm-up registration was exported).
func TestObserverTargetsAreCached(t *testing.T) {
	obs, reader := otelObserver(t)
	for name, target := range map[string]*workload.Target{"nil": observedThread(t, nil), "otel": observedThread(t, obs)} {
		for range 100 {
			if err := target.Send(workload.NewRequest(target.Ctx, workload.ResourceURL)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if err := target.CheckCached(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var registrations int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == otelauth.MetricRegistrations {
				for _, dp := range s.DataPoints {
					registrations += dp.Value
				}
			}
		}
	}
	if registrations != 1 {
		t.Errorf("otel observer exported %d registrations, want the warm-up's 1", registrations)
	}
}

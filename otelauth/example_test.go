package otelauth_test

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/otelauth"
	"github.com/agentauth/agentauth/transport"
)

// Install the observer in the transport's Config and put otelhttp outside
// the transport, so that the auth work shows inside the client span. In a
// service, pass the application's meter and tracer providers (or nil for
// the global ones); this example records in memory against the loopback
// reference server.
func Example() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer mp.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())

	srv, cred := exampleIdentity()
	defer srv.Close()

	base := &http.Transport{}
	defer base.CloseIdleConnections()
	rt, err := transport.New(base, transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		Observer:      otelauth.Observer(mp, tp),
		BaseURL:       srv.URL(), // production: leave it empty
	})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp))}

	ctx := transport.WithThread(context.Background(), "thread-1")
	for range 3 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/models", nil)
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
	}

	var reg, clientSpan sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		switch {
		case s.Name() == otelauth.SpanRegistration:
			reg = s
		case s.SpanKind() == trace.SpanKindClient && clientSpan == nil:
			clientSpan = s
		}
	}
	fmt.Println("registration inside the first client span:", reg.Parent().SpanID() == clientSpan.SpanContext().SpanID())

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == otelauth.MetricRegistrationDuration {
				fmt.Printf("%s (%s): %d registration\n", m.Name, m.Unit, h.DataPoints[0].Count)
			}
		}
	}
	// Output:
	// registration inside the first client span: true
	// agentauth.task.registration.duration (s): 1 registration
}

// The wiring in a service: the observer on the global providers, otelhttp
// outside the agentauth transport so registration, provisioning and refresh
// spans are children of the client span.
func Example_otelhttp() {
	opts := transport.Options{}                 // the Codex home, as usual
	opts.Observer = otelauth.Observer(nil, nil) // nil: the global meter and tracer providers
	rt, err := transport.New(http.DefaultTransport, opts)
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: otelhttp.NewTransport(rt)} // otelhttp outside: auth spans inside the client span
	_ = client
}

// exampleIdentity starts the loopback reference server and gives it an
// agent identity, as auth.json would hold it.
func exampleIdentity() (*identitytest.Server, transport.Credential) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		panic(err)
	}
	key, err := identity.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	rec := identity.Record{AgentRuntimeID: "rt-otel-example", AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()), AccountID: "acct-example"}
	if err := srv.RegisterRuntime(rec); err != nil {
		panic(err)
	}
	recordJSON, err := rec.StorageJSON()
	if err != nil {
		panic(err)
	}
	cred, err := transport.AgentIdentity(recordJSON)
	if err != nil {
		panic(err)
	}
	return srv, cred
}

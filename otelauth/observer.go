package otelauth

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
	"weak"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/internal/transporthook"
	"github.com/agentauth/agentauth/transport"
)

// ScopeName is the instrumentation scope of every meter and tracer this
// package creates.
const ScopeName = "github.com/agentauth/agentauth/otelauth"

// Metric names.
const (
	MetricRegistrations        = "agentauth.task.registrations"
	MetricRegistrationDuration = "agentauth.task.registration.duration"
	MetricProvisionings        = "agentauth.agent.provisionings"
	MetricProvisioningDuration = "agentauth.agent.provisioning.duration"
	MetricRefreshes            = "agentauth.token.refreshes"
	MetricRefreshDuration      = "agentauth.token.refresh.duration"
	MetricRecoveries           = "agentauth.unauthorized.recoveries"
	MetricFallbacks            = "agentauth.bearer.fallbacks"
	MetricSignatures           = "agentauth.assertion.signatures"
	MetricCacheRemovals        = "agentauth.thread_cache.removals"
	MetricCachedThreads        = "agentauth.thread_cache.entries"
)

// Span names.
const (
	SpanRegistration = "agentauth.register_task"
	SpanProvisioning = "agentauth.provision_agent"
	SpanRefresh      = "agentauth.refresh_token"
)

// Attribute keys.
const (
	AttrTaskKind       = attribute.Key("agentauth.task.kind")
	AttrOutcome        = attribute.Key("agentauth.outcome")
	AttrErrorType      = attribute.Key("error.type")
	AttrStatusCode     = attribute.Key("http.response.status_code")
	AttrAttempt        = attribute.Key("agentauth.registration.attempt")
	AttrTrigger        = attribute.Key("agentauth.refresh.trigger")
	AttrMode           = attribute.Key("agentauth.mode")
	AttrRecoveryResult = attribute.Key("agentauth.recovery.result")
	AttrFallbackPhase  = attribute.Key("agentauth.fallback.phase")
	AttrRemovalReason  = attribute.Key("agentauth.thread_cache.removal.reason")
	AttrThreadKey      = attribute.Key("agentauth.thread.key")
)

// Span event names, added to the span of the request's context.
const (
	EventRecovery = "agentauth.unauthorized_recovery"
	EventFallback = "agentauth.bearer_fallback"
)

// durationBuckets are the histogram boundaries in seconds: those the HTTP
// semantic conventions recommend for client durations, up to the 30 s
// registration timeout.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30}

// Option configures [Observer].
type Option func(*config)

type config struct {
	threadKeys bool
	login      string // WithLogin (usage.go)
}

// WithThreadKeys puts the thread key on registration spans (attribute
// agentauth.thread.key). Thread keys are caller data and may be personal,
// so they are left out by default; they never become metric attributes,
// whose cardinality they would make unbounded.
func WithThreadKeys() Option { return func(c *config) { c.threadKeys = true } }

// Observer returns a [transport.Observer] that records the transport's
// authentication events as OpenTelemetry metrics through mp and spans
// through tp; nil means the global provider (otel.GetMeterProvider,
// otel.GetTracerProvider). Set it as transport.Options.Observer. One
// observer may serve any number of transports; the cached-threads gauge
// sums over the live ones (see the package doc for how it finds them).
//
// Errors creating instruments go to otel.Handle; the observer then records
// what it can.
func Observer(mp metric.MeterProvider, tp trace.TracerProvider, opts ...Option) *transport.Observer {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	o := &recorder{tracer: tp.Tracer(ScopeName), threadKeys: cfg.threadKeys, login: cfg.login}
	o.instruments(mp.Meter(ScopeName))
	obs := &transport.Observer{IncludeThreadKeys: cfg.threadKeys, OnStart: o.start, OnEvent: o.event}
	// The gauges read each transport's Stats at collection time: the
	// observer is told of every transport built with it (or a copy of it)
	// through a hook the transport package keeps unexported.
	transporthook.OnNew(obs, func(rt any) { o.attach(rt.(*transport.Transport)) })
	return obs
}

// event dispatches one transport event.
func (o *recorder) event(ctx context.Context, ev transport.Event) {
	switch ev.Op {
	case transport.OpRegistration:
		o.registration(ctx, ev)
	case transport.OpProvisioning:
		o.provisioning(ctx, ev)
	case transport.OpRefresh:
		o.refresh(ctx, ev)
	case transport.OpRecovery:
		o.recovery(ctx, ev)
	case transport.OpFallback:
		o.fallback(ctx, ev)
	case transport.OpSignature:
		o.signature(ev)
	case transport.OpCacheRemoval:
		o.cacheRemoval(ev)
	}
}

// The outcomes of a timed operation, as attribute values.
const (
	outcomeSuccess   = "success"
	outcomeTemporary = "temporary_failure"
	outcomePermanent = "permanent_failure"
	outcomeCanceled  = "canceled"
)

// outcome classifies an operation's error: a retry may fix a temporary
// failure (429, 5xx, timeout, connection error), not a permanent one.
func outcome(err error) string {
	switch {
	case err == nil:
		return outcomeSuccess
	case errors.Is(err, context.Canceled):
		return outcomeCanceled
	case transport.IsTemporary(err):
		return outcomeTemporary
	}
	return outcomePermanent
}

type recorder struct {
	tracer     trace.Tracer
	threadKeys bool
	login      string // WithLogin (usage.go)

	regs, provs, refreshes, recoveries, fallbacks, signatures, removals metric.Int64Counter
	regDur, provDur, refreshDur                                         metric.Float64Histogram

	mu         sync.Mutex
	transports []weak.Pointer[transport.Transport] // pruned at each collection and on growth
}

func (o *recorder) instruments(m metric.Meter) {
	handle := func(err error) {
		if err != nil {
			otel.Handle(err)
		}
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		handle(err)
		return c
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		handle(err)
		return h
	}
	o.regs = counter(MetricRegistrations, "{registration}", "Task registrations at the AuthAPI, by task kind and outcome.")
	o.regDur = histogram(MetricRegistrationDuration, "Duration of task registrations.")
	o.provs = counter(MetricProvisionings, "{provisioning}", "Agent identity provisionings for a ChatGPT login, by outcome.")
	o.provDur = histogram(MetricProvisioningDuration, "Duration of agent identity provisionings.")
	o.refreshes = counter(MetricRefreshes, "{refresh}", "Token refreshes, by trigger and outcome.")
	o.refreshDur = histogram(MetricRefreshDuration, "Duration of token refreshes.")
	o.recoveries = counter(MetricRecoveries, "{response}", "Responses 401 handled, by mode and result.")
	o.fallbacks = counter(MetricFallbacks, "{fallback}", "Bearer fallbacks of a ChatGPT login starting and ending.")
	o.signatures = counter(MetricSignatures, "{signature}", "AgentAssertions signed (reused ones are not counted), by task kind.")
	o.removals = counter(MetricCacheRemovals, "{entry}", "Thread tasks dropped by the cache, by reason.")
	_, err := m.Int64ObservableUpDownCounter(MetricCachedThreads, metric.WithUnit("{entry}"),
		metric.WithDescription("Thread tasks (and thread keys backing off) held by the transports' caches."),
		metric.WithInt64Callback(o.observeCached))
	handle(err)
	o.usageInstruments(m)
}

// attach keeps a weak reference to a new transport for the gauge.
func (o *recorder) attach(t *transport.Transport) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.transports) == cap(o.transports) {
		o.prune()
	}
	o.transports = append(o.transports, weak.Make(t))
}

// prune drops the references of collected transports. o.mu is held.
func (o *recorder) prune() {
	live := o.transports[:0]
	for _, w := range o.transports {
		if w.Value() != nil {
			live = append(live, w)
		}
	}
	clear(o.transports[len(live):])
	o.transports = live
}

func (o *recorder) observeCached(_ context.Context, obs metric.Int64Observer) error {
	o.mu.Lock()
	o.prune()
	live := make([]*transport.Transport, 0, len(o.transports))
	for _, w := range o.transports {
		if t := w.Value(); t != nil {
			live = append(live, t)
		}
	}
	o.mu.Unlock()
	var n int64
	for _, t := range live {
		n += int64(t.Stats().CachedThreads)
	}
	obs.Observe(n)
	return nil
}

// started is what OnStart leaves in the operation's context, so that the
// operation's event ends the span it started rather than a span of the
// caller's.
type started struct {
	op   transport.Operation
	span trace.Span
}

type startedKey struct{}

func spanName(op transport.Operation) string {
	switch op {
	case transport.OpProvisioning:
		return SpanProvisioning
	case transport.OpRegistration:
		return SpanRegistration
	}
	return SpanRefresh
}

func (o *recorder) start(ctx context.Context, op transport.Operation) context.Context {
	ctx, span := o.tracer.Start(ctx, spanName(op), trace.WithSpanKind(trace.SpanKindInternal))
	return context.WithValue(ctx, startedKey{}, started{op: op, span: span})
}

// finish ends the span of a timed operation: the one start began, or, for
// an operation reported only after the fact (a refresh a token source did
// on its own), a span built from the event's start and duration, child of
// the span in ctx.
func (o *recorder) finish(ctx context.Context, op transport.Operation, start time.Time, d time.Duration, outcome string, attrs []attribute.KeyValue) {
	s, ours := ctx.Value(startedKey{}).(started)
	if !ours || s.op != op {
		_, s.span = o.tracer.Start(ctx, spanName(op), trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(start))
	}
	if !s.span.IsRecording() {
		s.span.End()
		return
	}
	s.span.SetAttributes(attrs...)
	if outcome != outcomeSuccess {
		s.span.SetStatus(codes.Error, outcome)
	}
	if ours && s.op == op {
		s.span.End()
	} else {
		s.span.End(trace.WithTimestamp(start.Add(d)))
	}
}

// outcomeAttrs are the attributes every timed operation's metrics carry:
// the outcome and, for a failure, error.type (the HTTP status when there is
// one, else the outcome).
func outcomeAttrs(attrs []attribute.KeyValue, outcome string, status int) []attribute.KeyValue {
	attrs = append(attrs, AttrOutcome.String(outcome))
	if outcome != outcomeSuccess {
		et := outcome
		if status != 0 {
			et = strconv.Itoa(status)
		}
		attrs = append(attrs, AttrErrorType.String(et))
	}
	return attrs
}

// spanAttrs adds what only spans carry: the status code and extras.
func spanAttrs(metricAttrs []attribute.KeyValue, status int, extra ...attribute.KeyValue) []attribute.KeyValue {
	attrs := append(append([]attribute.KeyValue(nil), metricAttrs...), extra...)
	if status != 0 {
		attrs = append(attrs, AttrStatusCode.Int(status))
	}
	return attrs
}

func (o *recorder) registration(ctx context.Context, ev transport.Event) {
	out := outcome(ev.Err)
	attrs := outcomeAttrs([]attribute.KeyValue{AttrTaskKind.String(ev.Task)}, out, ev.StatusCode)
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	o.regs.Add(ctx, 1, set)
	o.regDur.Record(ctx, ev.Duration.Seconds(), set)
	extra := []attribute.KeyValue{AttrAttempt.Int(ev.Attempt)}
	if o.threadKeys && ev.Thread != "" {
		extra = append(extra, AttrThreadKey.String(ev.Thread))
	}
	o.finish(ctx, transport.OpRegistration, ev.Start, ev.Duration, out, spanAttrs(attrs, ev.StatusCode, extra...))
}

func (o *recorder) provisioning(ctx context.Context, ev transport.Event) {
	out := outcome(ev.Err)
	attrs := outcomeAttrs(nil, out, ev.StatusCode)
	if ev.Detail != "loaded" { // an identity read from the store was not provisioned
		set := metric.WithAttributeSet(attribute.NewSet(attrs...))
		o.provs.Add(ctx, 1, set)
		o.provDur.Record(ctx, ev.Duration.Seconds(), set)
	}
	var extra []attribute.KeyValue
	if ev.Attempt > 0 {
		extra = append(extra, AttrAttempt.Int(ev.Attempt))
	}
	o.finish(ctx, transport.OpProvisioning, ev.Start, ev.Duration, out, spanAttrs(attrs, ev.StatusCode, extra...))
}

func (o *recorder) refresh(ctx context.Context, ev transport.Event) {
	out := outcome(ev.Err)
	attrs := outcomeAttrs([]attribute.KeyValue{AttrTrigger.String(ev.Detail)}, out, ev.StatusCode)
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	o.refreshes.Add(ctx, 1, set)
	o.refreshDur.Record(ctx, ev.Duration.Seconds(), set)
	o.finish(ctx, transport.OpRefresh, ev.Start, ev.Duration, out, spanAttrs(attrs, ev.StatusCode))
}

func (o *recorder) recovery(ctx context.Context, ev transport.Event) {
	attrs := []attribute.KeyValue{AttrMode.String(ev.Task), AttrRecoveryResult.String(ev.Detail)}
	o.recoveries.Add(ctx, 1, metric.WithAttributes(attrs...))
	trace.SpanFromContext(ctx).AddEvent(EventRecovery, trace.WithAttributes(attrs...))
}

func (o *recorder) fallback(ctx context.Context, ev transport.Event) {
	attrs := []attribute.KeyValue{AttrFallbackPhase.String(ev.Detail)}
	o.fallbacks.Add(ctx, 1, metric.WithAttributes(attrs...))
	if ev.StatusCode != 0 {
		attrs = append(attrs, AttrStatusCode.Int(ev.StatusCode))
	}
	trace.SpanFromContext(ctx).AddEvent(EventFallback, trace.WithAttributes(attrs...))
}

// Precomputed attribute options for the events without a context, which
// are reported most often.
var (
	signedThread  = metric.WithAttributeSet(attribute.NewSet(AttrTaskKind.String("thread")))
	signedProcess = metric.WithAttributeSet(attribute.NewSet(AttrTaskKind.String("process")))
)

func (o *recorder) signature(ev transport.Event) {
	opt := signedProcess
	if ev.Task == "thread" {
		opt = signedThread
	}
	o.signatures.Add(context.Background(), 1, opt)
}

func (o *recorder) cacheRemoval(ev transport.Event) {
	o.removals.Add(context.Background(), 1, metric.WithAttributes(AttrRemovalReason.String(ev.Detail)))
}

// Package otelauth exports the authentication work of an agentauth
// transport as OpenTelemetry metrics and spans.
//
// [Observer] returns a transport.Observer; set it as
// transport.Options.Observer:
//
//	opts.Observer = otelauth.Observer(meterProvider, tracerProvider)
//	rt, err := transport.New(base, opts)
//
// # Spans
//
// Each task registration, agent provisioning and token refresh is one
// internal span (agentauth.register_task, agentauth.provision_agent,
// agentauth.refresh_token). A registration is shared by every request
// waiting for the same thread and runs detached from their cancellation,
// but it runs on a context that keeps the values of the request that
// started it: its span is a child of that request's span, and the other
// waiters are not linked to it. The span is started when the operation
// starts and put in the operation's context, so the registration's own
// HTTP request, if its client is instrumented, is a child of it. A refresh
// that a token source performs on its own is reported after the fact: its
// span is built from the reported start and duration, as a child of the
// span in the context the source passed (none for a background refresh).
//
// 401 recoveries and Bearer fallbacks are span events
// (agentauth.unauthorized_recovery, agentauth.bearer_fallback) on the
// request's span.
//
// # Composing with otelhttp
//
// Put otelhttp outside the agentauth transport:
//
//	rt, _ := transport.New(http.DefaultTransport, opts)
//	client := &http.Client{Transport: otelhttp.NewTransport(rt)}
//
// otelhttp then starts the client span and calls the agentauth transport
// with that span in the request's context, so registration, provisioning
// and refresh spans appear inside the client span, and the client span's
// duration includes the time a cold thread waited for its task. The
// traceparent header otelhttp sets is kept: the agentauth transport copies
// every header of the request. Wrapped the other way (agentauth outside
// otelhttp), the client span starts only after authentication and the auth
// spans are its siblings, parented to whatever span the caller had.
//
// To also trace the registration requests themselves, give the transport
// an instrumented registration client (not an instrumented base, which
// would make a second client span for every request):
//
//	cfg.RegistrationClient = &http.Client{
//		Transport:     otelhttp.NewTransport(http.DefaultTransport),
//		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
//	}
//
// # Metrics
//
// Counters (unit in braces) and histograms (seconds), with their attributes:
//
//	agentauth.task.registrations          {registration}  agentauth.task.kind, agentauth.outcome, error.type
//	agentauth.task.registration.duration  s               agentauth.task.kind, agentauth.outcome, error.type
//	agentauth.agent.provisionings         {provisioning}  agentauth.outcome, error.type
//	agentauth.agent.provisioning.duration s               agentauth.outcome, error.type
//	agentauth.token.refreshes             {refresh}       agentauth.refresh.trigger, agentauth.outcome, error.type
//	agentauth.token.refresh.duration      s               agentauth.refresh.trigger, agentauth.outcome, error.type
//	agentauth.unauthorized.recoveries     {response}      agentauth.mode, agentauth.recovery.result
//	agentauth.bearer.fallbacks            {fallback}      agentauth.fallback.phase
//	agentauth.assertion.signatures        {signature}     agentauth.task.kind
//	agentauth.thread_cache.removals       {entry}         agentauth.thread_cache.removal.reason
//	agentauth.thread_cache.entries        {entry}         (observable up-down counter, summed over transports)
//
// Values: agentauth.task.kind is thread or process; agentauth.outcome is
// success, temporary_failure, permanent_failure or canceled; error.type,
// present on failures only, is the HTTP status code ("503") or else the
// outcome; agentauth.refresh.trigger is proactive or unauthorized;
// agentauth.mode is thread-task, process-task or bearer;
// agentauth.recovery.result is replayed, not_replayable, unsupported or
// failed; agentauth.fallback.phase is start or end;
// agentauth.thread_cache.removal.reason is evicted or expired. Spans add
// http.response.status_code and agentauth.registration.attempt, and, only
// with [WithThreadKeys], agentauth.thread.key.
//
// # Gauges and composing observers
//
// The two observable instruments (agentauth.thread_cache.entries and
// agentauth.usage.used_percent) are read from transport.Stats at
// collection time. The observer learns of each transport without any
// exported hook: the transport.Observer returned by [Observer] carries an
// unexported hook, set through the agentauth module's
// internal/transporthook package, that transport.New calls with the
// transport it builds; the observer keeps it weakly, so a dropped
// transport is still collected. The hook travels with the struct: to add
// your own events, copy it and wrap OnEvent, keeping the copy's other
// fields:
//
//	obs := *otelauth.Observer(mp, tp)
//	next := obs.OnEvent
//	obs.OnEvent = func(ctx context.Context, ev transport.Event) { next(ctx, ev); mine(ctx, ev) }
//
// A transport.Observer built afresh from the returned OnStart and OnEvent
// reports every counter, histogram and span but not the two gauges.
//
// No attribute, span name, status or event ever holds a credential: the
// transport's events carry none, and no error text is exported.
package otelauth

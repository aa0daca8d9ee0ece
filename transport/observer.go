package transport

import (
	"context"
	"errors"
	"time"

	"golang.org/x/oauth2"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/transporthook"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/usage"
)

// Observer receives the transport's authentication events, for metrics,
// traces or logs; the otelauth module builds one that exports OpenTelemetry
// metrics and spans. New copies it, so later changes have no effect.
//
// A nil Observer, or a nil OnEvent, costs nothing: no event is built. The
// cached request path (a cached task, Bearer header or assertion) has no
// event at all. Events are reported synchronously on the goroutine that
// produced them (often a registration detached from any one request), so
// the functions must be safe for concurrent use and quick. Events carry no
// credential; thread keys, which are caller data, only with
// IncludeThreadKeys. Durations are measured on the real clock.
type Observer struct {
	// IncludeThreadKeys fills Event.Thread; false (the default) leaves it empty.
	IncludeThreadKeys bool

	// OnStart, if set with OnEvent, is called as a timed operation
	// (OpProvisioning, OpRegistration, OpRefresh) begins and returns the
	// context it runs on and is reported with (a tracer starts its span
	// here); ctx keeps the values of the request that started it.
	OnStart func(ctx context.Context, op Operation) context.Context

	// OnEvent receives every event. An OpCacheRemoval event is reported
	// with the thread cache's lock held: it must not call the Transport.
	OnEvent func(ctx context.Context, ev Event)

	// onNew is called by New with each transport built (package otelauth
	// sets it through internal/transporthook to read Stats for its gauges).
	onNew func(t *Transport)
}

// Operation names what an [Event] reports.
type Operation uint8

// The operations. OpProvisioning: an agent identity provisioned (or
// loaded) for a ChatGPT login. OpRegistration: a task registration.
// OpRefresh: a token refresh. OpRecovery: what became of a request
// answered 401. OpFallback: a ChatGPT login starting or ending a Bearer
// fallback. OpSignature: an AgentAssertion signed (not reused).
// OpCacheRemoval: a thread task the cache dropped on its own. OpUsage:
// the usage the login's answers report changed.
const (
	OpProvisioning Operation = iota + 1
	OpRegistration
	OpRefresh
	OpRecovery
	OpFallback
	OpSignature
	OpCacheRemoval
	OpUsage
)

var opNames = [...]string{"unknown", "provisioning", "registration", "refresh", "recovery", "fallback", "signature", "cache_removal", "usage"}

// String returns the operation's name ("provisioning", …, "cache_removal", "usage") or "unknown".
func (o Operation) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return opNames[0]
}

// Event is one authentication event; the fields an operation does not
// use are zero.
type Event struct {
	Op Operation
	// Start and Duration time a provisioning, registration or refresh.
	// For a fallback, Duration is the cooldown at the start and how long
	// the login used Bearer (on the transport's clock) at the end.
	Start    time.Time
	Duration time.Duration
	// Err is why a provisioning, registration or refresh failed, nil on
	// success; classify it with IsTemporary and context.Canceled. It is
	// the error the operation returned, which never holds a credential.
	Err error
	// StatusCode is the HTTP status of a failure, of the answer that made
	// a fallback start, or of the answer that reported usage; 0 if none.
	StatusCode int
	// Attempt is a registration's consecutive attempt for its task (1,
	// then n+1 after n failures), or the number of agent-registration
	// requests a failed provisioning made (0 when unknown).
	Attempt int
	// Task is "thread" or "process" for a registration or signature; for
	// a recovery, the mode of the rejected request ([resolver.Mode]'s String).
	Task string
	// Thread is the thread key, only with IncludeThreadKeys.
	Thread string
	// Detail qualifies the event: a refresh's trigger ("proactive",
	// "unauthorized"), a recovery's result ("replayed", "not_replayable",
	// "unsupported", "failed"), a fallback's phase ("start", "end"), a
	// cache removal's reason ("evicted", "expired"), or "loaded" for an
	// identity read from the IdentityStore or shared in the process
	// rather than provisioned.
	Detail string
	// Usage is what the answer reported, for OpUsage (a copy).
	Usage *usage.Snapshot
}

// The event details the transport's code sets.
const (
	taskThread  = "thread"
	taskProcess = "process"

	recoveryReplayed      = "replayed"
	recoveryNotReplayable = "not_replayable"
	recoveryUnsupported   = "unsupported"
	recoveryFailed        = "failed"

	fallbackStart = "start"
	fallbackEnd   = "end"

	provisioningLoaded = "loaded"
)

// errRegistrationPanicked is the Err of a registration whose RegisterFunc
// panicked: the permanent failure the cache turns it into.
var errRegistrationPanicked = errors.New("transport: task registration panicked")

func init() {
	transporthook.OnNew = func(obs any, fn func(rt any)) {
		obs.(*Observer).onNew = func(t *Transport) { fn(t) }
	}
}

// observer is a transport's copy of its Observer. A nil *observer is valid
// and reports nothing; every method starts with that check, so an event
// site is one call whatever the configuration.
type observer struct{ Observer }

func newObserver(o *Observer) *observer {
	if o == nil || (o.OnEvent == nil && o.onNew == nil) {
		return nil
	}
	return &observer{*o}
}

// on reports whether events are wanted.
func (o *observer) on() bool { return o != nil && o.OnEvent != nil }

func (o *observer) start(ctx context.Context, op Operation) context.Context {
	if o.OnStart == nil {
		return ctx
	}
	if c := o.OnStart(ctx, op); c != nil {
		return c
	}
	return ctx
}

func (o *observer) thread(key string) string {
	if o.IncludeThreadKeys {
		return key
	}
	return ""
}

// statusOf is the HTTP status an operation's error carries, 0 if none.
func statusOf(err error) int {
	var re *identity.RegistrationError
	var oe *oauth2.RetrieveError
	switch {
	case err == nil:
	case errors.As(err, &re):
		return re.StatusCode
	case errors.As(err, &oe) && oe.Response != nil:
		return oe.Response.StatusCode
	}
	return 0
}

// registerThread wraps a thread task's RegisterFunc to report each call.
func (o *observer) registerThread(fn taskcache.RegisterFunc) taskcache.RegisterFunc {
	if !o.on() {
		return fn
	}
	return func(ctx context.Context, thread string) (id string, err error) {
		ctx, done := o.registration(ctx, taskThread, thread)
		returned := false
		defer func() { done(err, returned) }()
		id, err = fn(ctx, thread)
		returned = true
		return id, err
	}
}

// registerProcess wraps the process task's RegisterFunc likewise.
func (o *observer) registerProcess(fn func(context.Context) (string, error)) func(context.Context) (string, error) {
	if !o.on() {
		return fn
	}
	return func(ctx context.Context) (id string, err error) {
		ctx, done := o.registration(ctx, taskProcess, "")
		returned := false
		defer func() { done(err, returned) }()
		id, err = fn(ctx)
		returned = true
		return id, err
	}
}

// registration starts timing one registration, returning the context to
// run it on and a func that reports it from a deferred call, so that a
// RegisterFunc that panics (returned is false) is reported as the
// permanent failure the cache turns it into.
func (o *observer) registration(ctx context.Context, task, thread string) (context.Context, func(err error, returned bool)) {
	start := time.Now()
	attempt := taskcache.Attempt(ctx)
	octx := o.start(ctx, OpRegistration)
	return octx, func(err error, returned bool) {
		if !returned {
			err = errRegistrationPanicked
		}
		o.OnEvent(octx, Event{Op: OpRegistration, Task: task, Thread: o.thread(thread), Attempt: attempt,
			Start: start, Duration: time.Since(start), Err: err, StatusCode: statusOf(err)})
	}
}

// provision runs one provisioning, reporting it. An identity only loaded
// (from the IdentityStore, such as auth.json, or the process-wide table)
// was not provisioned: fn leaves *registered false and the event says
// "loaded", so a count of provisionings can leave it out.
func (o *observer) provision(ctx context.Context, registered *bool, fn func(context.Context) (*sharedIdentity, error)) (*sharedIdentity, error) {
	if !o.on() {
		return fn(ctx)
	}
	start := time.Now()
	ctx = o.start(ctx, OpProvisioning)
	rec, err := fn(ctx)
	ev := Event{Op: OpProvisioning, Start: start, Duration: time.Since(start), Err: err, StatusCode: statusOf(err)}
	if err == nil && !*registered {
		ev.Detail = provisioningLoaded
	}
	var re *identity.RegistrationError
	if errors.As(err, &re) {
		ev.Attempt = re.Attempts
	}
	o.OnEvent(ctx, ev)
	return rec, err
}

// refresh asks r for a token fresher than rejected after a 401, reporting
// the refresh unless the source reports its own. The origin is zero when r
// does not tell it (not a credentials.OriginRefresher).
func (o *observer) refresh(ctx context.Context, r credentials.Refresher, rejected *credentials.Token) (*credentials.Token, credentials.RefreshOrigin, error) {
	ask := func(ctx context.Context) (*credentials.Token, credentials.RefreshOrigin, error) {
		if or, ok := r.(credentials.OriginRefresher); ok {
			return or.RefreshWithOrigin(ctx, rejected)
		}
		tok, err := r.Refresh(ctx, rejected)
		return tok, 0, err
	}
	if _, reports := r.(credentials.RefreshReporter); !o.on() || reports {
		return ask(ctx)
	}
	start := time.Now()
	ctx = o.start(ctx, OpRefresh)
	tok, origin, err := ask(ctx)
	o.OnEvent(ctx, refreshEvent(credentials.RefreshEvent{Trigger: credentials.RefreshUnauthorized, Start: start, Duration: time.Since(start), Err: err}))
	return tok, origin, err
}

func refreshEvent(ev credentials.RefreshEvent) Event {
	return Event{Op: OpRefresh, Detail: ev.Trigger.String(), Start: ev.Start, Duration: ev.Duration, Err: ev.Err, StatusCode: statusOf(ev.Err)}
}

// recovery reports the handling of a 401: result is one of the recovery*
// details.
func (o *observer) recovery(ctx context.Context, mode resolver.Mode, result string) {
	if !o.on() {
		return
	}
	o.OnEvent(ctx, Event{Op: OpRecovery, Task: mode.String(), Detail: result})
}

// fallbackStart reports a login falling back to Bearer because of err.
func (o *observer) fallbackStart(ctx context.Context, cooldown time.Duration, err error) {
	if !o.on() {
		return
	}
	o.OnEvent(ctx, Event{Op: OpFallback, Detail: fallbackStart, Duration: cooldown, StatusCode: statusOf(err)})
}

// fallbackEnd reports the end of a fallback that was to last until until
// (on the config clock), if there was one.
func (o *observer) fallbackEnd(ctx context.Context, until time.Time, cooldown time.Duration, now time.Time) {
	if !o.on() || until.IsZero() {
		return
	}
	o.OnEvent(ctx, Event{Op: OpFallback, Detail: fallbackEnd, Duration: max(0, now.Sub(until.Add(-cooldown)))})
}

// watchSigner makes s report its signatures.
func (o *observer) watchSigner(s *taskcache.Signer) {
	if !o.on() {
		return
	}
	s.SetObserver(func(task *taskcache.Task) {
		ev := Event{Op: OpSignature, Task: taskProcess}
		if task.Key() != "" {
			ev.Task, ev.Thread = taskThread, o.thread(task.Key())
		}
		o.OnEvent(context.Background(), ev)
	})
}

// cacheOptions adds the removal hook to the thread cache's options,
// keeping one the caller set.
func (o *observer) cacheOptions(opts taskcache.CacheOptions) taskcache.CacheOptions {
	if !o.on() {
		return opts
	}
	prev := opts.OnRemove
	opts.OnRemove = func(key string, why taskcache.RemovalReason) {
		if prev != nil {
			prev(key, why)
		}
		o.OnEvent(context.Background(), Event{Op: OpCacheRemoval, Detail: why.String(), Thread: o.thread(key)})
	}
	return opts
}

// usage reports a change of the usage an answer with status reported.
func (o *observer) usage(ctx context.Context, snap *usage.Snapshot, status int) {
	if !o.on() {
		return
	}
	o.OnEvent(ctx, Event{Op: OpUsage, Usage: snap, StatusCode: status})
}

// attach connects a new transport: its token source's refresh reports and
// the onNew hook.
func (o *observer) attach(t *Transport) {
	if o == nil {
		return
	}
	if t.bearer != nil && o.OnEvent != nil {
		if rr, ok := t.bearer.src.(credentials.RefreshReporter); ok {
			rr.SetRefreshObserver(func(ctx context.Context, ev credentials.RefreshEvent) {
				o.OnEvent(ctx, refreshEvent(ev))
			})
		}
	}
	if o.onNew != nil {
		o.onNew(t)
	}
}

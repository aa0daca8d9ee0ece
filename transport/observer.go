package transport

import (
	"context"
	"errors"
	"time"

	"golang.org/x/oauth2"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
)

// Observer receives the transport's authentication events, for metrics,
// traces or logs; the otelauth module builds one that exports OpenTelemetry
// metrics and spans. Set it as [config.Observer]; New copies it, so later
// changes to the struct have no effect.
//
// It is a struct of optional functions rather than an interface so that a
// nil Observer, or a nil field, costs one pointer comparison at an event
// site and nothing at all on the cached request path (which has no event
// sites: a cached thread or process task, a cached Bearer header and a
// reused assertion report nothing), and so that new event kinds can be
// added as new fields without breaking existing observers.
//
// Events are reported synchronously on the goroutine that produced them
// (often a registration running detached from any one request), so the
// functions must be safe for concurrent use and quick. Events never carry a
// credential (no token, key, assertion or error text); thread keys, which
// are caller data and may be personal, appear only with IncludeThreadKeys.
// Durations are measured on the real clock, not the transport's injectable clock.
type Observer struct {
	// IncludeThreadKeys fills the Thread field of the events that concern
	// one thread. false (the default) leaves it empty.
	IncludeThreadKeys bool

	// OnStart, if set, is called as a timed operation (provisioning, task
	// registration, a token refresh the transport performs) begins, when
	// the operation's own On* function is set too. It returns the context
	// the operation runs on (ctx itself if it has nothing to add), and the
	// operation's event is reported with that context: a tracer starts its
	// span here, so that the operation's HTTP requests become its children,
	// and ends it in the event. ctx carries the values (trace span, logger)
	// of the request that started the operation, even when the operation
	// runs detached from that request's cancellation.
	OnStart func(ctx context.Context, op Operation) context.Context

	// OnProvisioning reports each attempt to provision an agent identity
	// for a ChatGPT login. Reusing a stored one is reported as a success
	// with Loaded set: count provisionings without those.
	OnProvisioning func(ctx context.Context, ev ProvisioningEvent)

	// OnRegistration reports each task registration at the AuthAPI.
	OnRegistration func(ctx context.Context, ev RegistrationEvent)

	// OnRefresh reports each token refresh: a refresh the transport asked
	// for after a 401, or one a [credentials.RefreshReporter] source
	// reported (proactive ones included).
	OnRefresh func(ctx context.Context, ev RefreshEvent)

	// OnRecovery reports what became of each request answered 401.
	OnRecovery func(ctx context.Context, ev RecoveryEvent)

	// OnFallback reports a ChatGPT login starting to use Bearer because
	// provisioning (or a task registration for its provisioned identity)
	// was unavailable, and returning to agent assertions.
	OnFallback func(ctx context.Context, ev FallbackEvent)

	// OnSignature reports each AgentAssertion signed (not each one reused).
	OnSignature func(ev SignatureEvent)

	// OnCacheRemoval reports thread tasks the cache dropped on its own. It
	// is called with the cache's lock held: it must not call the Transport.
	OnCacheRemoval func(ev CacheEvent)

	// OnUsage reports that the usage the login's answers report changed
	// (see [UsageEvent]).
	OnUsage func(ctx context.Context, ev UsageEvent)

	// OnNew, if set, is called once by New with the transport it built, for
	// metrics read from [Transport.Stats] at collection time. Hold the
	// transport weakly (package weak) or it is never garbage collected.
	OnNew func(t *Transport)
}

// Operation names a timed operation passed to [Observer.OnStart].
type Operation uint8

// The operations.
const (
	OpProvisioning Operation = iota + 1
	OpRegistration
	OpRefresh
)

// String returns "provisioning", "registration", "refresh" or "unknown".
func (o Operation) String() string {
	switch o {
	case OpProvisioning:
		return "provisioning"
	case OpRegistration:
		return "registration"
	case OpRefresh:
		return "refresh"
	}
	return "unknown"
}

// TaskKind tells a thread task from the process task.
type TaskKind uint8

// The task kinds.
const (
	TaskThread TaskKind = iota + 1
	TaskProcess
)

// String returns "thread", "process" or "unknown".
func (k TaskKind) String() string {
	switch k {
	case TaskThread:
		return "thread"
	case TaskProcess:
		return "process"
	}
	return "unknown"
}

// Outcome classifies how an operation ended.
type Outcome uint8

// The outcomes.
const (
	// OutcomeSuccess: the operation succeeded.
	OutcomeSuccess Outcome = iota
	// OutcomeTemporary: it failed in a way a retry may fix (429, 5xx,
	// timeout, connection error).
	OutcomeTemporary
	// OutcomePermanent: it failed in a way a retry will not fix (other
	// 4xx, malformed response, no newer token, panic).
	OutcomePermanent
	// OutcomeCanceled: the context it ran on was canceled.
	OutcomeCanceled
)

// String returns "success", "temporary_failure", "permanent_failure",
// "canceled" or "unknown".
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeTemporary:
		return "temporary_failure"
	case OutcomePermanent:
		return "permanent_failure"
	case OutcomeCanceled:
		return "canceled"
	}
	return "unknown"
}

// ProvisioningEvent is one agent provisioning for a ChatGPT login.
type ProvisioningEvent struct {
	Start    time.Time
	Duration time.Duration
	Outcome  Outcome
	// StatusCode is the HTTP status of the failed registration, 0 if none.
	StatusCode int
	// Attempts is the number of agent-registration requests made when the
	// provisioning failed after retries, 0 when unknown.
	Attempts int
	// Loaded is set when no agent was registered: the identity was read
	// from the IdentityStore (such as auth.json) or shared by another
	// transport of the process.
	Loaded bool
}

// RegistrationEvent is one task registration.
type RegistrationEvent struct {
	Kind TaskKind
	// Thread is the thread key, only with [Observer.IncludeThreadKeys].
	Thread string
	// Attempt is which consecutive attempt for this task it was: 1 for the
	// first, n+1 after n failures in a row.
	Attempt    int
	Start      time.Time
	Duration   time.Duration
	Outcome    Outcome
	StatusCode int // HTTP status of a failure, 0 if none
}

// RefreshTrigger says why a token was refreshed.
type RefreshTrigger = credentials.RefreshTrigger

// The refresh triggers.
const (
	RefreshProactive    = credentials.RefreshProactive
	RefreshUnauthorized = credentials.RefreshUnauthorized
)

// RefreshEvent is one token refresh.
type RefreshEvent struct {
	Trigger    RefreshTrigger
	Start      time.Time
	Duration   time.Duration
	Outcome    Outcome
	StatusCode int // HTTP status of a failure, 0 if none
}

// RecoveryResult is what became of a request answered 401.
type RecoveryResult uint8

// The recovery results.
const (
	// RecoveryReplayed: a fresh credential was obtained and the request
	// sent once more.
	RecoveryReplayed RecoveryResult = iota + 1
	// RecoveryNotReplayable: the request's body cannot be sent again; the
	// 401 was returned (a rejected task was still dropped).
	RecoveryNotReplayable
	// RecoveryUnsupported: the credential cannot be renewed (a token
	// source that does not refresh); the 401 was returned.
	RecoveryUnsupported
	// RecoveryFailed: renewing the credential failed; the 401 was returned.
	RecoveryFailed
)

// String returns "replayed", "not_replayable", "unsupported", "failed" or
// "unknown".
func (r RecoveryResult) String() string {
	switch r {
	case RecoveryReplayed:
		return "replayed"
	case RecoveryNotReplayable:
		return "not_replayable"
	case RecoveryUnsupported:
		return "unsupported"
	case RecoveryFailed:
		return "failed"
	}
	return "unknown"
}

// RecoveryEvent is the handling of one 401.
type RecoveryEvent struct {
	Mode   resolver.Mode // the mode the rejected request was sent in
	Result RecoveryResult
}

// FallbackPhase tells the start of a Bearer fallback from its end.
type FallbackPhase uint8

// The fallback phases.
const (
	// FallbackStart: provisioning, or a task registration for the
	// provisioned identity, was unavailable; the login uses Bearer for
	// Cooldown.
	FallbackStart FallbackPhase = iota + 1
	// FallbackEnd: provisioning or the identity's task succeeded after a
	// fallback; the login uses agent assertions again.
	FallbackEnd
)

// String returns "start", "end" or "unknown".
func (p FallbackPhase) String() string {
	switch p {
	case FallbackStart:
		return "start"
	case FallbackEnd:
		return "end"
	}
	return "unknown"
}

// FallbackEvent is a Bearer fallback starting or ending.
type FallbackEvent struct {
	Phase FallbackPhase
	// Cooldown is how long Bearer is used before provisioning is retried.
	Cooldown time.Duration
	// Duration, at the end, is how long the login used Bearer (on
	// the transport's clock); 0 at the start.
	Duration time.Duration
	// StatusCode, at the start, is the HTTP status that made provisioning
	// or task registration unavailable, 0 if none (a timeout or
	// connection error).
	StatusCode int
}

// SignatureEvent is one AgentAssertion signed.
type SignatureEvent struct {
	Kind   TaskKind
	Thread string // only with [Observer.IncludeThreadKeys]
}

// CacheEvent is one thread task dropped by the cache on its own.
type CacheEvent struct {
	Reason taskcache.RemovalReason
	Thread string // only with [Observer.IncludeThreadKeys]
}

// observer is a transport's copy of its Observer. A nil *observer is valid
// and reports nothing; every method starts with that check, so an event
// site is one call whatever the configuration.
type observer struct{ Observer }

func newObserver(o *Observer) *observer {
	if o == nil {
		return nil
	}
	return &observer{*o}
}

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

// classify turns an operation's error into an outcome and an HTTP status.
func classify(err error) (Outcome, int) {
	if err == nil {
		return OutcomeSuccess, 0
	}
	status := 0
	var re *identity.RegistrationError
	var oe *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		status = re.StatusCode
	case errors.As(err, &oe) && oe.Response != nil:
		status = oe.Response.StatusCode
	}
	switch {
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled, status
	case IsTemporary(err):
		return OutcomeTemporary, status
	}
	return OutcomePermanent, status
}

// registerThread wraps a thread task's RegisterFunc to report each call.
func (o *observer) registerThread(fn taskcache.RegisterFunc) taskcache.RegisterFunc {
	if o == nil || o.OnRegistration == nil {
		return fn
	}
	return func(ctx context.Context, thread string) (id string, err error) {
		ctx, done := o.registration(ctx, TaskThread, thread)
		returned := false
		defer func() { done(err, returned) }()
		id, err = fn(ctx, thread)
		returned = true
		return id, err
	}
}

// registerProcess wraps the process task's RegisterFunc likewise.
func (o *observer) registerProcess(fn func(context.Context) (string, error)) func(context.Context) (string, error) {
	if o == nil || o.OnRegistration == nil {
		return fn
	}
	return func(ctx context.Context) (id string, err error) {
		ctx, done := o.registration(ctx, TaskProcess, "")
		returned := false
		defer func() { done(err, returned) }()
		id, err = fn(ctx)
		returned = true
		return id, err
	}
}

// registration starts timing one registration, returning the context to
// run it on and a func that reports it from a deferred call, so that a RegisterFunc that panics (returned is
// false) is reported as the permanent failure the cache turns it into.
func (o *observer) registration(ctx context.Context, kind TaskKind, thread string) (context.Context, func(err error, returned bool)) {
	start := time.Now()
	attempt := taskcache.Attempt(ctx)
	octx := o.start(ctx, OpRegistration)
	return octx, func(err error, returned bool) {
		ev := RegistrationEvent{Kind: kind, Thread: o.thread(thread), Attempt: attempt, Start: start, Duration: time.Since(start)}
		ev.Outcome, ev.StatusCode = classify(err)
		if !returned {
			ev.Outcome = OutcomePermanent
		}
		o.OnRegistration(octx, ev)
	}
}

// provision runs one provisioning, reporting it. An identity only loaded
// (from the IdentityStore, such as auth.json, or the process-wide table)
// was not provisioned: fn leaves *registered false and the event says
// Loaded, so a count of provisionings can leave it out.
func (o *observer) provision(ctx context.Context, registered *bool, fn func(context.Context) (*sharedIdentity, error)) (*sharedIdentity, error) {
	if o == nil || o.OnProvisioning == nil {
		return fn(ctx)
	}
	start := time.Now()
	ctx = o.start(ctx, OpProvisioning)
	rec, err := fn(ctx)
	ev := ProvisioningEvent{Start: start, Duration: time.Since(start), Loaded: err == nil && !*registered}
	ev.Outcome, ev.StatusCode = classify(err)
	var re *identity.RegistrationError
	if errors.As(err, &re) {
		ev.Attempts = re.Attempts
	}
	o.OnProvisioning(ctx, ev)
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
	if _, reports := r.(credentials.RefreshReporter); o == nil || o.OnRefresh == nil || reports {
		return ask(ctx)
	}
	start := time.Now()
	ctx = o.start(ctx, OpRefresh)
	tok, origin, err := ask(ctx)
	o.OnRefresh(ctx, refreshEvent(credentials.RefreshEvent{Trigger: RefreshUnauthorized, Start: start, Duration: time.Since(start), Err: err}))
	return tok, origin, err
}

func refreshEvent(ev credentials.RefreshEvent) RefreshEvent {
	out := RefreshEvent{Trigger: ev.Trigger, Start: ev.Start, Duration: ev.Duration}
	out.Outcome, out.StatusCode = classify(ev.Err)
	return out
}

// recovery reports the handling of a 401.
func (o *observer) recovery(ctx context.Context, mode resolver.Mode, result RecoveryResult) {
	if o == nil || o.OnRecovery == nil {
		return
	}
	o.OnRecovery(ctx, RecoveryEvent{Mode: mode, Result: result})
}

// fallbackStart reports a login falling back to Bearer because of err.
func (o *observer) fallbackStart(ctx context.Context, cooldown time.Duration, err error) {
	if o == nil || o.OnFallback == nil {
		return
	}
	_, status := classify(err)
	o.OnFallback(ctx, FallbackEvent{Phase: FallbackStart, Cooldown: cooldown, StatusCode: status})
}

// fallbackEnd reports the end of a fallback that was to last until until
// (on the config clock), if there was one.
func (o *observer) fallbackEnd(ctx context.Context, until time.Time, cooldown time.Duration, now time.Time) {
	if o == nil || o.OnFallback == nil || until.IsZero() {
		return
	}
	o.OnFallback(ctx, FallbackEvent{Phase: FallbackEnd, Cooldown: cooldown, Duration: max(0, now.Sub(until.Add(-cooldown)))})
}

// watchSigner makes s report its signatures.
func (o *observer) watchSigner(s *taskcache.Signer) {
	if o == nil || o.OnSignature == nil {
		return
	}
	s.SetObserver(func(task *taskcache.Task) {
		ev := SignatureEvent{Kind: TaskProcess}
		if task.Key() != "" {
			ev.Kind, ev.Thread = TaskThread, o.thread(task.Key())
		}
		o.OnSignature(ev)
	})
}

// cacheOptions adds the removal hook to the thread cache's options,
// keeping one the caller set.
func (o *observer) cacheOptions(opts taskcache.CacheOptions) taskcache.CacheOptions {
	if o == nil || o.OnCacheRemoval == nil {
		return opts
	}
	prev := opts.OnRemove
	opts.OnRemove = func(key string, why taskcache.RemovalReason) {
		if prev != nil {
			prev(key, why)
		}
		o.OnCacheRemoval(CacheEvent{Reason: why, Thread: o.thread(key)})
	}
	return opts
}

// attach connects a new transport: its token source's refresh reports and
// the OnNew hook.
func (o *observer) attach(t *Transport) {
	if o == nil {
		return
	}
	if t.bearer != nil && o.OnRefresh != nil {
		if rr, ok := t.bearer.src.(credentials.RefreshReporter); ok {
			rr.SetRefreshObserver(func(ctx context.Context, ev credentials.RefreshEvent) {
				o.OnRefresh(ctx, refreshEvent(ev))
			})
		}
	}
	if o.OnNew != nil {
		o.OnNew(t)
	}
}

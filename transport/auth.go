package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/processtask"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
)

// agentState is one usable agent identity: its signer, its thread tasks and
// its (process-wide shared) process task.
type agentState struct {
	record  identity.Record
	routing headers.Routing
	signer  *taskcache.Signer
	threads *taskcache.Cache
	process *processtask.Handle
	store   taskcache.TaskStore // nil: thread tasks are not shared with other processes
	keep    *sharedIdentity     // keeps a shared identity alive while this state uses it

	// cacheNow is the thread cache's clock when it is not the transport's
	// (ThreadCache.Now set by the caller); nil when they are one clock.
	cacheNow func() time.Time

	holdMu sync.Mutex
	holds  map[string]time.Time // task key → no re-registration after a 401 before then
}

// maxHolds bounds the keys an identity remembers as refused after a fresh
// task; beyond it the oldest holds are forgotten (they only save calls).
const maxHolds = 1024

// held reports whether task's key must not be re-registered after a 401 at
// now.
func (a *agentState) held(task *taskcache.Task, now time.Time) bool {
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	until, ok := a.holds[task.Key()]
	if ok && !now.Before(until) {
		delete(a.holds, task.Key())
		return false
	}
	return ok
}

// hold stops 401 re-registrations of task's key for d.
func (a *agentState) hold(task *taskcache.Task, now time.Time, d time.Duration) {
	a.holdMu.Lock()
	defer a.holdMu.Unlock()
	if a.holds == nil {
		a.holds = map[string]time.Time{}
	}
	if len(a.holds) >= maxHolds {
		for k, until := range a.holds {
			if !now.Before(until) || len(a.holds) >= maxHolds {
				delete(a.holds, k)
			}
		}
	}
	a.holds[task.Key()] = now.Add(d)
}

func (t *Transport) newAgentState(rec *identity.Record) (*agentState, error) {
	key, err := rec.Key()
	if err != nil {
		return nil, newError(ErrCredential, resolver.ModeProcessTask, err)
	}
	routing := headers.Routing{AccountID: rec.AccountID, FedRAMP: rec.IsFedRAMP}
	if err := routing.Validate(); err != nil {
		return nil, newError(ErrCredential, resolver.ModeProcessTask, err)
	}
	signer, err := taskcache.NewSigner(key, rec.AgentRuntimeID, t.s.MaxAssertionAge)
	if err != nil {
		return nil, newError(ErrCredential, resolver.ModeProcessTask, err)
	}
	t.obs.watchSigner(signer)
	runtimeID := rec.AgentRuntimeID
	registerThread := func(ctx context.Context, thread string) (string, error) {
		id, err := t.ids.RegisterTask(ctx, key, runtimeID, thread)
		if err == nil {
			t.stats.threadRegs.Add(1)
			t.s.Logger.DebugContext(ctx, "agentauth: registered thread task", "runtime", runtimeID, "thread", thread)
		}
		return id, err
	}
	registerThread = t.obs.registerThread(registerThread)
	resolveThread := registerThread
	if store := t.s.TaskStore; store != nil {
		resolveThread = func(ctx context.Context, thread string) (string, error) {
			return store.Resolve(ctx, taskcache.StoreKey{RuntimeID: runtimeID, ExternalRef: thread},
				func(ctx context.Context) (string, error) { return registerThread(ctx, thread) })
		}
	}
	threads, err := taskcache.New(resolveThread, t.obs.cacheOptions(t.s.ThreadCache))
	if err != nil {
		return nil, fmt.Errorf("transport: thread cache: %w", err)
	}
	// The process task outlives this transport when others share it, so
	// its RegisterFunc holds the registration client (never changed after
	// New) and the logger, not the transport.
	ids, logger := t.ids, t.s.Logger
	pid := processtask.Identity{AuthAPIBase: t.s.authAPIBase, RuntimeID: runtimeID, KeyFingerprint: processtask.KeyFingerprint(key.PublicKey())}
	process, err := processtask.Shared(pid,
		t.obs.registerProcess(func(ctx context.Context) (string, error) {
			id, err := ids.RegisterTask(ctx, key, runtimeID, "")
			if err == nil {
				logger.DebugContext(ctx, "agentauth: registered process task", "runtime", runtimeID)
			}
			return id, err
		}), t.s.ThreadCache)
	if err != nil {
		return nil, fmt.Errorf("transport: process task: %w", err)
	}
	if rs := t.runTasks(); rs != nil {
		process.SetPersistence(runTaskPersistence{store: rs, runtimeID: runtimeID})
	}
	r := *rec
	st := &agentState{record: r, routing: routing, signer: signer, threads: threads, process: process, store: t.s.TaskStore}
	if !t.s.cacheOnTransportClock {
		st.cacheNow = t.s.ThreadCache.Now
	}
	return st, nil
}

// authorize returns the AgentAssertion of the thread's task, or of the
// process task when there is no thread key.
//
// A cached thread task costs one clock reading, shared by the cache's
// recency and the signer, and no validation of the key: the cache holds
// valid keys only. A miss validates the key, so an invalid one fails
// before any network call, and reads the clock again once the task is
// registered, so the assertion is not dated by the start of a slow
// registration.
func (a *agentState) authorize(ctx context.Context, t *Transport, thread string, hasThread bool) (authorization, error) {
	if !hasThread {
		task, err := a.process.Get(ctx)
		if err != nil {
			return authorization{}, newError(ErrRegistration, resolver.ModeProcessTask, err)
		}
		return a.sign(task, resolver.ModeProcessTask, t.s.Now())
	}
	now := t.s.Now()
	if task := a.threads.Peek(thread, a.cacheTime(now)); task != nil {
		return a.sign(task, resolver.ModeThreadTask, now)
	}
	return a.authorizeMiss(ctx, t, thread)
}

// authorizeMiss is authorize for a thread key its cache does not hold.
func (a *agentState) authorizeMiss(ctx context.Context, t *Transport, thread string) (authorization, error) {
	if err := checkThread(thread, true); err != nil {
		return authorization{}, err
	}
	task, err := a.threads.Get(ctx, thread)
	if err != nil {
		return authorization{}, newError(ErrRegistration, resolver.ModeThreadTask, err)
	}
	return a.sign(task, resolver.ModeThreadTask, t.s.Now())
}

// sign returns the authorization of task in mode, its assertion signed
// (or reused) for now.
func (a *agentState) sign(task *taskcache.Task, mode resolver.Mode, now time.Time) (authorization, error) {
	header, err := a.signer.Assertion(task, now)
	if err != nil {
		return authorization{}, newError(ErrCredential, mode, err)
	}
	return authorization{mode: mode, header: header, routing: a.routing, task: task, agent: a}, nil
}

// cacheTime is now on the thread cache's clock: now itself when the cache
// runs on the transport's clock (the default), else a reading of the
// cache's own.
func (a *agentState) cacheTime(now time.Time) time.Time {
	if a.cacheNow != nil {
		return a.cacheNow()
	}
	return now
}

// invalidate forgets task after the server rejected it, unless it was
// already replaced, locally and in the shared store.
func (a *agentState) invalidate(ctx context.Context, task *taskcache.Task) {
	if task.Key() == "" {
		a.process.Invalidate(task)
		return
	}
	if a.threads.Invalidate(task) && a.store != nil {
		// Best effort: a store that cannot be reached keeps a mapping that
		// the next replica to be rejected will remove.
		_ = a.store.Forget(ctx, taskcache.StoreKey{RuntimeID: a.record.AgentRuntimeID, ExternalRef: task.Key()}, task.ID())
	}
}

// bearerSource turns a ChatGPT token source into Authorization headers,
// caching the header for the token it was built from so the hot path does
// not concatenate or validate per request.
type bearerSource struct {
	src    credentials.TokenSource
	obs    *observer // reports refreshes after a 401
	cached atomic.Pointer[bearerHeader]
}

type bearerHeader struct {
	token   *credentials.Token
	header  string
	routing headers.Routing
}

func (b *bearerSource) authorize(ctx context.Context) (authorization, error) {
	tok, err := b.src.Token(ctx)
	if err != nil {
		return authorization{}, newError(ErrCredential, resolver.ModeBearer, err)
	}
	return b.headerFor(tok)
}

// token returns the source's current token, for choosing its login.
func (b *bearerSource) token(ctx context.Context) (*credentials.Token, error) {
	tok, err := b.src.Token(ctx)
	if err != nil {
		return nil, newError(ErrCredential, resolver.ModeProcessTask, err)
	}
	if tok == nil {
		return nil, newError(ErrCredential, resolver.ModeProcessTask, errors.New("token source returned no token"))
	}
	return tok, nil
}

func (b *bearerSource) headerFor(tok *credentials.Token) (authorization, error) {
	if c := b.cached.Load(); c != nil && c.token == tok {
		return authorization{mode: resolver.ModeBearer, header: c.header, routing: c.routing, token: tok}, nil
	}
	if tok == nil {
		return authorization{}, newError(ErrCredential, resolver.ModeBearer, fmt.Errorf("token source returned no token"))
	}
	header, err := headers.Bearer(tok.AccessToken.Reveal())
	if err != nil {
		return authorization{}, newError(ErrCredential, resolver.ModeBearer, err)
	}
	routing := headers.Routing{AccountID: tok.AccountID, FedRAMP: tok.FedRAMP}
	if err := routing.Validate(); err != nil {
		return authorization{}, newError(ErrCredential, resolver.ModeBearer, err)
	}
	b.cached.Store(&bearerHeader{token: tok, header: header, routing: routing})
	return authorization{mode: resolver.ModeBearer, header: header, routing: routing, token: tok}, nil
}

// refresh asks a refreshing source once for a token other than rejected,
// and says where the source got it (zero when the source does not tell).
// ok is false when the source cannot refresh.
func (b *bearerSource) refresh(ctx context.Context, rejected *credentials.Token) (_ authorization, _ credentials.RefreshOrigin, ok bool, _ error) {
	r, ok := b.src.(credentials.Refresher)
	if !ok {
		return authorization{}, 0, false, nil
	}
	tok, origin, err := b.obs.refresh(ctx, r, rejected)
	if err != nil {
		return authorization{}, 0, true, newError(ErrCredential, resolver.ModeBearer, err)
	}
	a, err := b.headerFor(tok)
	return a, origin, true, err
}

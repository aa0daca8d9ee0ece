package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"golang.org/x/sync/singleflight"

	"github.com/agentauth/agentauth/internal/backoff"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/identityreplace"
	"github.com/agentauth/agentauth/internal/provisionlock"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
)

// permanentFailureBackoff keeps a permanently failing provisioning (403, a
// malformed response) from being retried on every request, and spaces the
// re-provisioning of an identity the AuthAPI no longer knows.
const permanentFailureBackoff = 30 * time.Second

// maxStoreBackoff caps the wait before an IdentityStore that failed
// temporarily is asked again. A store outage (Redis down) is usually short
// and says nothing about the AuthAPI, so it must not cost the login the
// whole ProvisioningCooldown of Bearer.
const maxStoreBackoff = time.Minute

// maxLogins bounds the per-login state one transport keeps. A token source
// normally serves one login; a few more cover a source that alternates
// between accounts without rebuilding each login's identity and thread
// tasks on every switch.
const maxLogins = 8

// maxSharedIdentities bounds the process-wide table of identities that
// transports without an IdentityStore share.
const maxSharedIdentities = 4096

// sharedIdentity is an identity provisioned for one token lineage. Every
// agent state built from it holds it; the process-wide table holds it only
// weakly, so when no transport uses the identity any more it is collected,
// private key included, and its table entry removed.
type sharedIdentity struct {
	rec identity.Record
}

var (
	sharedMu sync.Mutex
	// shared maps a flight key of the process default scope (AuthAPI base
	// plus a hash of the access token) to the identity provisioned for it.
	shared = map[string]weak.Pointer[sharedIdentity]{}
)

func lookupShared(key string) *sharedIdentity {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	return shared[key].Value()
}

// publishShared makes si the identity of key unless a live one is already
// there, and returns the identity to use. When the table is full, si is
// used without being shared.
func publishShared(key string, si *sharedIdentity) *sharedIdentity {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if have := shared[key].Value(); have != nil {
		return have
	}
	if len(shared) >= maxSharedIdentities {
		for k, w := range shared {
			if w.Value() == nil {
				delete(shared, k)
			}
		}
		if len(shared) >= maxSharedIdentities {
			return si
		}
	}
	shared[key] = weak.Make(si)
	runtime.AddCleanup(si, forgetShared, key)
	return si
}

// forgetShared drops the table entry of a collected identity.
func forgetShared(key string) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared[key].Value() == nil {
		delete(shared, key)
	}
}

// sharedCount reports the size of the shared table, for tests.
func sharedCount() int {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	return len(shared)
}

// provisionFlights de-duplicates provisioning across the transports of
// this process that may share an identity: those with the same
// IdentityStore and login, or, without a store or a known login, the same
// access token.
var provisionFlights singleflight.Group

// provisioner is the ChatGPT login with the flag on: each login of the
// token source gets its own agent identity, provisioned once (or loaded
// from the IdentityStore) and then kept for that login only. When
// provisioning is unavailable the login uses Bearer for a cooldown.
//
// Binding: an identity signs only for the login it was provisioned or
// loaded for. Within one transport a login is its account and user, so a
// rotated token of the same user keeps the identity and a switch of account
// or user never does. Between transports, an explicit IdentityStore is the
// operator's statement that its logins are trusted: transports sharing one
// store share the identity of a login (same account and user). Without a
// store, or for a token whose account or user is unknown, identities are
// shared at most between transports holding the very same access token, so a
// token the AuthAPI never accepted cannot ride on another token's
// identity.
type provisioner struct {
	t       *Transport
	store   credentials.IdentityStore // nil: the process default scope
	scope   string                    // flight-key prefix naming the sharing scope
	timeout time.Duration             // bound of one whole provisioning

	last atomic.Pointer[tokenLogin] // fast path: the last token seen and its login

	mu     sync.Mutex
	logins map[loginKey]*loginState
	clock  uint64 // recency counter for eviction, under mu
}

type tokenLogin struct {
	tok *credentials.Token
	ls  *loginState
}

// loginKey names a login inside one transport. A login without an account
// id is named by its token alone: nothing else tells it apart. One without
// a user id is named by its account here, where its rotated tokens come
// from one source, but never beyond the transport (see knownLogin).
type loginKey struct {
	account, user, token string
}

// loginState is one login's provisioning state.
type loginState struct {
	key    loginKey
	state  atomic.Pointer[provisionState]
	flight singleflight.Group
	used   uint64 // recency, under provisioner.mu
}

// provisionState is immutable; a new one replaces it on each transition.
type provisionState struct {
	agent         *agentState
	fallbackUntil time.Time // Bearer until then
	fallbackSince time.Time // when the current fallback began, for its end event
	storeFailures int       // consecutive temporary IdentityStore failures
	failUntil     time.Time // return failErr until then
	failErr       error
	stale         string    // runtime id the AuthAPI rejected: never loaded again
	replaceAfter  time.Time // no replacement of a rejected identity before then
	// fresh: agent was registered by this provisioner and has not signed
	// yet (none of its tasks was accepted).
	fresh bool
	// unsaved: agent replaces a rejected identity and is written to the
	// IdentityStore only once it signs; the store keeps the old record
	// until then.
	unsaved  bool
	refusals int // consecutive fresh runtimes refused at once
}

// outcome is what one provisioning flight tells every request that waited
// for it: an agent, a Bearer fallback (both nil) or a permanent error.
type outcome struct {
	agent *agentState
	err   error
}

func newProvisioner(t *Transport) *provisioner {
	agentTimeout := t.s.AgentTimeout
	if agentTimeout == 0 {
		agentTimeout = identity.DefaultAgentTimeout
	}
	// Three attempts, each bounded, with at most MaxRetryWait between them,
	// plus room for the store: an outage must end in the Bearer fallback,
	// never in this bound expiring first.
	timeout := identity.DefaultAgentAttempts*(agentTimeout+identity.MaxRetryWait) + 10*time.Second
	p := &provisioner{t: t, store: t.s.IdentityStore, timeout: timeout, logins: map[loginKey]*loginState{}}
	switch fs, isFile := p.store.(*credentials.FileStore); {
	case p.store == nil:
		p.scope = "default"
	case isFile && fs != nil:
		// Every FileStore of one auth.json is one store: transports built
		// over one Codex home share the login's provisioning.
		p.scope = "file:" + fileScope(fs.Path())
	case reflect.ValueOf(p.store).Kind() == reflect.Pointer:
		// A store is named by its address. An address is reused only after
		// the store was collected, and a flight keeps its store alive, so a
		// running flight can never be joined through a reused address.
		p.scope = fmt.Sprintf("store:%T:%x", p.store, reflect.ValueOf(p.store).Pointer())
	default:
		// A store that cannot be told apart by identity shares nothing
		// between transports except what it stores.
		p.scope = fmt.Sprintf("transport:%p", p)
	}
	return p
}

// current returns the agent of the login last used, if it has one.
func (p *provisioner) current() *agentState {
	if c := p.last.Load(); c != nil {
		return c.ls.state.Load().agent
	}
	return nil
}

// loginFor returns the state of tok's login, creating it (and evicting the
// least recently used login beyond maxLogins) when it is new.
func (p *provisioner) loginFor(tok *credentials.Token) *loginState {
	if c := p.last.Load(); c != nil && c.tok == tok {
		return c.ls
	}
	key := loginKey{account: tok.AccountID, user: tok.UserID}
	if tok.AccountID == "" {
		key = loginKey{token: tokenHash(tok.AccessToken.Reveal())}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clock++
	ls := p.logins[key]
	if ls == nil {
		if len(p.logins) >= maxLogins {
			var victim *loginState
			for _, l := range p.logins {
				if victim == nil || l.used < victim.used {
					victim = l
				}
			}
			delete(p.logins, victim.key)
		}
		ls = &loginState{key: key}
		ls.state.Store(&provisionState{})
		p.logins[key] = ls
	}
	ls.used = p.clock
	p.last.Store(&tokenLogin{tok: tok, ls: ls})
	return ls
}

// knownLogin reports whether tok names its login: an account and a user.
// A token without either (an opaque token, a source that knows no user)
// cannot be told from another login's token of the same workspace, so its
// identity is bound to the token itself and never kept in or loaded from
// an IdentityStore.
func knownLogin(tok *credentials.Token) bool {
	return tok.AccountID != "" && tok.UserID != ""
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:16])
}

// agent returns the provisioned identity of the token's login, nil while
// the login falls back to Bearer, or an error for a permanent failure.
func (p *provisioner) agent(ctx context.Context, tok *credentials.Token) (*agentState, *loginState, error) {
	ls := p.loginFor(tok)
	st := ls.state.Load()
	if st.agent != nil {
		if !st.fallbackUntil.IsZero() && p.t.s.Now().Before(st.fallbackUntil) {
			return nil, ls, nil // task registration unavailable: Bearer for the cooldown
		}
		return st.agent, ls, nil
	}
	if o, ok := p.settled(st); ok {
		return o.agent, ls, o.err
	}
	ch := ls.flight.DoChan("", func() (any, error) { return p.run(ctx, ls, tok), nil })
	select {
	case <-ctx.Done():
		return nil, ls, newError(ErrProvisioning, resolver.ModeProcessTask, ctx.Err())
	case r := <-ch:
		o := r.Val.(outcome)
		return o.agent, ls, o.err
	}
}

// settled reports the outcome st already holds: a Bearer fallback or a
// permanent failure still in force.
func (p *provisioner) settled(st *provisionState) (outcome, bool) {
	now := p.t.s.Now()
	if now.Before(st.fallbackUntil) {
		return outcome{}, true
	}
	if now.Before(st.failUntil) {
		return outcome{err: st.failErr}, true
	}
	return outcome{}, false
}

// run is one provisioning flight of ls in this transport. It records the
// result in ls before the flight ends, so a request arriving right after
// finds it instead of starting another attempt.
func (p *provisioner) run(ctx context.Context, ls *loginState, tok *credentials.Token) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			o = outcome{err: newError(ErrProvisioning, resolver.ModeProcessTask, errors.New("transport: agent provisioning panicked"))}
		}
	}()
	st := ls.state.Load()
	if st.agent != nil {
		return outcome{agent: st.agent}
	}
	if o, ok := p.settled(st); ok {
		return o
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	key := p.flightKey(tok)
	stale := st.stale
	// registered is written only by this call's flight function, which
	// Do runs on this goroutine; a call that joins another's flight
	// leaves it false and treats the identity as loaded.
	var registered bool
	v, err, _ := provisionFlights.Do(key+"\x00stale:"+stale, func() (any, error) {
		return p.t.obs.provision(fctx, &registered, func(ctx context.Context) (*sharedIdentity, error) {
			return p.provision(ctx, key, tok, stale, &registered)
		})
	})

	next := &provisionState{stale: st.stale, replaceAfter: st.replaceAfter, refusals: st.refusals}
	now := p.t.s.Now()
	if err == nil {
		si := v.(*sharedIdentity)
		agent, aerr := p.t.newAgentState(&si.rec)
		if aerr == nil {
			agent.keep = si
			next.agent = agent
			next.fresh = registered
			next.unsaved = registered && stale != "" && p.store != nil && knownLogin(tok)
			ls.state.Store(next)
			p.endFallback(ctx, st, now)
			return outcome{agent: agent}
		}
		err = aerr
	} else if storeOutage(err) {
		p.storeFallback(ctx, ls, st, next, err)
		return outcome{}
	} else if IsTemporary(err) || errors.Is(err, context.DeadlineExceeded) {
		// The whole-provisioning bound expiring is an outage like any other.
		p.fallback(ctx, ls, next, err)
		return outcome{}
	}
	var ae *Error
	if !errors.As(err, &ae) {
		err = newError(ErrProvisioning, resolver.ModeProcessTask, err)
	}
	next.failUntil, next.failErr = now.Add(permanentFailureBackoff), err
	ls.state.Store(next)
	return outcome{err: err}
}

// fallback puts the login on Bearer for the cooldown, announced and
// counted once.
func (p *provisioner) fallback(ctx context.Context, ls *loginState, next *provisionState, cause error) {
	now := p.t.s.Now()
	next.fallbackUntil, next.fallbackSince = now.Add(p.t.s.ProvisioningCooldown), now
	ls.state.Store(next)
	p.announceFallback(ctx, "agentauth: agent provisioning unavailable; using Bearer during the cooldown",
		p.t.s.ProvisioningCooldown, cause)
}

// storeFallback keeps the login on Bearer while its IdentityStore fails
// temporarily, asking the store again after a short backoff (the thread
// cache's initial backoff, doubling per consecutive failure, capped at
// maxStoreBackoff) instead of the whole cooldown. The outage is announced
// and counted as one fallback when it starts; later failures of the same
// outage only lengthen the wait.
func (p *provisioner) storeFallback(ctx context.Context, ls *loginState, st, next *provisionState, cause error) {
	now := p.t.s.Now()
	n := st.storeFailures + 1
	d := p.storeBackoff(n)
	next.storeFailures, next.fallbackUntil, next.fallbackSince = n, now.Add(d), now
	if st.storeFailures > 0 && !st.fallbackSince.IsZero() {
		next.fallbackSince = st.fallbackSince
	}
	ls.state.Store(next)
	if st.storeFailures > 0 {
		p.t.s.Logger.DebugContext(ctx, "agentauth: identity store still unavailable; using Bearer",
			"retry_in", d.String(), "failures", n, "error", cause)
		return
	}
	p.announceFallback(ctx, "agentauth: identity store unavailable; using Bearer until it answers", d, cause)
}

// storeBackoff is the wait after the n-th consecutive store failure.
func (p *provisioner) storeBackoff(n int) time.Duration {
	d := p.t.s.ThreadCache.BackoffInitial
	if d <= 0 {
		d = taskcache.DefaultBackoffInitial
	}
	return backoff.Policy{Initial: d, Max: maxStoreBackoff}.Delay(n)
}

// endFallback reports the end of the fallback st was in, if any.
func (p *provisioner) endFallback(ctx context.Context, st *provisionState, now time.Time) {
	if st.fallbackSince.IsZero() {
		return
	}
	cooldown := p.t.s.ProvisioningCooldown
	p.t.obs.fallbackEnd(ctx, st.fallbackSince.Add(cooldown), cooldown, now)
}

// taskFallback puts a login whose provisioned identity cannot get a task
// (task registration still unavailable after its attempts) on Bearer for
// the cooldown, as an unavailable provisioning does: the login has a
// Bearer token, and an outage of the AuthAPI must not fail its requests.
// The identity is kept and used again after the cooldown. Concurrent
// requests that met the same outage announce and count it once.
func (p *provisioner) taskFallback(ctx context.Context, ls *loginState, agent *agentState, cause error) {
	for {
		st := ls.state.Load()
		now := p.t.s.Now()
		if st.agent != agent || now.Before(st.fallbackUntil) {
			return // replaced, or already falling back
		}
		next := *st
		next.fallbackUntil, next.fallbackSince = now.Add(p.t.s.ProvisioningCooldown), now
		if ls.state.CompareAndSwap(st, &next) {
			p.announceFallback(ctx, "agentauth: agent task registration unavailable; using Bearer during the cooldown",
				p.t.s.ProvisioningCooldown, cause)
			return
		}
	}
}

// signed records that agent signs: it ends a task-registration fallback
// of ls once agent signs again after the cooldown, reporting the end once,
// and when agent is the first signature of a fresh runtime it clears the
// runtime's refusals and stores a replacement that was waiting for this
// proof. It costs one atomic load when there was nothing to record.
func (p *provisioner) signed(ctx context.Context, ls *loginState, agent *agentState) {
	for {
		st := ls.state.Load()
		if st.agent != agent || (st.fallbackUntil.IsZero() && !st.fresh) {
			return
		}
		next := *st
		next.fallbackUntil, next.fallbackSince = time.Time{}, time.Time{}
		next.fresh, next.unsaved, next.refusals = false, false, 0
		if ls.state.CompareAndSwap(st, &next) {
			p.endFallback(ctx, st, p.t.s.Now())
			if st.unsaved {
				p.saveProven(ctx, agent, st.stale)
			}
			return
		}
	}
}

// saveProven stores a replacement identity after its first accepted task.
// A failure is logged: the identity works in this process anyway. A store
// where the first identity wins may refuse it because another process
// stored its own replacement meanwhile; that one stays stored, and this
// process keeps signing with the identity it has proven.
func (p *provisioner) saveProven(ctx context.Context, agent *agentState, stale string) {
	rec := agent.record
	if err := p.store.SaveAgentIdentity(identityreplace.With(ctx, stale), &rec); err != nil {
		p.t.s.Logger.WarnContext(ctx, "agentauth: could not persist the provisioned agent identity", "runtime", rec.AgentRuntimeID, "error", err)
	}
}

// announceFallback counts, reports and logs one Bearer fallback lasting d.
func (p *provisioner) announceFallback(ctx context.Context, msg string, d time.Duration, cause error) {
	p.t.stats.bearerFallbacks.Add(1)
	p.t.obs.fallbackStart(ctx, d, cause)
	p.t.s.Logger.WarnContext(ctx, msg, "cooldown", d.String(), "error", cause)
}

// storeError is a failure of the IdentityStore while provisioning; whether
// it is temporary is the store's own error's to say.
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string {
	return "agentauth: " + e.op + " agent identity: " + e.err.Error()
}

func (e *storeError) Unwrap() error { return e.err }

// storeOutage reports whether err is the IdentityStore failing temporarily.
func storeOutage(err error) bool {
	var se *storeError
	return errors.As(err, &se) && IsTemporary(err)
}

// markStale drops agent from ls after the AuthAPI said it no longer knows
// its runtime, so the next request provisions a new identity (the store's
// record of the old runtime is skipped, and replaced once the new one
// signs). It reports false, keeping agent, when the login must not
// register another agent now:
//
//   - within permanentFailureBackoff of the last replacement, or of the
//     hold below: a login whose identities keep being rejected gets the
//     error, not a stream of registrations;
//   - when agent is fresh (registered by this provisioner moments ago, no
//     task of it accepted yet): the AuthAPI refusing a runtime it has just
//     registered says the runtime is not the problem (a revoked workspace,
//     a proxy), and a replacement would be refused too. agent is kept and
//     its task registration retried after a hold that doubles with each
//     refusal, from twice permanentFailureBackoff up to the
//     ProvisioningCooldown; only once the hold has reached the cooldown is
//     the runtime replaced, at most once per cooldown.
func (p *provisioner) markStale(ls *loginState, agent *agentState) bool {
	for {
		st := ls.state.Load()
		if st.agent != agent {
			return true // already replaced (or being replaced) by another request
		}
		now := p.t.s.Now()
		if now.Before(st.replaceAfter) {
			return false
		}
		refusals, wait := 0, permanentFailureBackoff
		if st.fresh {
			refusals = st.refusals + 1
			wait = p.replaceBackoff(refusals)
			if atCap := st.refusals > 0 && p.replaceBackoff(st.refusals) >= p.replaceBackoff(math.MaxInt); !atCap {
				next := *st
				next.refusals, next.replaceAfter = refusals, now.Add(wait)
				if ls.state.CompareAndSwap(st, &next) {
					p.t.s.Logger.WarnContext(context.Background(),
						"agentauth: the AuthAPI refused the tasks of an agent runtime it has just registered; keeping it and retrying later instead of registering another",
						"runtime", agent.record.AgentRuntimeID, "retry_in", wait.String(), "refusals", refusals)
					return false
				}
				continue
			}
		}
		next := &provisionState{stale: agent.record.AgentRuntimeID, replaceAfter: now.Add(wait), refusals: refusals}
		if ls.state.CompareAndSwap(st, next) {
			p.t.s.Logger.WarnContext(context.Background(), "agentauth: the AuthAPI no longer knows the agent runtime; provisioning a new identity",
				"runtime", agent.record.AgentRuntimeID)
			return true
		}
	}
}

// replaceBackoff is the hold after the n-th consecutive refusal of a fresh
// runtime: permanentFailureBackoff doubled n times, capped at the
// ProvisioningCooldown (and never below permanentFailureBackoff).
func (p *provisioner) replaceBackoff(n int) time.Duration {
	d, limit := permanentFailureBackoff, max(p.t.s.ProvisioningCooldown, permanentFailureBackoff)
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// storedWinner loads the identity another process stored for tok's login
// after this one's save was refused, or nil if it cannot be used.
func (p *provisioner) storedWinner(ctx context.Context, tok *credentials.Token, stale string) *sharedIdentity {
	rec, err := p.store.LoadAgentIdentity(ctx, tok.Login())
	if err != nil || rec == nil || rec.Validate() != nil || rec.AgentRuntimeID == stale ||
		rec.AccountID != tok.AccountID || rec.ChatGPTUserID != tok.UserID {
		if err != nil {
			p.t.s.Logger.WarnContext(ctx, "agentauth: could not load the identity another process stored", "error", err)
		}
		return nil
	}
	return &sharedIdentity{rec: *rec}
}

// flightKey names what may be shared for tok: the sharing scope, the
// AuthAPI base, and the login (with a store and a login that names its
// account and user) or the token (otherwise). It never contains the token
// itself.
func (p *provisioner) flightKey(tok *credentials.Token) string {
	base := p.t.s.authAPIBase
	if p.store != nil && knownLogin(tok) {
		return p.scope + "\x00" + base + "\x00account:" + tok.AccountID + "\x00user:" + tok.UserID
	}
	return p.scope + "\x00" + base + "\x00token:" + tokenHash(tok.AccessToken.Reveal())
}

// provision loads the login's identity (from the store, or from the
// process-wide table for this token) or registers a new agent and keeps it.
// A login without an account id or a user id is never looked up in or
// written to a store: nothing would tell its identity from another
// login's. It is provisioned with its own token and shared only by
// concurrent provisionings of that very token (and, without a store,
// through the process-wide table). stale is a runtime the AuthAPI
// rejected; it is never reused.
//
// *registered is set when the identity was registered here (not loaded).
// A first identity of the login is stored at once, so that processes
// sharing the store converge on one runtime before any of them signs; a
// replacement of a rejected one (stale set) is not: it is stored by
// [provisioner.signed] once one of its tasks was accepted, and the store
// keeps the old record until then, so a runtime the AuthAPI refuses at
// once never overwrites the identity other programs (the Codex CLI) use.
func (p *provisioner) provision(ctx context.Context, key string, tok *credentials.Token, stale string, registered *bool) (*sharedIdentity, error) {
	useStore := p.store != nil && knownLogin(tok)
	switch {
	case useStore:
		if si, err := p.loadStored(ctx, tok, stale); si != nil || err != nil {
			return si, err
		}
		if release, ok := p.lockAuthFile(ctx); ok {
			// Another process may have stored the login's identity while
			// this one waited for the lock.
			defer release()
			if si, err := p.loadStored(ctx, tok, stale); si != nil || err != nil {
				return si, err
			}
		} else if err := ctx.Err(); err != nil {
			return nil, err
		}
	case p.store == nil:
		if si := lookupShared(key); si != nil && si.rec.AgentRuntimeID != stale {
			return si, nil
		}
	}
	k, err := identity.GenerateKey(p.t.s.KeyRand)
	if err != nil {
		return nil, err
	}
	req := identity.AgentRegistration{
		AccessToken: identity.Secret(tok.AccessToken),
		Routing:     headers.Routing{AccountID: tok.AccountID, FedRAMP: tok.FedRAMP},
		PublicKey:   k.SSHPublicKey(),
		Software:    p.t.s.Software,
	}
	runtimeID, err := p.t.ids.RegisterAgent(ctx, req)
	if err != nil {
		return nil, err
	}
	p.t.stats.agentRegs.Add(1)
	*registered = true
	si := &sharedIdentity{rec: identity.Record{
		AgentRuntimeID:  runtimeID,
		AgentPrivateKey: identity.Secret(k.MarshalPrivateKey()),
		AccountID:       tok.AccountID,
		ChatGPTUserID:   tok.UserID,
		IsFedRAMP:       tok.FedRAMP,
	}}
	p.t.s.Logger.DebugContext(ctx, "agentauth: provisioned agent identity", "runtime", runtimeID)
	switch {
	case useStore && stale != "":
		// A replacement: stored once it signs (see above).
	case useStore:
		// Stored before the flight ends, so a flight that starts right
		// after this one finds the identity instead of registering again.
		// Failing to store is logged, not returned: the identity works for
		// this process even if it cannot be kept. When another process
		// stored an identity for the login first, that one is the login's:
		// sign with it, so the fleet uses one runtime.
		if err := p.store.SaveAgentIdentity(ctx, &si.rec); err != nil {
			if errors.Is(err, credentials.ErrIdentityExists) {
				if winner := p.storedWinner(ctx, tok, stale); winner != nil {
					p.t.s.Logger.DebugContext(ctx, "agentauth: another process stored the login's identity first; using it",
						"runtime", winner.rec.AgentRuntimeID, "unused_runtime", runtimeID)
					*registered = false
					return winner, nil
				}
			}
			p.t.s.Logger.WarnContext(ctx, "agentauth: could not persist the provisioned agent identity", "error", err)
		}
	case p.store == nil:
		si = publishShared(key, si)
	}
	return si, nil
}

// fileScope names an auth.json by its cleaned absolute path (the path as
// given when it cannot be made absolute).
func fileScope(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

// loadStored returns the usable identity the store holds for tok's login,
// nil when there is none.
func (p *provisioner) loadStored(ctx context.Context, tok *credentials.Token, stale string) (*sharedIdentity, error) {
	rec, err := p.store.LoadAgentIdentity(ctx, tok.Login())
	if err != nil {
		return nil, &storeError{op: "loading stored", err: err}
	}
	if rec != nil && rec.Validate() == nil && rec.AgentRuntimeID != stale &&
		rec.AccountID == tok.AccountID && rec.ChatGPTUserID == tok.UserID {
		return &sharedIdentity{rec: *rec}, nil
	}
	return nil, nil
}

// authFile is an IdentityStore kept in an auth.json ([credentials.FileStore]).
type authFile interface {
	Path() string
	runTaskStore
}

// lockAuthFile takes the provisioning lock of the store's auth.json, so
// that processes sharing the file register one agent per login. ok is
// false when the store is not an auth.json or the lock could not be taken
// (provisioning then goes on without it; the file's first identity still
// wins).
func (p *provisioner) lockAuthFile(ctx context.Context) (release func(), ok bool) {
	af, isFile := p.store.(authFile)
	if !isFile {
		return nil, false
	}
	release, err := provisionlock.Acquire(ctx, af.Path())
	if err != nil {
		if ctx.Err() == nil {
			p.t.s.Logger.WarnContext(ctx, "agentauth: provisioning without the auth.json provisioning lock", "error", err)
		}
		return nil, false
	}
	return release, true
}

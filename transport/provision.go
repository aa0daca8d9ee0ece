package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/resolver"
)

// permanentFailureBackoff keeps a permanently failing provisioning (403, a
// malformed response) from being retried on every request, and spaces the
// re-provisioning of an identity the AuthAPI no longer knows.
const permanentFailureBackoff = 30 * time.Second

// maxLogins bounds the per-login state one transport keeps. A token source
// normally serves one login; a few more cover a source that alternates
// between accounts without rebuilding each login's identity and thread
// tasks on every switch.
const maxLogins = 8

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

// fileScope names an auth.json by its cleaned absolute path (the path as
// given when it cannot be made absolute).
func fileScope(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

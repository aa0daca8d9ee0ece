package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/identity"
	"github.com/agentauth/agentauth/resolver"
)

// permanentFailureBackoff keeps a permanently failing provisioning (403, a
// malformed response) from being retried on every request.
const permanentFailureBackoff = 30 * time.Second

// defaultIdentityStores holds, per AuthAPI base, the in-memory store shared
// by every transport in the process that has no IdentityStore, so a second
// transport on the same login reuses the first one's identity. It is keyed
// by base because a runtime registered at one AuthAPI is unknown to another.
var defaultIdentityStores sync.Map // string → *credentials.MemoryStore

// provisionFlights de-duplicates provisioning across transports in this
// process: two transports on one login make one agent registration.
var provisionFlights singleflight.Group

// provisioner implements the ChatGPT opt-in of SPEC §3.4: with the flag on,
// a ChatGPT login gets an agent identity once (reused from the store when
// one exists), and falls back to Bearer for a cooldown when provisioning is
// unavailable. The state follows the login: when the token source starts
// returning another account, that account is provisioned in turn.
type provisioner struct {
	t       *Transport
	store   credentials.IdentityStore
	timeout time.Duration // bound of one whole provisioning
	state   atomic.Pointer[provisionState]
	mu      sync.Mutex // serialises state transitions after a flight
}

// provisionState is immutable; a new one replaces it on each transition.
// It belongs to the login named by key.
type provisionState struct {
	key           string             // flightKey of the login
	token         *credentials.Token // the token last seen for that login
	agent         *agentState
	fallbackUntil time.Time // Bearer until then
	failUntil     time.Time // return failErr until then
	failErr       error
}

func newProvisioner(t *Transport) *provisioner {
	store := t.s.IdentityStore
	if store == nil {
		s, _ := defaultIdentityStores.LoadOrStore(t.s.authAPIBase, credentials.NewMemoryStore())
		store = s.(*credentials.MemoryStore)
	}
	agentTimeout := t.s.AgentTimeout
	if agentTimeout == 0 {
		agentTimeout = identity.DefaultAgentTimeout
	}
	// Three attempts, each bounded, with at most MaxRetryWait between them,
	// plus room for the store: an outage must end in the Bearer fallback,
	// never in this bound expiring first.
	timeout := identity.DefaultAgentAttempts*(agentTimeout+identity.MaxRetryWait) + 10*time.Second
	p := &provisioner{t: t, store: store, timeout: timeout}
	p.state.Store(&provisionState{})
	return p
}

func (p *provisioner) current() *agentState { return p.state.Load().agent }

// agent returns the provisioned identity of the current login, nil while
// falling back to Bearer, or an error for a permanent failure.
func (p *provisioner) agent(ctx context.Context) (*agentState, error) {
	tok, err := p.t.bearer.src.Token(ctx)
	if err != nil {
		return nil, newError(ErrCredential, resolver.ModeProcessTask, err)
	}
	if tok == nil {
		return nil, newError(ErrCredential, resolver.ModeProcessTask, errors.New("token source returned no token"))
	}
	st := p.state.Load()
	if st.token != tok {
		// A new *Token: the same login refreshed, or another login.
		key := p.flightKey(tok)
		if key == st.key {
			next := *st
			next.token = tok
			p.state.CompareAndSwap(st, &next)
		} else {
			next := &provisionState{key: key, token: tok}
			if p.state.CompareAndSwap(st, next) && st.agent != nil {
				p.t.s.Logger.InfoContext(ctx, "agentauth: the ChatGPT login changed; provisioning its own agent identity")
			}
		}
		st = p.state.Load()
	}
	if st.agent != nil {
		return st.agent, nil
	}
	now := p.t.s.Now()
	if now.Before(st.fallbackUntil) {
		return nil, nil
	}
	if now.Before(st.failUntil) {
		return nil, st.failErr
	}
	before := st
	ch := provisionFlights.DoChan(before.key, func() (v any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = errors.New("agentauth: agent provisioning panicked")
			}
		}()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
		defer cancel()
		return p.t.obs.provision(fctx, tok, p.provision)
	})
	select {
	case <-ctx.Done():
		return nil, newError(ErrProvisioning, resolver.ModeProcessTask, ctx.Err())
	case r := <-ch:
		return p.settle(ctx, before, tok, r)
	}
}

// flightKey names the login without revealing its token: the account id,
// or a short hash of the token when the account is unknown.
func (p *provisioner) flightKey(tok *credentials.Token) string {
	if tok.AccountID != "" {
		return p.t.s.authAPIBase + "\x00account:" + tok.AccountID
	}
	sum := sha256.Sum256([]byte(tok.AccessToken))
	return p.t.s.authAPIBase + "\x00token:" + hex.EncodeToString(sum[:8])
}

// settle turns a flight's result into this transport's state, once per
// flight: callers that waited on the same flight find it settled and read
// the outcome instead of counting and logging it again.
func (p *provisioner) settle(ctx context.Context, before *provisionState, tok *credentials.Token, r singleflight.Result) (*agentState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur := p.state.Load(); cur != before {
		if cur.agent != nil || cur.key != before.key {
			return cur.agent, nil
		}
		if cur.failErr != nil {
			return nil, cur.failErr
		}
		return nil, nil // fallback
	}
	now := p.t.s.Now()
	next := &provisionState{key: before.key, token: before.token}
	if r.Err == nil {
		rec := r.Val.(*identity.Record)
		agent, err := p.t.newAgentState(rec)
		if err != nil {
			next.failUntil, next.failErr = now.Add(permanentFailureBackoff), err
			p.state.Store(next)
			return nil, err
		}
		// The flight may have been led by another transport with another
		// store; keep the identity in this one too (a no-op for the leader).
		p.persist(ctx, tok, rec)
		next.agent = agent
		p.state.Store(next)
		p.t.obs.fallbackEnd(ctx, before.fallbackUntil, p.t.s.ProvisioningCooldown, now)
		return agent, nil
	}
	// The whole-provisioning bound expiring is an outage like any other.
	if IsTemporary(r.Err) || errors.Is(r.Err, context.DeadlineExceeded) {
		p.t.stats.bearerFallbacks.Add(1)
		p.t.obs.fallbackStart(ctx, p.t.s.ProvisioningCooldown, r.Err)
		p.t.s.Logger.WarnContext(ctx, "agentauth: agent provisioning unavailable; using Bearer during the cooldown",
			"cooldown", p.t.s.ProvisioningCooldown.String(), "error", r.Err)
		next.fallbackUntil = now.Add(p.t.s.ProvisioningCooldown)
		p.state.Store(next)
		return nil, nil
	}
	err := newError(ErrProvisioning, resolver.ModeProcessTask, r.Err)
	next.failUntil, next.failErr = now.Add(permanentFailureBackoff), err
	p.state.Store(next)
	return nil, err
}

// provision reuses a stored identity for the login's account or registers
// a new agent and stores it. A login without an account id is never looked
// up or stored: nothing would tell its identity from another login's.
func (p *provisioner) provision(ctx context.Context, tok *credentials.Token) (*identity.Record, error) {
	if tok.AccountID != "" {
		rec, err := p.store.LoadAgentIdentity(ctx, tok.Login())
		if err != nil {
			return nil, fmt.Errorf("loading stored agent identity: %w", err)
		}
		if rec != nil && rec.Validate() == nil {
			return rec, nil
		}
	}
	key, err := identity.GenerateKey(p.t.s.KeyRand)
	if err != nil {
		return nil, err
	}
	req := p.t.s.AgentRegistration
	req.AccessToken = tok.AccessToken
	req.Routing.AccountID = tok.AccountID
	req.Routing.FedRAMP = tok.FedRAMP
	req.PublicKey = key.SSHPublicKey()
	runtimeID, err := p.t.ids.RegisterAgent(ctx, req)
	if err != nil {
		return nil, err
	}
	p.t.stats.agentRegs.Add(1)
	rec := &identity.Record{
		AgentRuntimeID:  runtimeID,
		AgentPrivateKey: key.MarshalPrivateKey(),
		AccountID:       tok.AccountID,
		ChatGPTUserID:   tok.UserID,
		IsFedRAMP:       tok.FedRAMP,
	}
	p.t.s.Logger.DebugContext(ctx, "agentauth: provisioned agent identity", "runtime", runtimeID)
	// Stored before the flight ends, so a flight that starts right after
	// this one (a caller that missed it) finds the identity in the store
	// instead of registering a second agent.
	p.persist(ctx, tok, rec)
	return rec, nil
}

// persist stores rec unless this transport's store already holds it.
// Failing to store is logged, not returned: the identity works for this
// process even if it cannot be kept.
func (p *provisioner) persist(ctx context.Context, tok *credentials.Token, rec *identity.Record) {
	if tok.AccountID == "" {
		return
	}
	if have, err := p.store.LoadAgentIdentity(ctx, tok.Login()); err == nil && have != nil && have.AgentRuntimeID == rec.AgentRuntimeID {
		return
	}
	if err := p.store.SaveAgentIdentity(ctx, rec); err != nil {
		p.t.s.Logger.WarnContext(ctx, "agentauth: could not persist the provisioned agent identity", "error", err)
	}
}

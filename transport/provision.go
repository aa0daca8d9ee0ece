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

// provisionTimeout bounds one whole provisioning (a store lookup, up to
// three agent-registration attempts of 15 s each with backoff, a store
// write).
const provisionTimeout = 90 * time.Second

// permanentFailureBackoff keeps a permanently failing provisioning (403, a
// malformed response) from being retried on every request.
const permanentFailureBackoff = 30 * time.Second

// defaultIdentityStore is shared by every transport in the process that
// has no IdentityStore, so a second transport on the same login reuses the
// first one's identity.
var defaultIdentityStore credentials.IdentityStore = credentials.NewMemoryStore()

// provisionFlights de-duplicates provisioning across transports in this
// process: two transports on one login make one agent registration.
var provisionFlights singleflight.Group

// provisioner implements the ChatGPT opt-in of SPEC §3.4: with the flag on,
// a ChatGPT login gets an agent identity once (reused from the store when
// one exists), and falls back to Bearer for a cooldown when provisioning is
// unavailable.
type provisioner struct {
	t     *Transport
	store credentials.IdentityStore
	state atomic.Pointer[provisionState]
	mu    sync.Mutex // serialises state transitions after a flight
}

// provisionState is immutable; a new one replaces it on each transition.
type provisionState struct {
	agent         *agentState
	fallbackUntil time.Time // Bearer until then
	failUntil     time.Time // return failErr until then
	failErr       error
}

func newProvisioner(t *Transport) *provisioner {
	store := t.s.IdentityStore
	if store == nil {
		store = defaultIdentityStore
	}
	p := &provisioner{t: t, store: store}
	p.state.Store(&provisionState{})
	return p
}

func (p *provisioner) current() *agentState { return p.state.Load().agent }

// agent returns the provisioned identity, nil while falling back to Bearer,
// or an error for a permanent failure.
func (p *provisioner) agent(ctx context.Context) (*agentState, error) {
	st := p.state.Load()
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
	tok, err := p.t.bearer.src.Token(ctx)
	if err != nil {
		return nil, newError(ErrCredential, resolver.ModeProcessTask, err)
	}
	ch := provisionFlights.DoChan(p.flightKey(tok), func() (v any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = errors.New("agentauth: agent provisioning panicked")
			}
		}()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), provisionTimeout)
		defer cancel()
		return p.provision(fctx, tok)
	})
	select {
	case <-ctx.Done():
		return nil, newError(ErrProvisioning, resolver.ModeProcessTask, ctx.Err())
	case r := <-ch:
		return p.settle(ctx, r)
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

// settle turns a flight's result into this transport's state.
func (p *provisioner) settle(ctx context.Context, r singleflight.Result) (*agentState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.state.Load(); st.agent != nil {
		return st.agent, nil
	}
	now := p.t.s.Now()
	if r.Err == nil {
		agent, err := p.t.newAgentState(r.Val.(*identity.Record))
		if err != nil {
			p.state.Store(&provisionState{failUntil: now.Add(permanentFailureBackoff), failErr: err})
			return nil, err
		}
		p.state.Store(&provisionState{agent: agent})
		return agent, nil
	}
	if IsTemporary(r.Err) {
		p.t.stats.bearerFallbacks.Add(1)
		p.t.s.Logger.WarnContext(ctx, "agentauth: agent provisioning unavailable; using Bearer during the cooldown",
			"cooldown", p.t.s.ProvisioningCooldown.String(), "error", r.Err)
		p.state.Store(&provisionState{fallbackUntil: now.Add(p.t.s.ProvisioningCooldown)})
		return nil, nil
	}
	err := newError(ErrProvisioning, resolver.ModeProcessTask, r.Err)
	p.state.Store(&provisionState{failUntil: now.Add(permanentFailureBackoff), failErr: err})
	return nil, err
}

// provision reuses a stored identity for the login's account or registers
// a new agent and stores it.
func (p *provisioner) provision(ctx context.Context, tok *credentials.Token) (*identity.Record, error) {
	rec, err := p.store.LoadAgentIdentity(ctx, tok.AccountID)
	if err != nil {
		return nil, fmt.Errorf("loading stored agent identity: %w", err)
	}
	if rec != nil && rec.Validate() == nil {
		return rec, nil
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
	rec = &identity.Record{
		AgentRuntimeID:  runtimeID,
		AgentPrivateKey: key.MarshalPrivateKey(),
		AccountID:       tok.AccountID,
		IsFedRAMP:       tok.FedRAMP,
	}
	if err := p.store.SaveAgentIdentity(ctx, rec); err != nil {
		// The identity works for this process even if it cannot be kept.
		p.t.s.Logger.WarnContext(ctx, "agentauth: could not persist the provisioned agent identity", "error", err)
	}
	p.t.s.Logger.DebugContext(ctx, "agentauth: provisioned agent identity", "runtime", runtimeID)
	return rec, nil
}

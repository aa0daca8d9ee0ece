package transport

import (
	"context"
	"errors"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/provisionlock"
)

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

package transport

import (
	"runtime"
	"sync"
	"weak"

	"golang.org/x/sync/singleflight"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

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

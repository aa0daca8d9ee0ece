package credentials

import (
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// authFileMemory is what this process knows about the login in one
// auth.json, shared by every [AuthFileCoordinator] of that path (every
// transport and source of the process): the newest token set agentauth
// stored or read there, and the refresh tokens known to be spent (each
// set replaced by a newer one was exchanged for it). The Codex CLI saves
// auth.json with no lock, from the copy it loaded earlier, so the file can
// go back to an older set at any moment; the coordinator then serves the
// newest set instead and writes it back (see effective). It holds tokens
// in memory only, as the sources do.
type authFileMemory struct {
	mu     sync.Mutex
	newest *TokenSet
	iat    time.Time // the newest set's access token iat; zero when unknown
	spent  spentTokens
}

// maxAuthFileMemories bounds how many auth.json paths a process
// remembers; past it one is forgotten (its coordinators keep theirs).
const maxAuthFileMemories = 64

var authFileMemories struct {
	mu sync.Mutex
	m  map[string]*authFileMemory
}

// memoryFor returns the memory of the auth.json at path.
func memoryFor(path string) *authFileMemory {
	key := path
	if abs, err := filepath.Abs(path); err == nil {
		key = abs
	}
	authFileMemories.mu.Lock()
	defer authFileMemories.mu.Unlock()
	if m := authFileMemories.m[key]; m != nil {
		return m
	}
	if authFileMemories.m == nil {
		authFileMemories.m = make(map[string]*authFileMemory)
	}
	if len(authFileMemories.m) >= maxAuthFileMemories {
		for k := range authFileMemories.m {
			delete(authFileMemories.m, k)
			break
		}
	}
	m := &authFileMemory{}
	authFileMemories.m[key] = m
	return m
}

// effective returns the set the coordinator serves for file (what
// auth.json holds now): the newest set remembered when file is behind it
// (behind is then true), file otherwise, which is remembered as the newest
// when it differs. file is behind when it is the same login and its
// refresh token is known to be spent, or its access token was issued
// before the newest one's. A file with no login (a logout) or another
// login is served as it is and makes the memory forget the old login: a
// logout must never be undone.
func (m *authFileMemory) effective(file *TokenSet) (_ *TokenSet, behind bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if file == nil {
		m.newest, m.iat = nil, time.Time{}
		return nil, false
	}
	if n := m.newest; n != nil && (file.AccessToken != n.AccessToken || file.RefreshToken != n.RefreshToken) {
		fs, ns := newRefreshSnap(*file), newRefreshSnap(*n)
		if sameLoginKnown(fs, ns) {
			if (file.RefreshToken != n.RefreshToken && m.spent.has(file.RefreshToken)) ||
				(!fs.iat.IsZero() && !m.iat.IsZero() && fs.iat.Before(m.iat)) {
				cp := *n
				return &cp, true
			}
			// Newer: whoever wrote it exchanged the newest one's refresh
			// token for it.
			if file.RefreshToken != n.RefreshToken {
				m.spent.add(n.RefreshToken)
			}
		}
	}
	m.setLocked(file)
	cp := *file
	return &cp, false
}

// sameLoginKnown reports whether two sets name the same account and the
// same user, a claim missing from one set counting as a difference: the
// memory must never take a set of an unknown user for the one it holds
// (it would serve, and write back, another login's tokens over it).
func sameLoginKnown(a, b *refreshSnap) bool {
	return a.tok.AccountID == b.tok.AccountID && a.tok.UserID == b.tok.UserID
}

// stored records a successful swap of prev for next.
func (m *authFileMemory) stored(prev, next *TokenSet) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev.RefreshToken != next.RefreshToken {
		m.spent.add(prev.RefreshToken)
	}
	m.setLocked(next)
}

func (m *authFileMemory) setLocked(set *TokenSet) {
	cp := *set
	m.newest, m.iat = &cp, accessTokenClaims(cp.AccessToken).IssuedAt
}

// writeBack replaces file (a set behind the newest) with newest in
// auth.json if agentauth's lock is free right now; otherwise it is left
// to the release of this coordinator's next Lock (the holder may be this
// very caller, a refresh in progress). Best effort: a failure leaves the
// stale copy, which is served as the newest set meanwhile.
func (c *AuthFileCoordinator) writeBack(file, newest *TokenSet) {
	lock := flock.New(filepath.Join(filepath.Dir(c.store.path), AuthStorageLockFileName))
	if ok, err := lock.TryLock(); err != nil || !ok {
		c.mu.Lock()
		c.back = &[2]TokenSet{*file, *newest}
		c.mu.Unlock()
		return
	}
	defer func() { _ = lock.Unlock() }()
	c.writeBackLocked(file, newest)
}

// writeBackPending does the write-back writeBack left, under the lock.
func (c *AuthFileCoordinator) writeBackPending() {
	c.mu.Lock()
	back := c.back
	c.back = nil
	c.mu.Unlock()
	if back != nil {
		c.writeBackLocked(&back[0], &back[1])
	}
}

func (c *AuthFileCoordinator) writeBackLocked(file, newest *TokenSet) {
	_ = c.store.updateLocked(func(af *AuthFile) error {
		cur := tokenSetOf(af)
		if cur == nil || cur.AccessToken != file.AccessToken || cur.RefreshToken != file.RefreshToken {
			return ErrTokenSetChanged // moved on meanwhile
		}
		setTokens(af, newest)
		return nil
	})
}

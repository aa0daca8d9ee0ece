package credentials

import (
	"crypto/sha256"
	"sync"
)

// maxSpentTokens bounds how many spent refresh tokens a source remembers.
// A login rotates its refresh token once per access-token lifetime, and a
// stale copy of auth.json holds one of the last few: 64 covers far more
// rotations than any copy stays around.
const maxSpentTokens = 64

// spentTokens remembers, by SHA-256 only, the refresh tokens of one login
// that must never be sent again: those this source exchanged, and those
// of every set it replaced by a newer one. The Codex CLI saves auth.json
// with no lock from the copy it loaded earlier, so the file can go back
// to such a token at any moment; sending it would make the endpoint answer
// refresh_token_reused and end the login. The oldest entry is forgotten
// first. The zero value is empty and ready; safe for concurrent use.
type spentTokens struct {
	mu   sync.Mutex
	ring [maxSpentTokens][sha256.Size]byte
	n    int // entries in use
	next int // where the next entry goes
}

// add remembers rt ("" is ignored).
func (s *spentTokens) add(rt string) {
	if rt == "" {
		return
	}
	h := sha256.Sum256([]byte(rt))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hasLocked(h) {
		return
	}
	s.ring[s.next] = h
	s.next = (s.next + 1) % maxSpentTokens
	s.n = min(s.n+1, maxSpentTokens)
}

// has reports whether rt was remembered.
func (s *spentTokens) has(rt string) bool {
	if rt == "" {
		return false
	}
	h := sha256.Sum256([]byte(rt))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasLocked(h)
}

func (s *spentTokens) hasLocked(h [sha256.Size]byte) bool {
	for i := range s.n {
		if s.ring[i] == h {
			return true
		}
	}
	return false
}

// behind reports whether set is older than the newest set this source
// holds: its refresh token is one the source knows to be spent, or its
// access token was issued (iat) before the held one's and it names the
// same account and user. Such a set is a
// stale copy (or a rotation of ours the store never took): it is never
// adopted and its refresh token is never sent; the held set is written
// back over it instead. A set that is neither is the same login moved on
// (another process refreshed, a new login): it is adopted as usual.
func (s *RefreshingTokenSource) behind(set *TokenSet) bool {
	held := s.cache.Load()
	if held == nil || set == nil {
		return false
	}
	if set.RefreshToken == held.set.RefreshToken && set.AccessToken == held.set.AccessToken {
		return false
	}
	if set.RefreshToken != held.set.RefreshToken && s.spent.has(set.RefreshToken) {
		return true
	}
	// An older iat says stale only of the same login: another account or
	// user (or a set naming none) issued earlier is a login switch, which
	// the caller must see, never a copy to write the held set over.
	cur := newRefreshSnap(*set)
	return !cur.iat.IsZero() && !held.iat.IsZero() && cur.iat.Before(held.iat) && sameLoginKnown(held, cur)
}

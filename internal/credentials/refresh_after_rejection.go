package credentials

import (
	"context"
	"fmt"
	"time"
)

// freshRejectionHold is how long a token this source got from the token
// endpoint is not refreshed again when a server refuses it. A token the
// endpoint has just issued and a server refuses at once says the server,
// not the token, is refusing (a path the login may not use, an account
// header a proxy rejects): another refresh would spend the single-use
// refresh token, and risk the login, on every request for nothing. The
// hold only stops refreshes asked for after a 401; a token that becomes
// due is still refreshed ahead of its expiry.
const freshRejectionHold = 5 * time.Minute

// RefreshOrigin says where a token returned after a 401 came from.
type RefreshOrigin uint8

// String returns "store", "endpoint" or "unknown".
func (o RefreshOrigin) String() string {
	switch o {
	case RefreshFromStore:
		return "store"
	case RefreshFromEndpoint:
		return "endpoint"
	}
	return "unknown"
}

// OriginRefresher is a [Refresher] that also says where the token came
// from. A transport uses it to decide whether asking again after the
// fresh token is rejected too can help: after a store reload another
// token may still be had from the endpoint; after the endpoint itself
// answered, asking again would only spend another refresh token. A
// Refresher that does not implement it is asked once per rejected request.
type OriginRefresher interface {
	Refresher
	// RefreshWithOrigin is Refresh, with the origin of the token (zero
	// when err is not nil).
	RefreshWithOrigin(ctx context.Context, rejected *Token) (*Token, RefreshOrigin, error)
}

// freshToken is the access token the endpoint last issued to the source
// and when: see [freshRejectionHold].
type freshToken struct {
	access string
	issued time.Time
}

// Refresh implements [Refresher] for a token the server rejected with 401;
// it is [RefreshingTokenSource.RefreshWithOrigin] without the origin.
func (s *RefreshingTokenSource) Refresh(ctx context.Context, rejected *Token) (*Token, error) {
	tok, _, err := s.RefreshWithOrigin(ctx, rejected)
	return tok, err
}

// RefreshWithOrigin implements [OriginRefresher] for a token the server
// rejected with 401: it reads the store first and returns a different
// token found there for the same login (no network call,
// [RefreshFromStore]); only when the store still holds the rejected token
// does it refresh over the network ([RefreshFromEndpoint], also when it
// joined a refresh already in flight). A store holding another account is
// a permanent "account changed" error.
//
// A rejected token that this source got from the token endpoint less than
// five minutes ago is not refreshed again: the error matches
// [ErrTokenUnchanged]. The endpoint has just issued it, so the server that
// refuses it would most likely refuse the next one too, and each refresh
// spends the login's single-use refresh token. Tokens that become due are
// refreshed as usual; only refreshes asked for after a 401 wait.
func (s *RefreshingTokenSource) RefreshWithOrigin(ctx context.Context, rejected *Token) (*Token, RefreshOrigin, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	snap := s.cache.Load()
	if snap == nil {
		var err error
		if snap, err = s.initial(ctx); err != nil {
			return nil, 0, err
		}
	}
	if rejected == nil {
		rejected = snap.tok
	}
	set, err := s.coord.Load(ctx)
	switch {
	case err != nil && !isTornRead(err):
		return nil, 0, err
	case err == nil && set == nil:
		return nil, 0, &RefreshError{Permanent: true, Reason: ReasonNoLogin}
	case err == nil && !s.behind(set):
		// A file still being written is skipped here (the flight reads
		// it again), and so is one behind the newest set this source
		// holds: a stale copy must not replace it (the flight writes the
		// newest one back).
		cur := newRefreshSnap(*set)
		if !sameLogin(snap, cur) {
			return nil, 0, s.remember(&RefreshError{Permanent: true, Reason: ReasonAccountChanged}, set)
		}
		if cur.tok.AccessToken != rejected.AccessToken && !cur.expired(s.clock()) && s.adopt(cur) {
			return cur.tok, RefreshFromStore, nil
		}
	}
	now := s.now()
	if s.heldFresh(rejected.AccessToken.Reveal(), now) {
		return nil, 0, errFreshRejected
	}
	f, err := s.start(ctx, snap, rejected, true)
	if err != nil {
		return nil, 0, err
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if f.err != nil {
		return nil, 0, f.err
	}
	if f.snap.tok.AccessToken == rejected.AccessToken {
		return nil, 0, ErrTokenUnchanged
	}
	origin := RefreshFromStore
	if f.exchanged {
		origin = RefreshFromEndpoint
	}
	return f.snap.tok, origin, nil
}

// errFreshRejected is RefreshWithOrigin's answer for a token held by
// [freshRejectionHold].
var errFreshRejected = fmt.Errorf("%w (the token endpoint issued it moments ago and the server refused it at once; it is not refreshed again for %s)",
	ErrTokenUnchanged, freshRejectionHold)

// heldFresh reports whether access is the token the endpoint issued to
// this source less than freshRejectionHold before now.
func (s *RefreshingTokenSource) heldFresh(access string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fresh.access != "" && s.fresh.access == access && now.Before(s.fresh.issued.Add(freshRejectionHold))
}

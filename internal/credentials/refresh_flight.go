package credentials

import (
	"context"
	"errors"
	"time"

	"github.com/agentauth/agentauth/internal/backoff"
)

// Backoff after a temporary refresh failure: full jitter in [d/2, d], d
// doubling from refreshBackoffBase to refreshBackoffMax.
const (
	refreshBackoffBase = time.Second
	refreshBackoffMax  = time.Minute
)

type refreshFlight struct {
	done chan struct{}
	snap *refreshSnap
	err  error
	// exchanged is set when snap came from the token endpoint (not from
	// a newer token found in the store).
	exchanged bool
}

// start joins the refresh in flight or starts one. held is the snapshot the
// caller saw; rejected, when set, is a token the server refused (the
// refresh then ignores the due rules). It fails at once, without a
// flight, with a remembered permanent failure (unless the store changed
// since: see [RefreshingTokenSource.recheck]) or, unless forced, with the
// last temporary failure during its backoff.
func (s *RefreshingTokenSource) start(ctx context.Context, held *refreshSnap, rejected *Token, force bool) (*refreshFlight, error) {
	s.mu.Lock()
	f, p := s.flight, s.perm
	closed := s.ctx.Err() != nil
	s.mu.Unlock()
	switch {
	case f != nil:
		return f, nil
	case closed:
		return nil, &RefreshError{Err: errors.New("token source closed")}
	case p != nil:
		set, err := s.recheck(ctx, p)
		if err != nil {
			return nil, err
		}
		// The store changed (a new login, a refresh by someone else):
		// forget the failure and look again.
		s.mu.Lock()
		if s.perm == p {
			s.perm = nil
			s.retryAt, s.backoff, s.lastErr = time.Time{}, 0, nil
		}
		s.mu.Unlock()
		cur := newRefreshSnap(*set)
		if !sameLogin(held, cur) {
			return nil, s.remember(&RefreshError{Permanent: true, Reason: ReasonAccountChanged}, set)
		}
		if !cur.due(s.clock()) && s.adopt(cur) {
			f := &refreshFlight{done: make(chan struct{}), snap: cur}
			close(f.done)
			return f, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight != nil {
		return s.flight, nil
	}
	if s.ctx.Err() != nil {
		return nil, &RefreshError{Err: errors.New("token source closed")}
	}
	if s.perm != nil { // a failure that happened meanwhile
		return nil, s.perm.err
	}
	if !force && s.now().Before(s.retryAt) && s.lastErr != nil {
		return nil, s.lastErr
	}
	f = &refreshFlight{done: make(chan struct{})}
	s.flight = f
	s.wg.Add(1)
	go s.run(f, held, rejected)
	return f, nil
}

// run is one refresh flight, on a context detached from every caller.
func (s *RefreshingTokenSource) run(f *refreshFlight, held *refreshSnap, rejected *Token) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	snap, set, exchanged, err := s.refreshLocked(ctx, held, rejected)

	s.mu.Lock()
	var re *RefreshError
	switch {
	case err == nil:
		s.retryAt, s.backoff, s.lastErr = time.Time{}, 0, nil
		s.adopt(snap)
		if exchanged {
			s.fresh = freshToken{access: snap.tok.AccessToken.Reveal(), issued: s.now()}
		}
	case errors.As(err, &re) && re.Permanent:
		s.perm = &permanentFailure{err: re, fp: fingerprint(set)}
	case isTornRead(err):
		// auth.json was being rewritten in place for longer than a read
		// retries: nothing is wrong with the login, so the next request
		// tries again at once instead of waiting out a backoff.
		err = &RefreshError{Err: err}
	default:
		if !errors.As(err, &re) {
			err = &RefreshError{Err: err}
		}
		s.backoff = backoff.Policy{Initial: refreshBackoffBase, Max: refreshBackoffMax}.Next(s.backoff)
		s.retryAt = s.now().Add(s.jitter(s.backoff))
		s.lastErr = err
	}
	f.snap, f.err, f.exchanged = snap, err, exchanged
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
	if err != nil {
		s.log.Debug("credentials: ChatGPT token refresh failed", "error", err)
	}
}

// refreshLocked takes the lock, re-reads the store, and either adopts a
// newer token found there or refreshes over the network and stores the
// result. set is what the store held (for remembering a failure);
// exchanged is set when the token came from the endpoint.
func (s *RefreshingTokenSource) refreshLocked(ctx context.Context, held *refreshSnap, rejected *Token) (_ *refreshSnap, set *TokenSet, exchanged bool, _ error) {
	release, err := s.coord.Lock(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	defer release()
	set, err = s.coord.Load(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	if set == nil {
		return nil, nil, false, &RefreshError{Permanent: true, Reason: ReasonNoLogin}
	}
	if newest := s.cache.Load(); s.behind(set) {
		// The store went back to an older set of the login: a stale copy
		// the Codex CLI saved (it writes the auth it loaded earlier, with
		// no lock), or a rotation of ours that never reached the store.
		// Its refresh token is spent: keep the newest set and put it back.
		if err := s.coord.CompareAndSwap(ctx, set, &newest.set); err != nil {
			s.unsaved.Store(true)
			s.log.Warn("credentials: auth.json holds an older ChatGPT token set; writing the newest one back failed, will retry", "error", err)
		} else {
			s.unsaved.Store(false)
			s.log.Debug("credentials: auth.json held an older ChatGPT token set; the newest one was written back")
		}
		cp := newest.set
		set = &cp
	}
	cur := newRefreshSnap(*set)
	if !sameLogin(held, cur) {
		return nil, set, false, &RefreshError{Permanent: true, Reason: ReasonAccountChanged}
	}
	target := held.tok.AccessToken
	if rejected != nil {
		target = rejected.AccessToken
	}
	if cur.tok.AccessToken != target && !cur.due(s.clock()) {
		return cur, set, false, nil // someone else refreshed: no network call
	}
	if set.RefreshToken == "" {
		return nil, set, false, &RefreshError{Permanent: true, Reason: ReasonNoRefreshToken}
	}
	if s.spent.has(set.RefreshToken) {
		// Never sent twice: the endpoint would answer
		// refresh_token_reused and end the login for every reader. Only a
		// store that went back to it without being behind (no newer set
		// held) gets here; wait for a newer one.
		return nil, set, false, &RefreshError{Err: errors.New("the stored refresh token was already exchanged; waiting for the newer one to be stored")}
	}
	// Once the request is out, the endpoint may rotate the tokens: cutting
	// the answer or its storing short (Close, a process shutting down)
	// would keep only the spent refresh token and log the user out. From
	// here on only the refresh's own deadline bounds the work.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
		defer cancel()
	}
	resp, err := s.exchange(ctx, set.RefreshToken)
	if err != nil {
		return nil, set, false, err
	}
	if !answerIsLogin(resp, held, cur) {
		// The endpoint answered with another account's or user's tokens.
		// None of them is stored, not even the rotated refresh token:
		// writing another login into this login's place would switch
		// every reader of the store (the Codex CLI, other processes, the
		// agent identity bound to it) to a login nobody chose. The store
		// keeps this login, whose refresh token the endpoint has just
		// spent, so it cannot be refreshed any more: the failure is
		// permanent and the user logs in again, which is also what any
		// other reader will be told when it tries that refresh token.
		s.log.Warn("credentials: the token endpoint answered with tokens of another ChatGPT account or user; nothing was stored")
		return nil, set, false, &RefreshError{Permanent: true, Reason: ReasonAccountChanged}
	}
	next, unusable := s.nextSet(*set, resp)
	if unusable == nil {
		s.learnSkew(resp)
	}
	snap := newRefreshSnap(next)
	if next != *set {
		if err := s.coord.CompareAndSwap(ctx, set, &next); err != nil {
			// The endpoint already rotated the tokens; the new ones are
			// valid even though the store could not take them. They are
			// held and written on the next Token call, by a later
			// refresh (the store still holds the spent set, which is
			// behind) and at Close.
			s.unsaved.Store(true)
			s.log.Warn("credentials: storing refreshed ChatGPT tokens failed; keeping them to store later", "error", err)
		} else {
			s.unsaved.Store(false)
		}
	}
	if unusable != nil {
		// Only the rotated refresh token is new; hold it with the old
		// access token, so that it is the one written back and sent next.
		s.adopt(snap)
		return nil, &next, false, unusable
	}
	snap.heldUntil = s.holdUntil(snap, resp.received)
	return snap, &next, true, nil
}

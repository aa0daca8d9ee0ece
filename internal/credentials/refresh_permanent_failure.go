package credentials

import (
	"context"
	"time"
)

type permanentFailure struct {
	err *RefreshError
	fp  string // the store's tokens when it happened

	// The store re-read that may end the failure (see recheck); guarded
	// by s.mu.
	checked time.Time     // when the last re-read started; zero: none yet
	reading chan struct{} // closed when the re-read in progress ends; nil: none
	changed *TokenSet     // the changed set a re-read found; nil: none
}

// permRecheckEvery is how often, at most, a remembered permanent failure
// re-reads the store to see whether it changed (by the source's clock).
const permRecheckEvery = time.Second

// recheck re-reads the store to see whether a remembered permanent failure
// p still holds: it returns the store's set when the store changed since
// the failure, and p's error otherwise (also when the read fails or ctx
// ends first: nothing was seen to end the failure). The read runs on the
// caller's ctx,
// outside s.mu, so a store that hangs holds up only callers whose context
// allows it; it happens at most once per [permRecheckEvery] (the failure
// is served in between) and concurrent callers share one read, each
// waiting for it no longer than its own ctx allows.
func (s *RefreshingTokenSource) recheck(ctx context.Context, p *permanentFailure) (*TokenSet, error) {
	s.mu.Lock()
	if p.changed != nil {
		set := p.changed
		s.mu.Unlock()
		return set, nil
	}
	if wait := p.reading; wait != nil {
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, p.err // nothing seen to change it
		}
		s.mu.Lock()
		set := p.changed
		s.mu.Unlock()
		if set == nil {
			return nil, p.err
		}
		return set, nil
	}
	now := s.now()
	if !p.checked.IsZero() && now.Sub(p.checked) < permRecheckEvery {
		s.mu.Unlock()
		return nil, p.err
	}
	p.checked = now
	done := make(chan struct{})
	p.reading = done
	s.mu.Unlock()

	set, err := s.coord.Load(ctx)
	s.mu.Lock()
	if err == nil && set != nil && fingerprint(set) != p.fp && !s.behind(set) {
		p.changed = set
	}
	p.reading = nil
	changed := p.changed
	s.mu.Unlock()
	close(done)
	if changed != nil {
		return changed, nil
	}
	return nil, p.err
}

func (s *RefreshingTokenSource) remember(err *RefreshError, set *TokenSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perm = &permanentFailure{err: err, fp: fingerprint(set)}
	return err
}

// fingerprint identifies a stored token set by its tokens, so a remembered
// failure ends when the store changes. It is kept in memory only.
func fingerprint(set *TokenSet) string {
	if set == nil {
		return ""
	}
	return set.AccessToken + "\x00" + set.RefreshToken + "\x00" + set.IDToken
}

package credentials

import (
	"context"
	"errors"
	"time"

	"github.com/agentauth/agentauth/internal/backoff"
)

// A rotation the store did not take (a full disk, a read-only directory,
// an outage of a shared store) lives only in the source's memory, while
// the store keeps the set whose refresh token the endpoint has spent:
// the next process to read it would send that token and be logged out.
// The source writes it again, in the background, on the next Token call
// (then after a backoff from saveBackoffBase doubling to saveBackoffMax
// while it keeps failing), before its next refresh, and once more at
// Close, bounded by closeSaveMax.
const (
	saveBackoffBase = 100 * time.Millisecond
	saveBackoffMax  = 30 * time.Second
	closeSaveMax    = 5 * time.Second
	// closeCheckMax bounds Close's look at a store that took every
	// rotation: a stale copy saved since (by the Codex CLI) is replaced by
	// the newest set, if the lock can be had that soon.
	closeCheckMax = 200 * time.Millisecond
)

// kickSave starts a background write of the unsaved rotation unless one
// runs, a refresh is in flight (it writes the rotation itself), the
// source is closed, or the last write failed less than the backoff ago.
func (s *RefreshingTokenSource) kickSave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saving || s.flight != nil || s.ctx.Err() != nil || s.now().Before(s.saveRetryAt) {
		return
	}
	s.saving = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		err := s.saveNewest(ctx)
		cancel()
		s.mu.Lock()
		s.saving = false
		if err != nil {
			s.saveBackoff = backoff.Policy{Initial: saveBackoffBase, Max: saveBackoffMax}.Next(s.saveBackoff)
			s.saveRetryAt = s.now().Add(s.saveBackoff)
		} else {
			s.saveBackoff, s.saveRetryAt = 0, time.Time{}
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Debug("credentials: writing the held ChatGPT tokens failed again", "error", err)
		}
	}()
}

// saveAtClose writes the unsaved rotation once more, bounded by the
// refresh timeout and closeSaveMax; Close calls it after every flight
// ended.
// A source that refreshed but has nothing unsaved still looks once, within
// closeCheckMax: the Codex CLI may have put a stale copy back since, and
// the next process would read its spent refresh token.
func (s *RefreshingTokenSource) saveAtClose() {
	budget := min(s.timeout, closeSaveMax)
	if !s.unsaved.Load() {
		if s.requests.Load() == 0 {
			return
		}
		budget = min(budget, closeCheckMax)
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if err := s.saveNewest(ctx); err != nil && s.unsaved.Load() {
		s.log.Warn("credentials: the refreshed ChatGPT tokens could not be stored before Close; the next process may find a spent refresh token", "error", err)
	}
}

// saveNewest writes the newest set the source holds over the store's,
// under the coordinator's lock, when the store is behind it, and clears
// unsaved once the store holds it or moved on. A store without a login
// (the user logged out) is left so: writing would bring the login back.
func (s *RefreshingTokenSource) saveNewest(ctx context.Context) error {
	release, err := s.coord.Lock(ctx)
	if err != nil {
		return err
	}
	defer release()
	set, err := s.coord.Load(ctx)
	if err != nil {
		return err
	}
	newest := s.cache.Load()
	switch {
	case newest == nil || set == nil:
	case fingerprint(set) == fingerprint(&newest.set):
	case s.behind(set):
		next := newest.set
		if err := s.coord.CompareAndSwap(ctx, set, &next); err != nil {
			return err
		}
	}
	s.unsaved.Store(false)
	return nil
}

// isTornRead reports whether err is auth.json caught while being written
// in place (it ended early, also after the read's retries), not a broken
// file or a failing store.
func isTornRead(err error) bool {
	return errors.Is(err, errEndOfInput)
}

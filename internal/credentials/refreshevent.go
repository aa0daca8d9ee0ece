package credentials

import (
	"context"
	"time"
)

// RefreshTrigger says why a token source refreshed a token.
type RefreshTrigger uint8

// The triggers of a [RefreshEvent].
const (
	// RefreshProactive: the token was close to expiry (or past it) and the
	// source refreshed it before any server rejected it.
	RefreshProactive RefreshTrigger = iota + 1
	// RefreshUnauthorized: a server rejected the token with 401 and the
	// caller asked for a fresh one ([Refresher.Refresh]).
	RefreshUnauthorized
)

// String returns "proactive", "unauthorized" or "unknown".
func (t RefreshTrigger) String() string {
	switch t {
	case RefreshProactive:
		return "proactive"
	case RefreshUnauthorized:
		return "unauthorized"
	}
	return "unknown"
}

// RefreshEvent describes one refresh attempt of a token source, for
// observability. It carries no token: only why, when, how long, and the
// attempt's error (nil on success), which like every error of this package
// never contains a credential.
type RefreshEvent struct {
	Trigger  RefreshTrigger
	Start    time.Time
	Duration time.Duration
	Err      error
}

// RefreshReporter is implemented by a [TokenSource] that refreshes tokens
// itself (at a token endpoint) and can report each attempt. A transport
// built on such a source calls SetRefreshObserver once, before its first
// request, with a function that is safe for concurrent use and returns
// quickly; the source then calls it after every refresh attempt with the
// context of the call that caused the refresh (context.Background for a
// refresh of its own, in the background), so that a tracer can parent the
// refresh to the request that waited for it.
//
// A source used by several transports reports to whichever called
// SetRefreshObserver last. A source that reports its refreshes is not
// timed again by the transport when it calls [Refresher.Refresh].
type RefreshReporter interface {
	SetRefreshObserver(func(ctx context.Context, ev RefreshEvent))
}

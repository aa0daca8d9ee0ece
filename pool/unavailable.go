package pool

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnavailable is wrapped by the error of [Pool.RoundTrip] when no member
// can serve. While a member is at its usage limit the error is temporary
// (transport.IsTemporary) and names the earliest reset, which
// [Pool.Members] gives as LimitedUntil; once every member has left (its
// login failed permanently) it is not.
var ErrUnavailable = errors.New("pool: no login can serve")

// limitedError is ErrUnavailable while members are at their usage limit.
type limitedError struct{ resetsAt time.Time }

func (e *limitedError) Error() string {
	return ErrUnavailable.Error() + ": every login is at its usage limit; the first resets at " + e.resetsAt.UTC().Format(time.RFC3339)
}

func (e *limitedError) Unwrap() error { return ErrUnavailable }

// Temporary is true: the limits reset.
func (e *limitedError) Temporary() bool { return true }

// errNoMembers is ErrUnavailable once every member has left.
var errNoMembers = fmt.Errorf("%w: every login failed permanently", ErrUnavailable)

// unavailable is the error for a request no member can serve at now.
func (p *Pool) unavailable(now time.Time) error {
	var earliest int64
	for _, m := range p.members {
		if m.gone.Load() {
			continue
		}
		if u := m.limitedUntil.Load(); u > now.UnixNano() && (earliest == 0 || u < earliest) {
			earliest = u
		}
	}
	if earliest == 0 {
		return errNoMembers
	}
	return &limitedError{resetsAt: time.Unix(0, earliest)}
}

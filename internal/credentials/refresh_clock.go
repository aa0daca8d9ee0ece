package credentials

import "time"

// A local clock that is off judges every token wrong: two hours fast, a
// token the endpoint has just issued looks expired and every request
// refreshes again. The source therefore judges exp by the endpoint's
// clock, estimated at each exchange from the new access token's iat (or,
// without iat, the answer's Date header): the endpoint stamped it between
// the local times the request went out and the answer came, to the
// second below, so the skew k (local minus endpoint) lies in
// (sent − iat − 1 s, received − iat]. When that range comes within
// skewIgnored of zero the clocks are taken to agree (latency is not
// skew, and the refresh window absorbs small drift); otherwise its lower
// end is used, which never puts the endpoint's clock behind the truth, so
// tokens are due early rather than late.
const (
	skewIgnored = 30 * time.Second
	// freshHoldMax bounds how long a token the endpoint has just issued is
	// neither due nor expired, whatever the clocks say: a quarter of its
	// lifetime, at most this.
	freshHoldMax = time.Minute
)

// instant is one reading of the source's clocks.
type instant struct {
	local  time.Time // the source's clock (RefreshOptions.Now)
	server time.Time // local corrected by the estimated skew
}

// clock reads the clocks.
func (s *RefreshingTokenSource) clock() instant {
	local := s.now()
	return instant{local: local, server: local.Add(-time.Duration(s.skew.Load()))}
}

// learnSkew updates the skew estimate from a token answer.
func (s *RefreshingTokenSource) learnSkew(resp *tokenResponse) {
	ref := accessTokenClaims(resp.AccessToken).IssuedAt
	if ref.IsZero() {
		ref = resp.date
	}
	if ref.IsZero() || resp.sent.IsZero() || resp.received.IsZero() {
		return
	}
	lo, hi := resp.sent.Sub(ref)-time.Second, resp.received.Sub(ref)
	if lo < skewIgnored && hi > -skewIgnored {
		s.skew.Store(0)
		return
	}
	s.skew.Store(int64(lo))
}

// holdUntil returns until when (local clock) a token the endpoint issued
// and the source received at received is neither due nor expired: a
// quarter of its lifetime (exp − iat), at most freshHoldMax. A token is
// valid for at least that long after it is received whatever the local
// clock reads, so a wrong clock never makes it refresh again at once.
// Zero when the lifetime is unknown.
func (s *RefreshingTokenSource) holdUntil(snap *refreshSnap, received time.Time) time.Time {
	if snap.iat.IsZero() || snap.exp.IsZero() || !snap.iat.Before(snap.exp) || received.IsZero() {
		return time.Time{}
	}
	return received.Add(min(freshHoldMax, snap.exp.Sub(snap.iat)/4))
}

// Package backoff is the one exponential backoff of agentauth's retry
// loops (the token refresh, the agent and task registration retries, the
// thread cache, the auth.json re-read while the Codex CLI rewrites it, the
// unsaved-rotation write-back, the identity-store fallback, the workload
// identity token exchange): a delay doubling from an initial value to a
// cap, and the jitter that spreads it. It holds no clock and no random
// source: callers pass the uniform value they drew, so tests choose it and
// user options never carry it.
package backoff

import (
	"math"
	"time"
)

// Policy is a delay that starts at Initial and doubles per consecutive
// failure, never above Max.
type Policy struct {
	Initial, Max time.Duration
}

// Delay returns the delay after the n-th consecutive failure (n ≥ 1):
// Initial·2^(n−1), capped at Max. It does not overflow, whatever Max is.
func (p Policy) Delay(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		if d > p.Max/2 { // doubling would pass the cap (and could overflow)
			d = p.Max
			break
		}
		d *= 2
	}
	return min(d, p.Max)
}

// Next returns the delay that follows prev, for a loop that keeps the last
// delay rather than a failure count: Initial when prev is zero (no failure
// yet), else twice prev, capped at Max.
func (p Policy) Next(prev time.Duration) time.Duration {
	return min(max(2*prev, p.Initial), p.Max)
}

// Equal is "equal jitter": a wait in [d/2, d], d/2 + u·(d − d/2), for a
// uniform u in [0, 1] (clamped to it).
func Equal(d time.Duration, u float64) time.Duration {
	half := d / 2
	return half + time.Duration(clamp(u, 1)*float64(d-half))
}

// Shorten takes a random fraction off d: d − d·frac·u, for a uniform u in
// [0, 1) (clamped to it), so the wait stays in ((1−frac)·d, d] and never
// passes the cap d obeys.
func Shorten(d time.Duration, frac, u float64) time.Duration {
	return d - time.Duration(float64(d)*frac*clamp(u, math.Nextafter(1, 0)))
}

// clamp keeps u in [0, hi]; NaN counts as 0, so a misbehaving random
// source can neither stretch a wait nor make it negative.
func clamp(u, hi float64) float64 {
	switch {
	case !(u >= 0):
		return 0
	case u > hi:
		return hi
	}
	return u
}

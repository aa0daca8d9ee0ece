package transport

import (
	"context"
	"errors"
	"time"

	"github.com/agentauth/agentauth/internal/backoff"
	"github.com/agentauth/agentauth/internal/taskcache"
)

// maxStoreBackoff caps the wait before an IdentityStore that failed
// temporarily is asked again. A store outage (Redis down) is usually short
// and says nothing about the AuthAPI, so it must not cost the login the
// whole ProvisioningCooldown of Bearer.
const maxStoreBackoff = time.Minute

// fallback puts the login on Bearer for the cooldown, announced and
// counted once.
func (p *provisioner) fallback(ctx context.Context, ls *loginState, next *provisionState, cause error) {
	now := p.t.s.Now()
	next.fallbackUntil, next.fallbackSince = now.Add(p.t.s.ProvisioningCooldown), now
	ls.state.Store(next)
	p.announceFallback(ctx, "agentauth: agent provisioning unavailable; using Bearer during the cooldown",
		p.t.s.ProvisioningCooldown, cause)
}

// storeFallback keeps the login on Bearer while its IdentityStore fails
// temporarily, asking the store again after a short backoff (the thread
// cache's initial backoff, doubling per consecutive failure, capped at
// maxStoreBackoff) instead of the whole cooldown. The outage is announced
// and counted as one fallback when it starts; later failures of the same
// outage only lengthen the wait.
func (p *provisioner) storeFallback(ctx context.Context, ls *loginState, st, next *provisionState, cause error) {
	now := p.t.s.Now()
	n := st.storeFailures + 1
	d := p.storeBackoff(n)
	next.storeFailures, next.fallbackUntil, next.fallbackSince = n, now.Add(d), now
	if st.storeFailures > 0 && !st.fallbackSince.IsZero() {
		next.fallbackSince = st.fallbackSince
	}
	ls.state.Store(next)
	if st.storeFailures > 0 {
		p.t.s.Logger.DebugContext(ctx, "agentauth: identity store still unavailable; using Bearer",
			"retry_in", d.String(), "failures", n, "error", cause)
		return
	}
	p.announceFallback(ctx, "agentauth: identity store unavailable; using Bearer until it answers", d, cause)
}

// storeBackoff is the wait after the n-th consecutive store failure.
func (p *provisioner) storeBackoff(n int) time.Duration {
	d := p.t.s.ThreadCache.BackoffInitial
	if d <= 0 {
		d = taskcache.DefaultBackoffInitial
	}
	return backoff.Policy{Initial: d, Max: maxStoreBackoff}.Delay(n)
}

// endFallback reports the end of the fallback st was in, if any.
func (p *provisioner) endFallback(ctx context.Context, st *provisionState, now time.Time) {
	if st.fallbackSince.IsZero() {
		return
	}
	cooldown := p.t.s.ProvisioningCooldown
	p.t.obs.fallbackEnd(ctx, st.fallbackSince.Add(cooldown), cooldown, now)
}

// taskFallback puts a login whose provisioned identity cannot get a task
// (task registration still unavailable after its attempts) on Bearer for
// the cooldown, as an unavailable provisioning does: the login has a
// Bearer token, and an outage of the AuthAPI must not fail its requests.
// The identity is kept and used again after the cooldown. Concurrent
// requests that met the same outage announce and count it once.
func (p *provisioner) taskFallback(ctx context.Context, ls *loginState, agent *agentState, cause error) {
	for {
		st := ls.state.Load()
		now := p.t.s.Now()
		if st.agent != agent || now.Before(st.fallbackUntil) {
			return // replaced, or already falling back
		}
		next := *st
		next.fallbackUntil, next.fallbackSince = now.Add(p.t.s.ProvisioningCooldown), now
		if ls.state.CompareAndSwap(st, &next) {
			p.announceFallback(ctx, "agentauth: agent task registration unavailable; using Bearer during the cooldown",
				p.t.s.ProvisioningCooldown, cause)
			return
		}
	}
}

// announceFallback counts, reports and logs one Bearer fallback lasting d.
func (p *provisioner) announceFallback(ctx context.Context, msg string, d time.Duration, cause error) {
	p.t.stats.bearerFallbacks.Add(1)
	p.t.obs.fallbackStart(ctx, d, cause)
	p.t.s.Logger.WarnContext(ctx, msg, "cooldown", d.String(), "error", cause)
}

// storeError is a failure of the IdentityStore while provisioning; whether
// it is temporary is the store's own error's to say.
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string {
	return "agentauth: " + e.op + " agent identity: " + e.err.Error()
}

func (e *storeError) Unwrap() error { return e.err }

// storeOutage reports whether err is the IdentityStore failing temporarily.
func storeOutage(err error) bool {
	var se *storeError
	return errors.As(err, &se) && IsTemporary(err)
}

package transport

import (
	"context"
	"math"
	"time"

	"github.com/agentauth/agentauth/internal/identityreplace"
)

// signed records that agent signs: it ends a task-registration fallback
// of ls once agent signs again after the cooldown, reporting the end once,
// and when agent is the first signature of a fresh runtime it clears the
// runtime's refusals and stores a replacement that was waiting for this
// proof. It costs one atomic load when there was nothing to record.
func (p *provisioner) signed(ctx context.Context, ls *loginState, agent *agentState) {
	for {
		st := ls.state.Load()
		if st.agent != agent || (st.fallbackUntil.IsZero() && !st.fresh) {
			return
		}
		next := *st
		next.fallbackUntil, next.fallbackSince = time.Time{}, time.Time{}
		next.fresh, next.unsaved, next.refusals = false, false, 0
		if ls.state.CompareAndSwap(st, &next) {
			p.endFallback(ctx, st, p.t.s.Now())
			if st.unsaved {
				p.saveProven(ctx, agent, st.stale)
			}
			return
		}
	}
}

// saveProven stores a replacement identity after its first accepted task.
// A failure is logged: the identity works in this process anyway. A store
// where the first identity wins may refuse it because another process
// stored its own replacement meanwhile; that one stays stored, and this
// process keeps signing with the identity it has proven.
func (p *provisioner) saveProven(ctx context.Context, agent *agentState, stale string) {
	rec := agent.record
	if err := p.store.SaveAgentIdentity(identityreplace.With(ctx, stale), &rec); err != nil {
		p.t.s.Logger.WarnContext(ctx, "agentauth: could not persist the provisioned agent identity", "runtime", rec.AgentRuntimeID, "error", err)
	}
}

// markStale drops agent from ls after the AuthAPI said it no longer knows
// its runtime, so the next request provisions a new identity (the store's
// record of the old runtime is skipped, and replaced once the new one
// signs). It reports false, keeping agent, when the login must not
// register another agent now:
//
//   - within permanentFailureBackoff of the last replacement, or of the
//     hold below: a login whose identities keep being rejected gets the
//     error, not a stream of registrations;
//   - when agent is fresh (registered by this provisioner moments ago, no
//     task of it accepted yet): the AuthAPI refusing a runtime it has just
//     registered says the runtime is not the problem (a revoked workspace,
//     a proxy), and a replacement would be refused too. agent is kept and
//     its task registration retried after a hold that doubles with each
//     refusal, from twice permanentFailureBackoff up to the
//     ProvisioningCooldown; only once the hold has reached the cooldown is
//     the runtime replaced, at most once per cooldown.
func (p *provisioner) markStale(ls *loginState, agent *agentState) bool {
	for {
		st := ls.state.Load()
		if st.agent != agent {
			return true // already replaced (or being replaced) by another request
		}
		now := p.t.s.Now()
		if now.Before(st.replaceAfter) {
			return false
		}
		refusals, wait := 0, permanentFailureBackoff
		if st.fresh {
			refusals = st.refusals + 1
			wait = p.replaceBackoff(refusals)
			if atCap := st.refusals > 0 && p.replaceBackoff(st.refusals) >= p.replaceBackoff(math.MaxInt); !atCap {
				next := *st
				next.refusals, next.replaceAfter = refusals, now.Add(wait)
				if ls.state.CompareAndSwap(st, &next) {
					p.t.s.Logger.WarnContext(context.Background(),
						"agentauth: the AuthAPI refused the tasks of an agent runtime it has just registered; keeping it and retrying later instead of registering another",
						"runtime", agent.record.AgentRuntimeID, "retry_in", wait.String(), "refusals", refusals)
					return false
				}
				continue
			}
		}
		next := &provisionState{stale: agent.record.AgentRuntimeID, replaceAfter: now.Add(wait), refusals: refusals}
		if ls.state.CompareAndSwap(st, next) {
			p.t.s.Logger.WarnContext(context.Background(), "agentauth: the AuthAPI no longer knows the agent runtime; provisioning a new identity",
				"runtime", agent.record.AgentRuntimeID)
			return true
		}
	}
}

// replaceBackoff is the hold after the n-th consecutive refusal of a fresh
// runtime: permanentFailureBackoff doubled n times, capped at the
// ProvisioningCooldown (and never below permanentFailureBackoff).
func (p *provisioner) replaceBackoff(n int) time.Duration {
	d, limit := permanentFailureBackoff, max(p.t.s.ProvisioningCooldown, permanentFailureBackoff)
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

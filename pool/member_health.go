package pool

import (
	"context"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
	"github.com/agentauth/agentauth/usage"
)

// available reports whether m may take work now. The clock is read only
// for a member that was limited; once its reset has passed, the limit is
// cleared so the next request need not read it.
func (m *member) available(now func() time.Time) bool {
	if m.gone.Load() {
		return false
	}
	u := m.limitedUntil.Load()
	if u == 0 {
		return true
	}
	if now().UnixNano() >= u {
		m.limitedUntil.CompareAndSwap(u, 0)
		return true
	}
	return false
}

// limit keeps new work off m until until (or later, if already so), and
// reports whether m was serving at now.
func (m *member) limit(until, now time.Time) (wasServing bool) {
	v := until.UnixNano()
	for {
		cur := m.limitedUntil.Load()
		if cur >= v || m.limitedUntil.CompareAndSwap(cur, v) {
			return cur < now.UnixNano()
		}
	}
}

func (m *member) usedPercent() float64 { return math.Float64frombits(m.used.Load()) }

// maxLimit bounds how long a usage limit keeps work off a member: the
// longest window the backend reports is a week.
const maxLimit = 8 * 24 * time.Hour

// observe keeps the usage an answer of m reported.
func (p *Pool) observe(m *member, resp *http.Response) {
	if v, ok := maxUsedPercent(resp.Header); ok {
		if bits := math.Float64bits(v); m.used.Load() != bits {
			m.used.Store(bits)
		}
	}
}

// limited keeps new work off m until the limit its 429 reported resets.
func (p *Pool) limited(ctx context.Context, m *member, le usage.Snapshot, now time.Time) {
	until := le.LimitResetsAt
	if !until.After(now) {
		until = now.Add(limitCooldown)
	}
	if limit := now.Add(maxLimit); until.After(limit) {
		until = limit // a reset beyond any window Codex knows is not believed
	}
	if !m.limit(until, now) {
		return // already limited: said once
	}
	if p.shared != nil {
		p.shareLimit(ctx, m, until)
	}
	p.log.Info("agentauth/pool: login at its usage limit; no new work until its reset",
		"member", m.name, "type", le.LimitReached, "resets_at", until)
}

// failed removes m from the pool when err says its login failed for good,
// and reports whether it did.
func (p *Pool) failed(ctx context.Context, m *member, err error) bool {
	if ctx.Err() != nil || !permanent(err) {
		return false
	}
	m.leave.Do(func() {
		m.gone.Store(true)
		p.log.Warn("agentauth/pool: login failed permanently; it leaves the pool", "member", m.name, "error", err)
	})
	return true
}

// permanent reports whether err is a login that cannot work again without
// the user: a refresh the token endpoint refused for good, an agent
// identity the AuthAPI no longer takes, or provisioning refused.
func permanent(err error) bool {
	var re *credentials.RefreshError
	if errors.As(err, &re) && re.Permanent {
		return true
	}
	if errors.Is(err, transport.ErrStaleIdentity) {
		return true
	}
	var te *transport.Error
	return errors.As(err, &te) && errors.Is(te, transport.ErrProvisioning) && !te.Temporary()
}

package pool

import (
	"context"
	"time"
)

// Shared is what the replicas of a fleet share about one pool's members,
// so that they agree which member serves a thread and none keeps sending
// work to a login another replica found limited. Members are matched by
// [Member.Name]: every replica must name its members alike. An
// implementation must be safe for concurrent use; redisstore.PoolState is
// one. A failing call never fails a request: the replica decides alone.
type Shared interface {
	// Assign returns the member that serves thread fleet-wide: the one
	// stored for it, unless that one is in avoid (it cannot serve on this
	// replica), else proposed, which it stores; the entry lives for ttl
	// after the last Assign.
	Assign(ctx context.Context, thread, proposed string, avoid []string, ttl time.Duration) (string, error)
	// Limit records that member takes no work until until.
	Limit(ctx context.Context, member string, until time.Time) error
	// Limits returns the limits recorded that have not passed.
	Limits(ctx context.Context) (map[string]time.Time, error)
}

// sharedSyncEvery is how often a replica reads the fleet's limits.
const sharedSyncEvery = time.Second

// sharedTimeout bounds one call to the shared state.
const sharedTimeout = 2 * time.Second

// syncLimits reads the fleet's limits when the last read is older than
// sharedSyncEvery at now; one request at a time does it. With shared state
// every request reads the clock for it (tens of ns), so a limit another
// replica met is seen within sharedSyncEvery.
func (p *Pool) syncLimits(ctx context.Context, now time.Time) {
	last := p.lastSync.Load()
	if now.UnixNano()-last < int64(sharedSyncEvery) || !p.lastSync.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedTimeout)
	defer cancel()
	limits, err := p.shared.Limits(ctx)
	if err != nil {
		p.log.DebugContext(ctx, "agentauth/pool: reading the fleet's limits failed", "error", err)
		return
	}
	for name, until := range limits {
		if i, ok := p.index[name]; ok {
			p.members[i].limit(until, now)
		}
	}
}

// sharedAssign asks the fleet which member serves thread, proposing the
// member at index i (the local pick); it returns i when the fleet names no
// member this replica can use.
func (p *Pool) sharedAssign(ctx context.Context, thread string, i int) int {
	var avoid []string
	for _, m := range p.members {
		if !m.available(p.now) {
			avoid = append(avoid, m.name)
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedTimeout)
	defer cancel()
	name, err := p.shared.Assign(ctx, thread, p.members[i].name, avoid, p.ttl)
	if err != nil {
		p.log.DebugContext(ctx, "agentauth/pool: the fleet's thread assignment failed; deciding alone", "error", err)
		return i
	}
	if j, ok := p.index[name]; ok && p.members[j].available(p.now) {
		return j
	}
	return i
}

// shareLimit tells the fleet that m is limited until until.
func (p *Pool) shareLimit(ctx context.Context, m *member, until time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedTimeout)
	defer cancel()
	if err := p.shared.Limit(ctx, m.name, until); err != nil {
		p.log.DebugContext(ctx, "agentauth/pool: sharing a usage limit failed", "member", m.name, "error", err)
	}
}

package pool

import (
	"context"
	"strconv"

	"github.com/agentauth/agentauth/internal/taskcache"
)

// noMember is the id of a thread assignment made when no member could
// serve; it is dropped at once.
const noMember = "none"

// assign picks the member of a thread that has none: the thread cache's
// registration, so concurrent first requests of a thread agree on one.
func (p *Pool) assign(ctx context.Context, thread string) (string, error) {
	if p.shared != nil {
		p.syncLimits(ctx, p.now())
	}
	i := p.pick(-1)
	if i < 0 {
		return noMember, nil
	}
	if p.shared != nil {
		i = p.sharedAssign(ctx, thread, i)
	}
	return strconv.Itoa(i), nil
}

// pick returns the index of the least used available member other than
// skip, starting the scan at a rotating member so equals take turns; -1
// when none is available.
func (p *Pool) pick(skip int) int {
	n := len(p.members)
	start := int((p.rr.Add(1) - 1) % uint64(n))
	best, bestUsed := -1, 0.0
	for k := range n {
		i := (start + k) % n
		m := p.members[i]
		if i == skip || !m.available(p.now) {
			continue
		}
		if u := m.usedPercent(); best < 0 || u < bestUsed {
			best, bestUsed = i, u
		}
	}
	return best
}

// threadMember returns the member of thread at now, assigning one if the
// thread has none or its member can no longer serve; -1 when no member
// can serve. t is the thread's cached assignment, if the caller has it.
func (p *Pool) threadMember(ctx context.Context, thread string, t *taskcache.Task) (int, error) {
	for attempt := 0; attempt < 3; attempt++ {
		if t == nil {
			var err error
			if t, err = p.threads.Get(ctx, thread); err != nil {
				return -1, err
			}
		}
		if i := p.memberOf(t); i >= 0 && p.members[i].available(p.now) {
			return i, nil
		}
		// Its member cannot serve (or none could): assign again.
		p.threads.Invalidate(t)
		if t.ID() == noMember {
			return -1, nil
		}
		t = p.threads.Peek(thread, p.now())
	}
	return p.pick(-1), nil
}

// memberOf returns the index of the member t assigns, or -1.
func (p *Pool) memberOf(t *taskcache.Task) int {
	i, err := strconv.Atoi(t.ID())
	if err != nil || i < 0 || i >= len(p.members) {
		return -1
	}
	return i
}

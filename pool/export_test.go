package pool

import "time"

// NewWithClock is New on a test's clock: the seam for limits, resets and
// the affinity table's idle time. It is not part of the package's API.
func NewWithClock(opts Options, now func() time.Time, members ...Member) (*Pool, error) {
	return newPool(opts, now, members)
}

// MaxUsedPercent is the allocation-free read of an answer's used percent.
var MaxUsedPercent = maxUsedPercent

// UsedPercents is the last used percent the pool read from each member's
// answers, in member order.
func UsedPercents(p *Pool) []float64 {
	out := make([]float64, len(p.members))
	for i, m := range p.members {
		out[i] = m.usedPercent()
	}
	return out
}

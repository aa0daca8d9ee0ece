// demo's latencies: registration durations and the percentiles of samples.

package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/agentauth/agentauth/transport"
)

// demoMaxRegistrationSamples bounds the registration durations a run
// keeps: one per thread (at most 10,000) plus re-registrations.
const demoMaxRegistrationSamples = 100_000

// registrationTimes collects, from the transport's Observer, the duration
// of each successful thread task registration. Events arrive on the
// goroutines that register, so it locks; it keeps at most max samples.
type registrationTimes struct {
	max int
	mu  sync.Mutex
	d   []time.Duration
}

func (r *registrationTimes) record(_ context.Context, ev transport.Event) {
	if ev.Op != transport.OpRegistration || ev.Task != "thread" || ev.Err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.d) < r.max {
		r.d = append(r.d, ev.Duration)
	}
}

func (r *registrationTimes) snapshot() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.d)
}

// latencyPercentiles returns the nearest-rank p50 and p99 of the samples
// (negative ones, meaning no sample, are skipped) in milliseconds with three
// decimals; ok is false when there is no sample at all.
func latencyPercentiles(samples []time.Duration) (p50, p99 float64, ok bool) {
	valid := make([]time.Duration, 0, len(samples))
	for _, d := range samples {
		if d >= 0 {
			valid = append(valid, d)
		}
	}
	if len(valid) == 0 {
		return 0, 0, false
	}
	slices.Sort(valid)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(valid)))) - 1
		return valid[max(i, 0)]
	}
	return roundMS(rank(0.50)), roundMS(rank(0.99)), true
}

func roundMS(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

package taskcache

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// withDefaults checks opts and returns them with every zero field set to
// its default (see CacheOptions for each rule).
func withDefaults(opts CacheOptions) (CacheOptions, error) {
	o := opts
	switch {
	case o.Capacity < 0:
		return o, fmt.Errorf("resolver: CacheOptions.Capacity %d is negative", o.Capacity)
	case o.Capacity == 0:
		o.Capacity = DefaultCapacity
	}
	if o.Capacity > math.MaxInt32 {
		return o, fmt.Errorf("resolver: CacheOptions.Capacity %d is too large", o.Capacity)
	}
	if o.IdleTTL == 0 {
		o.IdleTTL = DefaultIdleTTL
	}
	switch {
	case o.Timeout < 0:
		return o, fmt.Errorf("resolver: CacheOptions.Timeout %v is negative", o.Timeout)
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.BackoffInitial < 0:
		return o, fmt.Errorf("resolver: CacheOptions.BackoffInitial %v is negative", o.BackoffInitial)
	case o.BackoffInitial == 0:
		o.BackoffInitial = DefaultBackoffInitial
	}
	switch {
	case o.BackoffMax < 0:
		return o, fmt.Errorf("resolver: CacheOptions.BackoffMax %v is negative", o.BackoffMax)
	case o.BackoffMax == 0:
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffInitial)
	case o.BackoffMax < o.BackoffInitial:
		return o, fmt.Errorf("resolver: CacheOptions.BackoffMax %v is below BackoffInitial %v", o.BackoffMax, o.BackoffInitial)
	}
	switch {
	case math.IsNaN(o.BackoffJitter) || o.BackoffJitter > 1:
		return o, fmt.Errorf("resolver: CacheOptions.BackoffJitter %v is not a fraction in [0, 1]", o.BackoffJitter)
	case o.BackoffJitter < 0:
		o.BackoffJitter = 0
	case o.BackoffJitter == 0:
		o.BackoffJitter = DefaultBackoffJitter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}

	return o, nil
}

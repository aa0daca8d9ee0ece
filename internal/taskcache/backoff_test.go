package taskcache

import (
	"math"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	const s = time.Second
	fixed := func(r float64) func() float64 { return func() float64 { return r } }
	for _, tc := range []struct {
		name     string
		p        backoffPolicy
		failures int
		want     time.Duration
	}{
		{"first failure", backoffPolicy{initial: s, max: time.Minute}, 1, s},
		{"doubles", backoffPolicy{initial: s, max: time.Minute}, 4, 8 * s},
		{"capped", backoffPolicy{initial: s, max: time.Minute}, 7, time.Minute},
		{"cap is not a power of two", backoffPolicy{initial: s, max: 5 * s}, 4, 5 * s},
		{"huge count does not overflow", backoffPolicy{initial: s, max: time.Minute}, 1 << 30, time.Minute},
		{"huge cap does not overflow", backoffPolicy{initial: 1, max: math.MaxInt64}, 200, math.MaxInt64},
		{"initial equals max", backoffPolicy{initial: 3 * s, max: 3 * s}, 9, 3 * s},
		{"jitter r=0 keeps the base", backoffPolicy{initial: s, max: time.Minute, jitter: 0.5, rand: fixed(0)}, 2, 2 * s},
		{"jitter r=0.5", backoffPolicy{initial: s, max: time.Minute, jitter: 0.5, rand: fixed(0.5)}, 2, 1500 * time.Millisecond},
		{"full jitter r=0.5", backoffPolicy{initial: s, max: time.Minute, jitter: 1, rand: fixed(0.5)}, 3, 2 * s},
		{"jitter applies after the cap", backoffPolicy{initial: s, max: 10 * s, jitter: 0.5, rand: fixed(0.5)}, 9, 7500 * time.Millisecond},
		{"rand above range is clamped", backoffPolicy{initial: s, max: time.Minute, jitter: 0.5, rand: fixed(7)}, 1, 500*time.Millisecond + 1},
		{"negative rand is clamped", backoffPolicy{initial: s, max: time.Minute, jitter: 0.5, rand: fixed(-3)}, 1, s},
		{"NaN rand is clamped", backoffPolicy{initial: s, max: time.Minute, jitter: 0.5, rand: fixed(math.NaN())}, 1, s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.delay(tc.failures); got != tc.want {
				t.Errorf("delay(%d) = %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
}

// Whatever Rand returns, the wait stays within ((1−jitter)·base, base].
func TestBackoffDelayBounds(t *testing.T) {
	for _, r := range []float64{0, 1e-9, 0.25, 0.5, 0.75, 0.999999, 1, 2, -1, math.Inf(1), math.NaN()} {
		for n := 1; n <= 10; n++ {
			p := backoffPolicy{initial: time.Second, max: 30 * time.Second, jitter: 0.5, rand: func() float64 { return r }}
			base := min(time.Second<<(n-1), 30*time.Second)
			if d := p.delay(n); d > base || d <= base/2 {
				t.Fatalf("r=%v n=%d: delay %v outside (%v, %v]", r, n, d, base/2, base)
			}
		}
	}
}

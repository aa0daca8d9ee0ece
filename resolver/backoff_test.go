package resolver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
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

func TestBackoffErrorContract(t *testing.T) {
	until := time.Date(2026, 4, 23, 0, 0, 1, 500_000_000, time.UTC)
	cause := &RegistrationError{Key: "thread-1", Err: errBoom}
	var err error = &BackoffError{Key: "thread-1", Until: until, Failures: 3, Err: cause}

	msg := err.Error()
	for _, want := range []string{"2026-04-23T00:00:01.5Z", "3 consecutive", `"thread-1"`, "boom"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, missing %q", msg, want)
		}
	}
	var berr *BackoffError
	var rerr *RegistrationError
	if !errors.As(err, &berr) || !errors.As(err, &rerr) || rerr != cause || !errors.Is(err, errBoom) {
		t.Error("BackoffError does not unwrap to its RegistrationError and cause")
	}
	var tmp interface{ Temporary() bool }
	if !errors.As(err, &tmp) || !tmp.Temporary() {
		t.Error("BackoffError is not Temporary")
	}
}

type tempErr struct{ temp, timeout bool }

func (e tempErr) Error() string   { return "temp" }
func (e tempErr) Temporary() bool { return e.temp }
func (e tempErr) Timeout() bool   { return e.timeout }

func TestRegistrationErrorTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errBoom, false},
		{ErrRegistrationPanic, false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("attempt timed out: %w", context.DeadlineExceeded), true},
		{context.Canceled, false},
		{tempErr{temp: true}, true},
		{tempErr{timeout: true}, true},
		{fmt.Errorf("wrapped: %w", tempErr{}), false},
		{fmt.Errorf("wrapped: %w", tempErr{temp: true}), true},
	} {
		e := &RegistrationError{Key: "k", Err: tc.err}
		if got := e.Temporary(); got != tc.want {
			t.Errorf("RegistrationError{%v}.Temporary() = %v, want %v", tc.err, got, tc.want)
		}
		if !errors.Is(e, tc.err) || !strings.Contains(e.Error(), `"k"`) {
			t.Errorf("RegistrationError{%v} does not unwrap or name its key: %q", tc.err, e.Error())
		}
	}
}

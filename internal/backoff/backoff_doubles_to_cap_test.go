package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/backoff"
)

func TestDelayDoublesFromInitialToMax(t *testing.T) {
	p := backoff.Policy{Initial: 250 * time.Millisecond, Max: 5 * time.Second}
	want := []time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for n, w := range want {
		if got := p.Delay(n); got != w {
			t.Errorf("Delay(%d) = %v, want %v", n, got, w)
		}
	}
	huge := backoff.Policy{Initial: time.Second, Max: math.MaxInt64}
	if got := huge.Delay(1000); got != math.MaxInt64 {
		t.Errorf("Delay(1000) with no practical cap = %v, want the cap (no overflow)", got)
	}
}

func TestNextFollowsTheSameSequenceAsDelay(t *testing.T) {
	p := backoff.Policy{Initial: time.Millisecond, Max: 64 * time.Millisecond}
	var prev time.Duration
	for n := 1; n <= 10; n++ {
		prev = p.Next(prev)
		if want := p.Delay(n); prev != want {
			t.Fatalf("Next after %d failures = %v, Delay(%d) = %v", n, prev, n, want)
		}
	}
}

func TestJitterStaysInItsRange(t *testing.T) {
	d := 10 * time.Second
	for _, tt := range []struct {
		u    float64
		want time.Duration
	}{{0, 5 * time.Second}, {0.5, 7500 * time.Millisecond}, {1, d}, {2, d}, {-1, 5 * time.Second}, {math.NaN(), 5 * time.Second}} {
		if got := backoff.Equal(d, tt.u); got != tt.want {
			t.Errorf("Equal(%v, %v) = %v, want %v", d, tt.u, got, tt.want)
		}
	}
	for _, u := range []float64{0, 0.5, 0.999, 1, 7, -3, math.NaN()} {
		got := backoff.Shorten(d, 0.2, u)
		if got > d || got <= 8*time.Second {
			t.Errorf("Shorten(%v, 0.2, %v) = %v, want in (8s, 10s]", d, u, got)
		}
	}
	if got := backoff.Shorten(d, 0.2, 0.5); got != 9*time.Second {
		t.Errorf("Shorten(10s, 0.2, 0.5) = %v, want 9s", got)
	}
}

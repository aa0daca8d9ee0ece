package pool_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/pool"
)

// Equals take turns; once their answers report usage, new work goes to
// the least used.
func TestPicksLeastUsedRoundRobinOnTies(t *testing.T) {
	c := newClock()
	a, b, d := &stub{name: "a"}, &stub{name: "b"}, &stub{name: "c"}
	p := newPool(t, c, a, b, d)
	for range 30 {
		if _, err := get(t, p, context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls.Load() != 10 || b.calls.Load() != 10 || d.calls.Load() != 10 {
		t.Fatalf("ties: calls a=%d b=%d c=%d, want 10 each", a.calls.Load(), b.calls.Load(), d.calls.Load())
	}
	a.answer = func(*http.Request) (*http.Response, error) { return ok(used(90)), nil }
	b.answer = func(*http.Request) (*http.Response, error) { return ok(used(20)), nil }
	d.answer = func(*http.Request) (*http.Response, error) { return ok(used(50)), nil }
	// One request each teaches the pool their usage.
	for range 3 {
		get(t, p, context.Background())
	}
	before := b.calls.Load()
	for range 20 {
		get(t, p, context.Background())
	}
	if got := b.calls.Load() - before; got != 20 {
		t.Errorf("least used member got %d of 20 requests", got)
	}
	if u := pool.UsedPercents(p); u[0] != 90 || u[1] != 20 || u[2] != 50 {
		t.Errorf("used percents = %v", u)
	}
}

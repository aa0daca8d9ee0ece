package pool_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
)

// A member that answers usage_limit_reached gets no request until the
// reset it gave; the request that hit the limit is served by another
// member; the thread moves there once and stays after the reset.
func TestUsageLimitMovesWorkUntilReset(t *testing.T) {
	c := newClock()
	reset := c.Now().Add(time.Hour)
	var limited atomic.Bool
	a := &stub{name: "a"}
	a.answer = func(*http.Request) (*http.Response, error) {
		if limited.Load() {
			return limitReached(reset), nil
		}
		return ok(nil), nil
	}
	b := &stub{name: "b"}
	p := newPool(t, c, a, b)
	// Thread "t1" lands on a (a is picked first: the scan starts at b's
	// turn only every other request, so pin it by trying until it does).
	var ctx context.Context
	for i := range 10 {
		ctx = transport.WithThread(context.Background(), "thread-"+string(rune('a'+i)))
		before := a.calls.Load()
		if _, err := get(t, p, ctx); err != nil {
			t.Fatal(err)
		}
		if a.calls.Load() > before {
			break
		}
	}
	aBefore, bBefore := a.calls.Load(), b.calls.Load()
	for range 5 {
		get(t, p, ctx)
	}
	if a.calls.Load()-aBefore != 5 || b.calls.Load() != bBefore {
		t.Fatalf("thread left its member: a +%d, b +%d", a.calls.Load()-aBefore, b.calls.Load()-bBefore)
	}

	limited.Store(true)
	resp, err := get(t, p, ctx)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the request that hit the limit: %v, %v", resp, err)
	}
	if a.calls.Load()-aBefore != 6 || b.calls.Load() != bBefore+1 {
		t.Fatalf("limit: a +%d (want 6), b +%d (want 1)", a.calls.Load()-aBefore, b.calls.Load()-bBefore)
	}
	aLimited := a.calls.Load()
	for i := range 20 {
		get(t, p, ctx)
		get(t, p, transport.WithThread(context.Background(), "new-"+string(rune('a'+i))))
		get(t, p, context.Background())
	}
	if a.calls.Load() != aLimited {
		t.Fatalf("limited member got %d requests before its reset", a.calls.Load()-aLimited)
	}
	if st := p.Members(); !st[0].LimitedUntil.Equal(reset) || !st[1].LimitedUntil.IsZero() {
		t.Errorf("Members = %+v", st)
	}

	limited.Store(false)
	c.Add(time.Hour)
	bNow := b.calls.Load()
	for range 5 {
		get(t, p, ctx)
	}
	if b.calls.Load()-bNow != 5 {
		t.Errorf("the moved thread went back after the reset: b +%d of 5", b.calls.Load()-bNow)
	}
	aNow := a.calls.Load()
	for range 10 {
		get(t, p, context.Background())
	}
	if a.calls.Load() == aNow {
		t.Error("the member whose limit reset gets no new work")
	}
}

// With every member limited the caller gets a temporary ErrUnavailable
// naming the earliest reset, which Members gives too, and the request's
// body is closed.
func TestEveryMemberLimitedIsTypedError(t *testing.T) {
	c := newClock()
	r1, r2 := c.Now().Add(2*time.Hour), c.Now().Add(30*time.Minute)
	a := &stub{name: "a", answer: func(*http.Request) (*http.Response, error) { return limitReached(r1), nil }}
	b := &stub{name: "b", answer: func(*http.Request) (*http.Response, error) { return limitReached(r2), nil }}
	p := newPool(t, c, a, b)
	resp, err := get(t, p, context.Background())
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("last member's answer: %v, %v", resp, err)
	}
	body := &countingBody{}
	req, _ := http.NewRequest(http.MethodPost, "https://chatgpt.com/backend-api/codex/responses", body)
	_, err = p.RoundTrip(req)
	if !errors.Is(err, pool.ErrUnavailable) || !transport.IsTemporary(err) || !strings.Contains(err.Error(), r2.UTC().Format(time.RFC3339)) {
		t.Fatalf("err = %v, want a temporary ErrUnavailable naming the reset at %v", err, r2)
	}
	if st := p.Members(); !st[0].LimitedUntil.Equal(r1) || !st[1].LimitedUntil.Equal(r2) {
		t.Errorf("Members = %+v, want a until %v, b until %v", st, r1, r2)
	}
	if body.closes.Load() != 1 {
		t.Errorf("body closed %d times", body.closes.Load())
	}
	if a.calls.Load()+b.calls.Load() != 2 {
		t.Errorf("limited members were called %d times", a.calls.Load()+b.calls.Load())
	}
}

// A plain 429 (not a usage limit) is the caller's: returned as is, and the
// member keeps its work.
func TestPlainRateLimitIsPassedThrough(t *testing.T) {
	c := newClock()
	a := &stub{name: "a", answer: func(*http.Request) (*http.Response, error) {
		r := limitReached(c.Now())
		r.Body = http.NoBody
		return r, nil
	}}
	p := newPool(t, c, a)
	for range 3 {
		resp, err := get(t, p, context.Background())
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%v, %v", resp, err)
		}
	}
	if a.calls.Load() != 3 || !p.Members()[0].LimitedUntil.IsZero() {
		t.Errorf("calls %d, members %+v", a.calls.Load(), p.Members())
	}
}

// A request whose body cannot be replayed gets the member's 429, whole;
// the member is still marked limited.
func TestUnreplayableRequestGetsTheLimit(t *testing.T) {
	c := newClock()
	a := &stub{name: "a", answer: func(*http.Request) (*http.Response, error) { return limitReached(c.Now().Add(time.Hour)), nil }}
	b := &stub{name: "b"}
	p := newPool(t, c, a, b)
	p.RoundTrip(mustReq(t, "x")) // round robin: a's turn comes within two
	p.RoundTrip(mustReq(t, "x"))
	if a.calls.Load() != 1 || b.calls.Load() != 1 {
		t.Fatalf("a %d b %d", a.calls.Load(), b.calls.Load())
	}
	if p.Members()[0].LimitedUntil.IsZero() {
		t.Error("a is not limited")
	}
}

func mustReq(t *testing.T, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://chatgpt.com/backend-api/codex/responses", &countingBody{data: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// A reset time beyond any usage window is not believed: the member is
// limited for at most eight days.
func TestFarResetIsBounded(t *testing.T) {
	c := newClock()
	a := &stub{name: "a", answer: func(*http.Request) (*http.Response, error) {
		return limitReached(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)), nil
	}}
	p := newPool(t, c, a)
	get(t, p, context.Background())
	if got, want := p.Members()[0].LimitedUntil, c.Now().Add(8*24*time.Hour); !got.Equal(want) {
		t.Errorf("limited until %v, want %v", got, want)
	}
}

package transport

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/internal/credentials"
)

// usageBase answers 200 with the usage headers it holds.
type usageBase struct {
	mu sync.Mutex
	h  http.Header
}

func (b *usageBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	b.mu.Lock()
	h := b.h.Clone()
	b.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: req}, nil
}

func (b *usageBase) set(kv ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.h = http.Header{}
	for i := 0; i < len(kv); i += 2 {
		b.h.Set(kv[i], kv[i+1])
	}
}

// Stats carries the login's last reported usage, and the observer hears of
// each change once, not of every answer that repeats it.
func TestUsageInStatsAndObserver(t *testing.T) {
	base := &usageBase{}
	var events []Event
	rt, err := newTransport(base, config{
		Credentials: &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: "sk-test"},
		Observer: &Observer{OnEvent: func(_ context.Context, ev Event) {
			if ev.Op == OpUsage {
				events = append(events, ev)
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	send := func() {
		req, _ := http.NewRequest(http.MethodGet, "https://api.openai.com/v1/responses", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send()
	if rt.Stats().Usage != nil || len(events) != 0 {
		t.Fatalf("usage without usage headers: %+v, %d events", rt.Stats().Usage, len(events))
	}
	base.set("x-codex-primary-used-percent", "10", "x-codex-primary-window-minutes", "300", "x-codex-credits-has-credits", "true", "x-codex-credits-unlimited", "false")
	send()
	send()
	u := rt.Stats().Usage
	if u == nil {
		t.Fatal("no usage in Stats")
	}
	if p, _ := u.MaxUsedPercent(); p != 10 || u.Credits == nil || !u.Credits.HasCredits {
		t.Fatalf("Stats usage = %+v", u)
	}
	if len(events) != 1 {
		t.Fatalf("%d events for one change", len(events))
	}
	if ev := events[0]; ev.Usage == nil || ev.StatusCode != http.StatusOK {
		t.Fatalf("usage event %+v", ev)
	}
	events[0].Usage.Limits[0].Primary.UsedPercent = 99 // the event's copy is the observer's
	if p, _ := rt.Stats().Usage.MaxUsedPercent(); p != 10 {
		t.Fatalf("changing the event's snapshot changed Stats: %v", p)
	}
	base.set("x-codex-primary-used-percent", "11", "x-codex-primary-window-minutes", "300")
	send()
	if p, _ := rt.Stats().Usage.MaxUsedPercent(); p != 11 || len(events) != 2 {
		t.Fatalf("after a change: %v, %d events", p, len(events))
	}
	// The snapshot is a copy: changing it changes nothing in the transport.
	got := rt.Stats().Usage
	got.Limits[0].ID = "changed"
	got.Limits[0].Primary.UsedPercent = 99
	if u := rt.Stats().Usage; u.Limits[0].ID != "codex" || u.Limits[0].Primary.UsedPercent != 11 {
		t.Error("Stats shares its usage snapshot")
	}
}

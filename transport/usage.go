package transport

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/agentauth/agentauth/usage"
)

// usageState is the last usage the transport's answers reported. Usage
// moves slowly, so an answer is parsed only when the raw values of the
// default family differ from the last parsed ones: the request path costs
// one header lookup when an answer carries no usage, and a few string
// comparisons when it repeats the last.
type usageState struct {
	last atomic.Pointer[usageSeen]
}

type usageSeen struct {
	primary, secondary, reset, active string // the raw values parsed
	snap                              usage.Snapshot
}

// The canonical names net/http gives the headers of the default family
// that tell one snapshot from the next.
const (
	hdrPrimaryUsed   = "X-Codex-Primary-Used-Percent"
	hdrSecondaryUsed = "X-Codex-Secondary-Used-Percent"
	hdrPrimaryReset  = "X-Codex-Primary-Reset-At"
	hdrActiveLimit   = "X-Codex-Active-Limit"
)

func first(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// noteUsage keeps the usage resp reported, telling the observer when it
// changed.
func (t *Transport) noteUsage(ctx context.Context, resp *http.Response) {
	p := first(resp.Header, hdrPrimaryUsed)
	if p == "" {
		return
	}
	s, r, a := first(resp.Header, hdrSecondaryUsed), first(resp.Header, hdrPrimaryReset), first(resp.Header, hdrActiveLimit)
	if last := t.usage.last.Load(); last != nil && last.primary == p && last.secondary == s && last.reset == r && last.active == a {
		return
	}
	seen := &usageSeen{primary: p, secondary: s, reset: r, active: a, snap: usage.FromHeader(resp.Header)}
	t.usage.last.Store(seen)
	if t.obs.on() {
		t.obs.usage(ctx, cloneSnapshot(&seen.snap), resp.StatusCode)
	}
}

// snapshot returns a copy of the last usage seen, or nil.
func (u *usageState) snapshot() *usage.Snapshot {
	last := u.last.Load()
	if last == nil {
		return nil
	}
	return cloneSnapshot(&last.snap)
}

// cloneSnapshot returns a deep copy of *snap.
func cloneSnapshot(snap *usage.Snapshot) *usage.Snapshot {
	s := *snap
	s.Limits = append([]usage.Limit(nil), s.Limits...)
	for i := range s.Limits {
		l := &s.Limits[i]
		if l.Primary != nil {
			w := *l.Primary
			l.Primary = &w
		}
		if l.Secondary != nil {
			w := *l.Secondary
			l.Secondary = &w
		}
	}
	if s.Credits != nil {
		c := *s.Credits
		s.Credits = &c
	}
	return &s
}

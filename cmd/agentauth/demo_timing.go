// demo's timing: the part of each request's latency the middleware added.

package main

import (
	"net/http"
	"sync/atomic"
	"time"
)

// timingKey carries a request's *requestTiming through the transport.
type timingKey struct{}

// requestTiming accumulates, for one demo request, the time spent in the
// whole agentauth RoundTrip and the part spent in the base transport (the
// network and the server); the difference is what the middleware added.
type requestTiming struct {
	total atomic.Int64
	base  atomic.Int64
}

// timedRoundTripper adds the duration of each RoundTrip to the total or
// base field of the request's requestTiming.
type timedRoundTripper struct {
	next http.RoundTripper
	base bool
}

func (t timedRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	tm, _ := req.Context().Value(timingKey{}).(*requestTiming)
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if tm != nil {
		d := int64(time.Since(start))
		if t.base {
			tm.base.Add(d)
		} else {
			tm.total.Add(d)
		}
	}
	return resp, err
}

func (t timedRoundTripper) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// added is the time the middleware added to the request: its whole
// RoundTrip less the part spent in the base transport.
func (t *requestTiming) added() time.Duration {
	return time.Duration(t.total.Load() - t.base.Load())
}

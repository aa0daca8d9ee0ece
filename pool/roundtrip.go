package pool

import (
	"io"
	"net/http"

	"github.com/agentauth/agentauth/internal/replay"
	"github.com/agentauth/agentauth/internal/threadkey"
	"github.com/agentauth/agentauth/transport"
	"github.com/agentauth/agentauth/usage"
)

// RoundTrip implements [http.RoundTripper]. It never modifies req and
// closes its body exactly once: the member it is sent to does, or the pool
// when it sends it nowhere. A replay sends a body from req.GetBody, which
// that member closes.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	thread, hasThread := transport.ThreadFrom(ctx)
	i := -1
	if hasThread {
		// The hit path: the thread's member, still serving. A key the
		// cache does not hold is validated before it is remembered; an
		// invalid one is left to the member's transport to refuse.
		if p.shared != nil {
			p.syncLimits(ctx, p.now())
		}
		t := p.threads.Peek(thread, p.coarse.Now())
		if t != nil {
			if j := p.memberOf(t); j >= 0 && p.members[j].available(p.now) {
				i = j
			}
		}
		if i < 0 {
			if t == nil && threadkey.Validate(thread) != nil {
				hasThread = false
				i = p.pick(-1)
			} else {
				var err error
				if i, err = p.threadMember(ctx, thread, t); err != nil {
					closeBody(req)
					return nil, err
				}
			}
		}
	} else {
		if p.shared != nil {
			p.syncLimits(ctx, p.now())
		}
		i = p.pick(-1)
	}
	if i < 0 {
		closeBody(req)
		return nil, p.unavailable(p.now())
	}
	m := p.members[i]
	resp, err := m.rt.RoundTrip(req)
	if err != nil {
		if !p.failed(ctx, m, err) || !replay.Possible(req) {
			return nil, err
		}
		return p.replay(req, thread, hasThread, i, nil, err)
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		p.observe(m, resp)
		return resp, nil
	}
	snap := usage.FromResponse(resp)
	if snap.LimitReached == "" {
		return resp, nil // a plain rate limit: the member's own business
	}
	p.limited(ctx, m, snap, p.now())
	if !replay.Possible(req) {
		return resp, nil
	}
	return p.replay(req, thread, hasThread, i, resp, nil)
}

// replay sends req once more, to another member than the one at index
// from, which answered first (first, or firstErr when it failed). A thread
// moves to that member. When no other member can serve, or req's body
// cannot be had again, the first answer stands.
func (p *Pool) replay(req *http.Request, thread string, hasThread bool, from int, first *http.Response, firstErr error) (*http.Response, error) {
	ctx := req.Context()
	var i int
	if hasThread {
		var err error
		if i, err = p.threadMember(ctx, thread, p.threads.Peek(thread, p.now())); err != nil {
			i = -1
		}
	} else {
		i = p.pick(from)
	}
	if i < 0 || i == from {
		return first, firstErr
	}
	body, err := replay.Body(req)
	if err != nil {
		return first, firstErr
	}
	if first != nil {
		drain(first)
	}
	r := new(http.Request)
	*r = *req
	r.Body = body
	m := p.members[i]
	resp, err := m.rt.RoundTrip(r)
	if err != nil {
		p.failed(ctx, m, err)
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if snap := usage.FromResponse(resp); snap.LimitReached != "" {
			p.limited(ctx, m, snap, p.now())
		}
		return resp, nil
	}
	p.observe(m, resp)
	return resp, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drain discards a little of a response body so its connection can be
// reused, then closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

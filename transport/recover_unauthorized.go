package transport

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/replay"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
)

// recoverUnauthorized handles a 401 to an authenticated request: the
// rejected task is dropped, one re-registration is shared with concurrent
// 401s, and the request is replayed at most once. The 401 is read and
// closed before any recovery work, so its connection is free for the
// registration (which may need the same host); a bounded copy of it is
// returned when recovery fails. A key whose re-registered task was
// rejected again at once is not re-registered for the backoff: the
// resource, not the task, is refusing. A 401 to a ChatGPT Bearer request
// is answered by recoverBearer.
func (t *Transport) recoverUnauthorized(req *http.Request, resp *http.Response, a *authorization, thread string, hasThread bool) (*http.Response, error) {
	if a.mode == resolver.ModeAPIKey {
		return resp, nil
	}
	ctx := req.Context()
	if a.mode == resolver.ModeBearer {
		return t.recoverBearer(req, resp, a)
	}
	if isAssertion(a.mode) {
		if a.agent.held(a.task, t.s.Now()) {
			return resp, nil
		}
		// The task is dropped whether or not this request can be replayed,
		// so the next request registers a fresh one instead of being
		// rejected on the revoked task until it idles out.
		a.agent.invalidate(ctx, a.task)
	}
	if !replay.Possible(req) {
		t.obs.recovery(ctx, a.mode, recoveryNotReplayable)
		return resp, nil
	}
	resp = buffer(resp)
	next, err := t.authz(ctx, thread, hasThread)
	if err != nil {
		// The 401 says more than a failed recovery would; keep it.
		t.s.Logger.DebugContext(ctx, "agentauth: 401 recovery failed", "mode", a.mode.String(), "error", err)
		t.obs.recovery(ctx, a.mode, recoveryFailed)
		return resp, nil
	}
	body, err := replay.Body(req)
	if err != nil {
		t.obs.recovery(ctx, a.mode, recoveryFailed)
		return resp, nil
	}
	drain(resp)
	t.stats.replays.Add(1)
	t.obs.recovery(ctx, a.mode, recoveryReplayed)
	out, err := t.send(req, body, &next)
	if err == nil && isAssertion(a.mode) && isAssertion(next.mode) && next.agent == a.agent && next.task != a.task {
		var rejected bool
		out, rejected = rejectsFreshTask(out) // task_gone.go
		if rejected {
			next.agent.hold(next.task, t.s.Now(), t.holdFor())
		}
	}
	return out, err
}

// holdFor is how long a key whose fresh task was rejected at once is not
// re-registered after a 401: the thread cache's longest backoff.
func (t *Transport) holdFor() time.Duration {
	if d := t.s.ThreadCache.BackoffMax; d > 0 {
		return d
	}
	return max(taskcache.DefaultBackoffMax, t.s.ThreadCache.BackoffInitial)
}

// maxBufferedUnauthorized bounds the copy of a 401 kept while recovering.
const maxBufferedUnauthorized = 64 << 10

// buffer reads resp's body (up to maxBufferedUnauthorized) and closes it,
// returning resp with the copy as its body.
func buffer(resp *http.Response) *http.Response {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBufferedUnauthorized+1))
	resp.Body.Close()
	out := new(http.Response)
	*out = *resp
	if len(data) > maxBufferedUnauthorized {
		data = data[:maxBufferedUnauthorized]
		out.ContentLength = -1
		out.Header = resp.Header.Clone()
		out.Header.Del("Content-Length")
	} else {
		out.ContentLength = int64(len(data))
	}
	out.Body = io.NopCloser(bytes.NewReader(data))
	return out
}

// recoverBearer answers a 401 to a ChatGPT Bearer request: it asks a
// refreshing token source for another token and replays. Only when that
// token came from the store (a reload finding a token someone else
// refreshed, which may be stale too) and is rejected as well does it ask
// again, now for a network refresh, and replay once more; a token fresh
// from the endpoint that is rejected at once says the resource, not the
// token, is refusing, and another refresh would only spend the login's
// single-use refresh token (a source that does not say where its token
// came from is asked once). Then the 401 is returned. Each 401 body is
// read into memory (at most 64 KiB) and its connection released before
// any recovery work, so the token endpoint or the store never waits for a
// connection the 401 holds. A request that cannot be replayed still
// triggers one refresh, for the requests after it.
func (t *Transport) recoverBearer(req *http.Request, resp *http.Response, a *authorization) (*http.Response, error) {
	ctx := req.Context()
	resp = buffer(resp)
	rejected := a.token
	for attempt := 0; attempt < 2; attempt++ {
		next, origin, ok, err := t.bearer.refresh(ctx, rejected)
		if !ok {
			t.obs.recovery(ctx, a.mode, recoveryUnsupported)
			return resp, nil
		}
		if err != nil {
			// The 401 says more than a failed recovery would; keep it.
			t.s.Logger.DebugContext(ctx, "agentauth: 401 recovery failed", "mode", a.mode.String(), "error", err)
			t.obs.recovery(ctx, a.mode, recoveryFailed)
			return resp, nil
		}
		if !replay.Possible(req) {
			t.obs.recovery(ctx, a.mode, recoveryNotReplayable)
			return resp, nil
		}
		body, err := replay.Body(req)
		if err != nil {
			t.obs.recovery(ctx, a.mode, recoveryFailed)
			return resp, nil
		}
		t.stats.replays.Add(1)
		t.obs.recovery(ctx, a.mode, recoveryReplayed)
		r, err := t.send(req, body, &next)
		if err != nil || r.StatusCode != http.StatusUnauthorized || attempt == 1 || origin != credentials.RefreshFromStore {
			return r, err
		}
		resp, rejected = buffer(r), next.token
	}
	return resp, nil
}

// drain discards a little of a response body so the connection can be
// reused, then closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

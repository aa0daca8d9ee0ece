package pool_test

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/transport"
)

type countingBody struct {
	data   []byte
	off    int
	closes atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

// A replay after a usage limit never modifies the caller's request, sends
// the same body to the second member from GetBody, and closes each body
// exactly once.
func TestReplayHonoursTheRoundTripperContract(t *testing.T) {
	c := newClock()
	a := &stub{name: "a", answer: func(*http.Request) (*http.Response, error) { return limitReached(c.Now().Add(time.Hour)), nil }}
	b := &stub{name: "b"}
	p := newPool(t, c, a, b)
	first := &countingBody{data: []byte("payload")}
	var replays []*countingBody
	// Send new threads until a serves one (round robin) and replays to b.
	for i := range 2 {
		ctx := transport.WithThread(context.Background(), "thread-"+string(rune('a'+i)))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://chatgpt.com/backend-api/codex/responses", first)
		req.Header.Set("X-Caller", "1")
		req.GetBody = func() (io.ReadCloser, error) {
			rb := &countingBody{data: []byte("payload")}
			replays = append(replays, rb)
			return rb, nil
		}
		snapshot := *req
		hdr := req.Header.Clone()
		resp, err := p.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v, %v", resp, err)
		}
		resp.Body.Close()
		if !reflect.DeepEqual(hdr, req.Header) || snapshot.Body != req.Body || snapshot.URL != req.URL || snapshot.Method != req.Method {
			t.Fatal("the pool modified the caller's request")
		}
		if a.calls.Load() == 1 {
			break
		}
		first = &countingBody{data: []byte("payload")}
	}
	if a.calls.Load() != 1 || len(replays) != 1 {
		t.Fatalf("a calls %d, replays %d", a.calls.Load(), len(replays))
	}
	if first.closes.Load() != 1 || replays[0].closes.Load() != 1 {
		t.Errorf("closes: first %d, replay %d", first.closes.Load(), replays[0].closes.Load())
	}
	b.mu.Lock()
	last := b.bodies[len(b.bodies)-1]
	b.mu.Unlock()
	if last != "payload" {
		t.Errorf("replayed body %q", last)
	}
}

func TestCloseIdleConnectionsReachesEveryMember(t *testing.T) {
	a, b := &stub{name: "a"}, &stub{name: "b"}
	p := newPool(t, newClock(), a, b)
	p.CloseIdleConnections()
	if a.idle.Load() != 1 || b.idle.Load() != 1 {
		t.Errorf("CloseIdleConnections: a %d, b %d", a.idle.Load(), b.idle.Load())
	}
}

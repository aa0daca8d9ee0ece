package interop_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// wsURL turns the server's http base into the ws URL of path.
func wsURL(srv *identitytest.Server, path string) string {
	return "ws" + strings.TrimPrefix(srv.URL(), "http") + path
}

func TestWebSocketHandshakeIsSignedAndRoundTrips(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	rec := newRecord(t, srv, true)
	hc, _, _ := agentClient(t, srv, rec)

	for _, thread := range []string{"thread-ws", ""} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if thread != "" {
			ctx = transport.WithThread(ctx, thread)
		}
		conn, resp, err := websocket.Dial(ctx, wsURL(srv, identitytest.ResponsesPath), &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			cancel()
			t.Fatalf("thread %q: Dial: %v", thread, err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("handshake status %d", resp.StatusCode)
		}

		// The first message is what the server verified at the handshake.
		var got identitytest.Echo
		if err := wsjson.Read(ctx, conn, &got); err != nil {
			t.Fatalf("reading the echo: %v", err)
		}
		wantAssertion(t, srv, rec, thread, got, identitytest.ResponsesPath)

		// Then every message comes back unchanged, text and binary.
		for _, m := range []struct {
			typ  websocket.MessageType
			data string
		}{{websocket.MessageText, `{"type":"response.create"}`}, {websocket.MessageBinary, "\x00\x01bin"}} {
			if err := conn.Write(ctx, m.typ, []byte(m.data)); err != nil {
				t.Fatalf("Write: %v", err)
			}
			typ, data, err := conn.Read(ctx)
			if err != nil || typ != m.typ || string(data) != m.data {
				t.Fatalf("echoed %v %q, %v; want %v %q", typ, data, err, m.typ, m.data)
			}
		}
		if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Errorf("Close: %v", err)
		}
		cancel()
	}

	// The server saw two upgrades, each with the assertion and both
	// routing headers, and switched protocols for both.
	seen := srv.Requests()
	if len(seen) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(seen))
	}
	for i, r := range seen {
		if r.Status != http.StatusSwitchingProtocols || r.Method != http.MethodGet ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "AgentAssertion ") ||
			r.Header.Get("ChatGPT-Account-ID") != rec.AccountID || r.Header.Get("X-OpenAI-Fedramp") != "true" ||
			!strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			t.Errorf("request %d: %v", i, r)
		}
		ref := []string{"thread-ws", ""}[i]
		verifyAssertion(t, rec, r.Header.Get("Authorization"), taskFor(t, srv, rec.AgentRuntimeID, ref).TaskID)
	}
}

func TestWebSocketUnauthenticatedHandshakeIsRefused(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, auth := range []string{"", "Bearer sk-unknown"} {
		opts := &websocket.DialOptions{HTTPClient: &http.Client{Transport: base}, HTTPHeader: http.Header{}}
		if auth != "" {
			opts.HTTPHeader.Set("Authorization", auth)
		}
		conn, resp, err := websocket.Dial(ctx, wsURL(srv, identitytest.ResponsesPath), opts)
		if err == nil {
			conn.CloseNow()
			t.Fatalf("auth %q: an unauthenticated handshake was accepted", auth)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("auth %q: response %v, want 401", auth, resp)
		}
	}
	if st := srv.Stats(); st.Rejections != 2 || st.RequestsByMode[identitytest.ModeBearer]+st.RequestsByMode[identitytest.ModeAssertion] != 0 {
		t.Errorf("server stats %+v", st)
	}
}

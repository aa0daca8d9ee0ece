package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// The process task is shared by the transports of one agent identity, and
// an identity is its runtime id and its key: a second record with the same
// runtime id and another key (a stale copy, a record rewritten by another
// tool) used to get the first transport's process task, and with it the
// assertion the first transport had signed and cached on that task: its
// requests went out signed with the first record's key. Now it registers
// its own process task with its own key (refused here, since the server
// does not know that key) and the first transport keeps its task.

// ptkTransport is the Agent Identity rec against srv over base.
func ptkTransport(t *testing.T, srv *identitytest.Server, base http.RoundTripper, rec identity.Record) *transport.Transport {
	return newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: agentCred(t, rec), defaultStore: true}).rt
}

// ptkSend sends one request without a thread key and returns its status and
// the task the server saw it signed with.
func ptkSend(ctx context.Context, t *testing.T, rt http.RoundTripper, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var echo identitytest.Echo
	_ = json.Unmarshal(body, &echo)
	return resp.StatusCode, echo.TaskID
}

func TestProcessTaskIsNotSharedAcrossKeysOfOneRuntime(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	key1, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key2, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	good := identity.Record{AgentRuntimeID: "rt-ptk-" + t.Name(), AgentPrivateKey: identity.Secret(key1.MarshalPrivateKey()), AccountID: "acct-ptk", ChatGPTUserID: "user-ptk"}
	if err := srv.RegisterRuntime(good); err != nil {
		t.Fatal(err)
	}
	other := good
	other.AgentPrivateKey = identity.Secret(key2.MarshalPrivateKey()) // same runtime id, a key the server does not know

	base := &http.Transport{}
	defer base.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	rtGood := ptkTransport(t, srv, base, good)
	st, task := ptkSend(ctx, t, rtGood, url)
	if st != http.StatusOK || task == "" {
		t.Fatalf("the registered record: status %d task %q, want a signed 200", st, task)
	}
	rtOther := ptkTransport(t, srv, base, other)
	if st, _ := ptkSend(ctx, t, rtOther, url); st == http.StatusOK {
		t.Fatalf("a record whose key the server does not know got status %d", st)
	}
	if n := rtOther.Stats().ProcessRegistrations; n != 0 {
		t.Errorf("the second record counts %d process registrations, want 0 (its own are refused)", n)
	}
	st, again := ptkSend(ctx, t, rtGood, url)
	if st != http.StatusOK || again != task {
		t.Fatalf("after a record with another key was used: status %d task %q, want the first transport's task %q kept", st, again, task)
	}
}

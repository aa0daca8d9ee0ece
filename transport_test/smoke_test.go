package transport_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

func TestSmokeAgentIdentity(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rec, _, err := srv.NewAgentIdentity("", identitytest.Login{})
	if err != nil {
		t.Fatal(err)
	}
	rt := newEnv(t, envOptions{srv: srv, base: http.DefaultTransport, plain: true, credential: agentCred(t, rec), defaultStore: true}).rt
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()
	for _, thread := range []string{"thread-1", ""} {
		ctx := context.Background()
		if thread != "" {
			ctx = transport.WithThread(ctx, thread)
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL()+"/v1/responses", strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var echo identitytest.Echo
		json.NewDecoder(resp.Body).Decode(&echo)
		resp.Body.Close()
		if resp.StatusCode != 200 || echo.Mode != "assertion" || echo.ExternalTaskRef != thread {
			t.Fatalf("status %d echo %+v", resp.StatusCode, echo)
		}
	}
	t.Logf("stats %+v server %+v", rt.Stats(), srv.Stats())
}

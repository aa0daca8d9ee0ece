package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/transport"
)

// replica is one service instance: a transport on the shared identity with
// its own HTTP connections, thread cache and (optionally) store.
type replica struct {
	rt     *transport.Transport
	client *http.Client
	base   *http.Transport
}

// newReplica builds a replica against srv. store may be nil (per-process
// tasks only); regClient may be nil (the default registration client).
func newReplica(tb testing.TB, srvURL string, rec identity.Record, store taskcache.TaskStore, regClient *http.Client) *replica {
	tb.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	js, err := rec.StorageJSON()
	if err != nil {
		tb.Fatal(err)
	}
	cred, err := transport.AgentIdentity(js)
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := transport.New(base, transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		BaseURL:       srvURL,
		Fleet:         transport.Fleet{TaskStore: store},
		HTTPClient:    regClient,
	})
	if err != nil {
		tb.Fatal(err)
	}
	r := &replica{rt: rt, client: &http.Client{Transport: rt}, base: base}
	tb.Cleanup(r.close)
	return r
}

func (r *replica) close() {
	r.client.CloseIdleConnections()
	r.base.CloseIdleConnections()
}

// do sends one request for thread and returns the task id the server
// verified.
func (r *replica) do(ctx context.Context, srvURL, thread string) (string, error) {
	req, err := http.NewRequestWithContext(transport.WithThread(ctx, thread), http.MethodPost,
		srvURL+identitytest.ResponsesPath, strings.NewReader("{}"))
	if err != nil {
		return "", err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	var echo identitytest.Echo
	if err := json.Unmarshal(body, &echo); err != nil {
		return "", err
	}
	if echo.Mode != identitytest.ModeAssertion || echo.ExternalTaskRef != thread || echo.TaskID == "" {
		return "", fmt.Errorf("unexpected echo mode=%s ref=%q", echo.Mode, echo.ExternalTaskRef)
	}
	return echo.TaskID, nil
}

// newServer starts a reference server that keeps every request it sees.
func newServer(tb testing.TB) *identitytest.Server {
	tb.Helper()
	srv, err := identitytest.NewServer(identitytest.Options{RequestLog: 100000})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	return srv
}

func newIdentity(tb testing.TB, srv *identitytest.Server) identity.Record {
	tb.Helper()
	rec, _, err := srv.NewAgentIdentity("", identitytest.Login{})
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

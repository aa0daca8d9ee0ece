package pool_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
)

// A real login that can no longer be refreshed (its access token expired,
// its refresh token unknown to the token endpoint: a permanent refresh
// failure, reached through the transport's error with errors.As) leaves the
// pool with one warning, and its requests are served by the other logins.
func TestDeadLoginLeavesThePoolOnTheReferenceServer(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	// A login issued a day ago by another token endpoint: expired here, and
	// its refresh token means nothing to srv.
	past := time.Now().Add(-24 * time.Hour)
	old, err := identitytest.NewServer(identitytest.Options{Now: func() time.Time { return past }})
	if err != nil {
		t.Fatal(err)
	}
	oldLogin, err := old.IssueLogin(identitytest.Login{AccountID: "acct-dead", UserID: "user-dead"})
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	var homes []string
	for i, l := range []*identitytest.Login{oldLogin, nil, nil} {
		if l == nil {
			if l, err = srv.IssueLogin(identitytest.Login{AccountID: fmt.Sprintf("acct-%d", i), UserID: fmt.Sprintf("user-%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		home := t.TempDir()
		if err := l.WriteAuthJSON(home, past); err != nil {
			t.Fatal(err)
		}
		homes = append(homes, home)
	}
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	members, err := pool.CodexHomes(context.Background(), base, transport.Options{
		Getenv:  env{"AGENTAUTH_USE_AGENT_IDENTITY": "true"}.get,
		BaseURL: srv.URL(), // also the token endpoint
	}, homes...)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	p, err := pool.New(pool.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, members...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	url := srv.URL() + identitytest.ResponsesPath
	for i := range 12 {
		acct, err := send(p, url, fmt.Sprintf("thread-%d", i))
		if err != nil {
			t.Fatalf("request %d failed though live logins could serve it: %v", i, err)
		}
		if acct == "acct-dead" {
			t.Fatalf("request %d was served by the dead login", i)
		}
	}
	if st := p.Members(); !st[0].Left || st[1].Left || st[2].Left {
		t.Errorf("members %+v", st)
	}
	if n := strings.Count(logs.String(), "leaves the pool"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	for _, secret := range []string{oldLogin.AccessToken, oldLogin.RefreshToken, oldLogin.IDToken} {
		if strings.Contains(logs.String(), secret) {
			t.Error("the warning holds a token")
		}
	}
}

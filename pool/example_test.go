package pool_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
	"github.com/agentauth/agentauth/usage"
)

// Two logins behind one client. A thread stays on the login that served
// it first; when that login reaches its usage limit, the request is sent
// again on the other login and the thread moves there. Production code
// builds the members with pool.CodexHomes(ctx, nil, transport.Options{},
// home1, home2).
func Example() {
	srv, err := identitytest.NewServer(identitytest.Options{
		AccessTokenAccounts: map[string]string{"token-a": "acct-a", "token-b": "acct-b"},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	var members []pool.Member
	for _, login := range []struct{ token, account string }{{"token-a", "acct-a"}, {"token-b", "acct-b"}} {
		rt, err := transport.New(base, transport.Options{
			Credential:    transport.BearerToken(login.token, login.account, false),
			BaseURL:       srv.URL(),              // loopback: plain http allowed
			AgentIdentity: featureflag.New(false), // Bearer, whatever ~/.codex says
		})
		if err != nil {
			panic(err)
		}
		members = append(members, pool.Member{Name: login.account, Transport: rt})
	}
	p, err := pool.New(pool.Options{Logger: slog.New(slog.DiscardHandler)}, members...)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	client := &http.Client{Transport: p}

	ctx := transport.WithThread(context.Background(), "thread-1")
	ask := func() string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/echo", nil)
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var echo identitytest.Echo
		json.NewDecoder(resp.Body).Decode(&echo)
		used, _ := usage.FromHeader(resp.Header).MaxUsedPercent()
		return fmt.Sprintf("%d from %s (used %g%%)", resp.StatusCode, echo.AccountID, used)
	}

	srv.SetUsage("acct-a", identitytest.Usage{PrimaryUsedPercent: 40})
	srv.SetUsage("acct-b", identitytest.Usage{PrimaryUsedPercent: 12})
	fmt.Println(ask())
	fmt.Println(ask())
	srv.LimitUsage("acct-a", time.Now().Add(time.Hour))
	fmt.Println(ask()) // answered 429 on acct-a, sent again on acct-b
	fmt.Println(ask())
	for _, m := range p.Members() {
		fmt.Println(m.Name, "limited:", !m.LimitedUntil.IsZero())
	}
	// Output:
	// 200 from acct-a (used 40%)
	// 200 from acct-a (used 40%)
	// 200 from acct-b (used 12%)
	// 200 from acct-b (used 12%)
	// acct-a limited: true
	// acct-b limited: false
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
)

// Bounds of the pool demo.
const (
	poolDemoMaxLogins  = 8
	poolDemoMaxThreads = 500
	poolDemoMaxPerRun  = 20
	poolDemoWorkers    = 8
)

// runPoolDemo is `agentauth demo --logins N`: N ChatGPT logins on the
// reference server (loopback) behind one pool; threads threads each send
// requests requests; half way through the second login reaches its usage
// limit. It prints, per login, the threads it served before and after the
// limit, and fails unless every request succeeded, no thread moved more
// than once and every thread of the limited login moved.
//
// Not wired into runDemo yet (its file is being edited elsewhere): the hook
// is a --logins flag whose positive value calls this function.
func runPoolDemo(ctx context.Context, logins, threads, requests int, stdout, stderr io.Writer) int {
	const name = "agentauth demo"
	switch {
	case logins < 2 || logins > poolDemoMaxLogins:
		return usageError(stderr, name, fmt.Errorf("--logins must be 2 to %d", poolDemoMaxLogins))
	case threads < 1 || threads > poolDemoMaxThreads:
		return usageError(stderr, name, fmt.Errorf("--threads must be 1 to %d with --logins", poolDemoMaxThreads))
	case requests < 2 || requests > poolDemoMaxPerRun:
		return usageError(stderr, name, fmt.Errorf("--requests must be 2 to %d with --logins", poolDemoMaxPerRun))
	}
	srv, err := identitytest.NewServer(identitytest.Options{RequestLog: -1})
	if err != nil {
		return failure(stderr, name, err)
	}
	defer srv.Close()
	var homes []string
	defer func() {
		for _, h := range homes {
			os.RemoveAll(h)
		}
	}()
	for i := range logins {
		login, err := srv.IssueLogin(identitytest.Login{AccountID: fmt.Sprintf("acct-%d", i+1), UserID: fmt.Sprintf("user-%d", i+1)})
		if err != nil {
			return failure(stderr, name, err)
		}
		home, err := os.MkdirTemp("", "agentauth-demo-login-")
		if err != nil {
			return failure(stderr, name, err)
		}
		homes = append(homes, home)
		if err := login.WriteAuthJSON(home, time.Now()); err != nil {
			return failure(stderr, name, err)
		}
	}
	base := &http.Transport{MaxIdleConnsPerHost: poolDemoWorkers}
	defer base.CloseIdleConnections()
	env := map[string]string{"AGENTAUTH_USE_AGENT_IDENTITY": "true", "CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}
	members, err := pool.CodexHomes(ctx, base, agentauth.Options{
		Getenv: func(k string) string { return env[k] },
		Config: transport.Config{ChatGPTBaseURL: srv.URL(), AuthAPIBaseURL: srv.URL(), AllowInsecureHTTP: true},
	}, homes...)
	if err != nil {
		return failure(stderr, name, err)
	}
	for i := range members {
		members[i].Name = fmt.Sprintf("login-%d", i+1)
	}
	p, err := pool.New(pool.Options{Logger: slog.New(slog.DiscardHandler)}, members...)
	if err != nil {
		return failure(stderr, name, err)
	}
	defer p.Close()

	served := make([][]string, threads) // accounts per thread, in order
	var failures []string
	var mu sync.Mutex
	run := func(n int) {
		work := make(chan int)
		var wg sync.WaitGroup
		for range poolDemoWorkers {
			wg.Go(func() {
				for th := range work {
					for range n {
						acct, err := poolDemoRequest(ctx, p, srv.URL()+identitytest.ResponsesPath, fmt.Sprintf("thread-%d", th+1))
						mu.Lock()
						if err != nil {
							failures = append(failures, err.Error())
						} else {
							served[th] = append(served[th], acct)
						}
						mu.Unlock()
					}
				}
			})
		}
		for th := range threads {
			work <- th
		}
		close(work)
		wg.Wait()
	}
	run(requests / 2)
	const limited = "acct-2"
	srv.LimitUsage(limited, time.Now().Add(time.Hour))
	run(requests - requests/2)

	before, after := map[string]int{}, map[string]int{}
	moved, movedTwice, stayed := 0, 0, 0
	for _, accts := range served {
		if len(accts) == 0 {
			continue
		}
		before[accts[0]]++
		after[accts[len(accts)-1]]++
		changes := 0
		for i := 1; i < len(accts); i++ {
			if accts[i] != accts[i-1] {
				changes++
			}
		}
		switch {
		case changes == 1:
			moved++
		case changes > 1:
			movedTwice++
		}
		if accts[len(accts)-1] == limited {
			stayed++
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LOGIN\tACCOUNT\tTHREADS BEFORE\tTHREADS AFTER\tLIMITED UNTIL")
	for i, m := range p.Members() {
		acct := fmt.Sprintf("acct-%d", i+1)
		until := "-"
		if !m.LimitedUntil.IsZero() {
			until = m.LimitedUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", m.Name, acct, before[acct], after[acct], until)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d threads × %d requests; %s reached its usage limit half way: %d threads moved once, %d failed requests\n",
		threads, requests, limited, moved, len(failures))
	switch {
	case len(failures) > 0:
		return failure(stderr, name, fmt.Errorf("%d requests failed; the first: %s", len(failures), failures[0]))
	case movedTwice > 0 || stayed > 0:
		return failure(stderr, name, fmt.Errorf("%d threads moved more than once, %d stayed on the limited login", movedTwice, stayed))
	case srv.Stats().RejectionsByReason["task_runtime_mismatch"] > 0:
		return failure(stderr, name, errors.New("a thread's task was signed by another login's identity"))
	}
	return exitOK
}

// poolDemoRequest sends one request of thread and returns the account the
// reference server says served it.
func poolDemoRequest(ctx context.Context, rt http.RoundTripper, url, thread string) (string, error) {
	ctx, cancel := context.WithTimeout(transport.WithThread(ctx, thread), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(`{"model":"demo","input":"hello"}`)))
	if err != nil {
		return "", err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	var echo identitytest.Echo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&echo); err != nil {
		return "", err
	}
	return echo.AccountID, nil
}

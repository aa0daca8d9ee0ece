// demo --logins: several logins behind one pool, one of them limited mid-run.

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
func runPoolDemo(ctx context.Context, logins, threads, requests int, stdout, stderr io.Writer) int {
	const name = "agentauth demo"
	if err := checkPoolDemoFlags(logins, threads, requests); err != nil {
		return usageError(stderr, name, err)
	}
	srv, err := identitytest.NewServer(identitytest.Options{RequestLog: -1})
	if err != nil {
		return failure(stderr, name, err)
	}
	defer srv.Close()
	homes, err := writePoolDemoHomes(srv, logins)
	defer removePoolDemoHomes(homes)
	if err != nil {
		return failure(stderr, name, err)
	}
	base := &http.Transport{MaxIdleConnsPerHost: poolDemoWorkers}
	defer base.CloseIdleConnections()
	p, err := newPoolDemoPool(ctx, srv, base, homes)
	if err != nil {
		return failure(stderr, name, err)
	}
	defer p.Close()

	run := &poolDemoRun{served: make([][]string, threads)}
	url := srv.URL() + identitytest.ResponsesPath
	run.phase(ctx, p, url, requests/2)
	srv.LimitUsage(poolDemoLimited, time.Now().Add(time.Hour))
	run.phase(ctx, p, url, requests-requests/2)

	m := countPoolDemoMoves(run.served)
	printPoolDemo(stdout, p.Members(), m)
	fmt.Fprintf(stdout, "%d threads × %d requests; %s reached its usage limit half way: %d threads moved once, %d failed requests\n",
		threads, requests, poolDemoLimited, m.moved, len(run.failures))
	switch {
	case len(run.failures) > 0:
		return failure(stderr, name, fmt.Errorf("%d requests failed; the first: %s", len(run.failures), run.failures[0]))
	case m.movedTwice > 0 || m.stayed > 0:
		return failure(stderr, name, fmt.Errorf("%d threads moved more than once, %d stayed on the limited login", m.movedTwice, m.stayed))
	case srv.Stats().RejectionsByReason["task_runtime_mismatch"] > 0:
		return failure(stderr, name, errors.New("a thread's task was signed by another login's identity"))
	}
	return exitOK
}

// poolDemoLimited is the account that reaches its usage limit half way.
const poolDemoLimited = "acct-2"

// checkPoolDemoFlags checks the bounds of the pool demo's flags.
func checkPoolDemoFlags(logins, threads, requests int) error {
	switch {
	case logins < 2 || logins > poolDemoMaxLogins:
		return fmt.Errorf("--logins must be 2 to %d", poolDemoMaxLogins)
	case threads < 1 || threads > poolDemoMaxThreads:
		return fmt.Errorf("--threads must be 1 to %d with --logins", poolDemoMaxThreads)
	case requests < 2 || requests > poolDemoMaxPerRun:
		return fmt.Errorf("--requests must be 2 to %d with --logins", poolDemoMaxPerRun)
	}
	return nil
}

// writePoolDemoHomes issues logins logins at srv (acct-1, user-1, ...) and
// writes each to its own temporary Codex home. It returns the homes it
// made, also on error, for removePoolDemoHomes.
func writePoolDemoHomes(srv *identitytest.Server, logins int) ([]string, error) {
	var homes []string
	for i := range logins {
		login, err := srv.IssueLogin(identitytest.Login{AccountID: fmt.Sprintf("acct-%d", i+1), UserID: fmt.Sprintf("user-%d", i+1)})
		if err != nil {
			return homes, err
		}
		home, err := os.MkdirTemp("", "agentauth-demo-login-")
		if err != nil {
			return homes, err
		}
		homes = append(homes, home)
		if err := login.WriteAuthJSON(home, time.Now()); err != nil {
			return homes, err
		}
	}
	return homes, nil
}

// removePoolDemoHomes removes the temporary Codex homes.
func removePoolDemoHomes(homes []string) {
	for _, h := range homes {
		os.RemoveAll(h)
	}
}

// newPoolDemoPool puts the logins of homes behind one pool, named login-1,
// login-2, ..., with Agent Identity on and refreshes at srv.
func newPoolDemoPool(ctx context.Context, srv *identitytest.Server, base http.RoundTripper, homes []string) (*pool.Pool, error) {
	env := map[string]string{"AGENTAUTH_USE_AGENT_IDENTITY": "true", "CODEX_REFRESH_TOKEN_URL_OVERRIDE": srv.TokenURL()}
	members, err := pool.CodexHomes(ctx, base, transport.Options{
		Getenv: func(k string) string { return env[k] },
		Tuning: transport.Tuning{ChatGPTBaseURL: srv.URL(), AuthAPIBaseURL: srv.URL(), AllowInsecureHTTP: true},
	}, homes...)
	if err != nil {
		return nil, err
	}
	for i := range members {
		members[i].Name = fmt.Sprintf("login-%d", i+1)
	}
	return pool.New(pool.Options{Logger: slog.New(slog.DiscardHandler)}, members...)
}

// poolDemoRun collects, per thread, the accounts that served it in order,
// and the failed requests. Safe for concurrent use by phase's workers.
type poolDemoRun struct {
	mu       sync.Mutex
	served   [][]string // accounts per thread, in order
	failures []string
}

// phase sends n requests of every thread through p, poolDemoWorkers
// threads at a time.
func (r *poolDemoRun) phase(ctx context.Context, p http.RoundTripper, url string, n int) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range poolDemoWorkers {
		wg.Go(func() {
			for th := range work {
				for range n {
					acct, err := poolDemoRequest(ctx, p, url, fmt.Sprintf("thread-%d", th+1))
					r.mu.Lock()
					if err != nil {
						r.failures = append(r.failures, err.Error())
					} else {
						r.served[th] = append(r.served[th], acct)
					}
					r.mu.Unlock()
				}
			}
		})
	}
	for th := range r.served {
		work <- th
	}
	close(work)
	wg.Wait()
}

// poolDemoMoves counts, from the accounts that served each thread, the
// threads per account at the start and at the end, and how threads moved.
type poolDemoMoves struct {
	before, after             map[string]int
	moved, movedTwice, stayed int // stayed: ended on the limited login
}

func countPoolDemoMoves(served [][]string) poolDemoMoves {
	m := poolDemoMoves{before: map[string]int{}, after: map[string]int{}}
	for _, accts := range served {
		if len(accts) == 0 {
			continue
		}
		m.before[accts[0]]++
		m.after[accts[len(accts)-1]]++
		changes := 0
		for i := 1; i < len(accts); i++ {
			if accts[i] != accts[i-1] {
				changes++
			}
		}
		switch {
		case changes == 1:
			m.moved++
		case changes > 1:
			m.movedTwice++
		}
		if accts[len(accts)-1] == poolDemoLimited {
			m.stayed++
		}
	}
	return m
}

// printPoolDemo prints the table of logins, their threads before and
// after the limit, and when each is limited until.
func printPoolDemo(stdout io.Writer, members []pool.Member, m poolDemoMoves) {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LOGIN\tACCOUNT\tTHREADS BEFORE\tTHREADS AFTER\tLIMITED UNTIL")
	for i, mem := range members {
		acct := fmt.Sprintf("acct-%d", i+1)
		until := "-"
		if !mem.LimitedUntil.IsZero() {
			until = mem.LimitedUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", mem.Name, acct, m.before[acct], m.after[acct], until)
	}
	tw.Flush()
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

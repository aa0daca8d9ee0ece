package pool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/pool"
	"github.com/agentauth/agentauth/transport"
)

const logins = 3

type env map[string]string

func (e env) get(k string) string { return e[k] }

// loginPool starts the reference server, writes one Codex home per login
// (use_agent_identity on, so each login provisions its own agent identity)
// and builds a pool over them on the test clock.
func loginPool(t *testing.T, c *clock) (*identitytest.Server, *pool.Pool, map[string]string) {
	t.Helper()
	srv, err := identitytest.NewServer(identitytest.Options{RequestLog: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var homes []string
	accountOf := map[string]string{} // member name → account
	for i := range logins {
		acct := fmt.Sprintf("acct-%d", i)
		login, err := srv.IssueLogin(identitytest.Login{AccountID: acct, UserID: "user-" + acct})
		if err != nil {
			t.Fatal(err)
		}
		home := t.TempDir()
		if err := login.WriteAuthJSON(home, time.Now()); err != nil {
			t.Fatal(err)
		}
		homes = append(homes, home)
		accountOf[home] = acct
	}
	base := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(base.CloseIdleConnections)
	members, err := pool.CodexHomes(context.Background(), base, transport.Options{
		Getenv:  env{"AGENTAUTH_USE_AGENT_IDENTITY": "true"}.get,
		BaseURL: srv.URL(), // also the token endpoint
	}, homes...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.NewWithClock(pool.Options{Logger: slog.New(slog.DiscardHandler), ThreadIdleTTL: 6 * time.Hour}, c.Now, members...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return srv, p, accountOf
}

// send posts one request of thread (a replayable body) and returns the
// account that served it.
func send(p http.RoundTripper, url, thread string) (string, error) {
	ctx, cancel := context.WithTimeout(transport.WithThread(context.Background(), thread), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(`{"input":"hi"}`)))
	if err != nil {
		return "", err
	}
	resp, err := p.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	var e identitytest.Echo
	if err := json.Unmarshal(body, &e); err != nil {
		return "", err
	}
	if e.Mode != identitytest.ModeAssertion || e.ExternalTaskRef != thread {
		return "", fmt.Errorf("served as %q for thread %q", e.Mode, e.ExternalTaskRef)
	}
	return e.AccountID, nil
}

// round sends perThread requests of every thread, 8 at a time, and
// returns the accounts that served each thread, in order.
func round(t *testing.T, p http.RoundTripper, url string, threads []string, perThread int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range 8 {
		wg.Go(func() {
			for th := range work {
				for range perThread {
					acct, err := send(p, url, th)
					mu.Lock()
					if err != nil {
						t.Errorf("thread %s: a request failed: %v", th, err)
					}
					out[th] = append(out[th], acct)
					mu.Unlock()
				}
			}
		})
	}
	for _, th := range threads {
		work <- th
	}
	close(work)
	wg.Wait()
	return out
}

func one(accts []string) (string, bool) {
	for _, a := range accts {
		if a != accts[0] {
			return "", false
		}
	}
	return accts[0], len(accts) > 0
}

// Three logins, 200 threads, one login limited mid-run: no request fails;
// every thread stays on one login until that login is limited, then moves
// once; the server never sees a thread's task signed by a foreign
// identity; the limited login is not sent a request until its reset.
func TestFailoverKeepsEveryThreadOnOneLogin(t *testing.T) {
	// The pool's clock starts at the real time, as the server's (which
	// checks assertion timestamps) runs on it: the reset the server sends
	// is then an hour ahead of both.
	c := &clock{t: time.Now()}
	srv, p, _ := loginPool(t, c)
	url := srv.URL() + identitytest.ResponsesPath
	threads := make([]string, 200)
	for i := range threads {
		threads[i] = fmt.Sprintf("thread-%03d", i)
	}

	before := round(t, p, url, threads, 2)
	home := map[string]string{}
	perLogin := map[string]int{}
	for _, th := range threads {
		acct, ok := one(before[th])
		if !ok {
			t.Fatalf("thread %s served by %v before any limit", th, before[th])
		}
		home[th] = acct
		perLogin[acct]++
	}
	if len(perLogin) != logins {
		t.Fatalf("threads per login %v: the pool did not spread them", perLogin)
	}

	// acct-1 hits its usage limit, resetting in an hour of the pool's clock.
	const limited = "acct-1"
	reset := c.Now().Add(time.Hour)
	srv.LimitUsage(limited, reset)
	requestsAtLimit, _ := srv.UsageRequests(limited)

	during := round(t, p, url, threads, 3)
	moved := 0
	for _, th := range threads {
		acct, ok := one(during[th])
		if !ok {
			t.Errorf("thread %s moved more than once: %v", th, during[th])
			continue
		}
		switch {
		case home[th] == limited && acct == limited:
			t.Errorf("thread %s stayed on its limited login", th)
		case home[th] != limited && acct != home[th]:
			t.Errorf("thread %s left its healthy login %s for %s", th, home[th], acct)
		case home[th] == limited:
			moved++
		}
	}
	if moved != perLogin[limited] {
		t.Errorf("%d threads moved, want the %d of %s", moved, perLogin[limited], limited)
	}
	// The limited login saw only the requests that taught the pool its limit
	// (at most one per worker in flight).
	requests, refused := srv.UsageRequests(limited)
	if requests-requestsAtLimit != refused || refused < 1 || refused > 8 {
		t.Errorf("limited login: %d requests after the limit, %d refused; want 1..8, all refused", requests-requestsAtLimit, refused)
	}
	st := p.Members()
	for _, m := range st {
		if m.Left {
			t.Errorf("member %s left", m.Name)
		}
	}

	// Until its reset the limited login is untouched, by old threads and new.
	quiet, _ := srv.UsageRequests(limited)
	fresh := make([]string, 30)
	for i := range fresh {
		fresh[i] = fmt.Sprintf("fresh-%03d", i)
	}
	round(t, p, url, append(append([]string{}, threads...), fresh...), 1)
	if n, _ := srv.UsageRequests(limited); n != quiet {
		t.Errorf("the limited login got %d requests before its reset", n-quiet)
	}

	// After the reset (the pool's clock passes it; the server lifts the
	// limit) new threads reach the login again, moved threads stay put.
	srv.LimitUsage(limited, time.Time{})
	c.Add(2 * time.Hour)
	later := make([]string, 30)
	for i := range later {
		later[i] = fmt.Sprintf("later-%03d", i)
	}
	after := round(t, p, url, append(append([]string{}, threads...), later...), 1)
	back := 0
	for _, th := range later {
		if after[th][0] == limited {
			back++
		}
	}
	if back == 0 {
		t.Error("no new thread reached the login after its reset")
	}
	for _, th := range threads {
		if want := during[th][0]; after[th][0] != want {
			t.Errorf("thread %s went from %s to %s after the reset", th, want, after[th][0])
		}
	}

	checkNoForeignTasks(t, srv)
}

// checkNoForeignTasks: every accepted assertion was signed by a runtime of
// the account it was sent for, on a task of that runtime, and no thread
// has more than one task per runtime.
func checkNoForeignTasks(t *testing.T, srv *identitytest.Server) {
	t.Helper()
	accountOf := map[string]string{}
	for _, rt := range srv.Runtimes() {
		accountOf[rt.RuntimeID] = rt.AccountID
	}
	if len(accountOf) != logins {
		t.Errorf("%d agent runtimes, want one per login (%d)", len(accountOf), logins)
	}
	taskRuntime := map[string]string{}
	perThreadRuntime := map[[2]string]int{}
	for _, tk := range srv.Tasks() {
		taskRuntime[tk.TaskID] = tk.RuntimeID
		if tk.ExternalTaskRef != "" {
			perThreadRuntime[[2]string{tk.ExternalTaskRef, tk.RuntimeID}]++
		}
	}
	for k, n := range perThreadRuntime {
		if n != 1 {
			t.Errorf("thread %s has %d tasks on runtime %s", k[0], n, k[1])
		}
	}
	seen := 0
	for _, r := range srv.Requests() {
		if r.Status != http.StatusOK {
			continue
		}
		seen++
		e := r.Echo
		if accountOf[e.AgentRuntimeID] != e.AccountID || taskRuntime[e.TaskID] != e.AgentRuntimeID {
			t.Errorf("thread %s: task %s of runtime %s (account %s) sent for account %s",
				e.ExternalTaskRef, e.TaskID, e.AgentRuntimeID, accountOf[e.AgentRuntimeID], e.AccountID)
		}
	}
	if seen == 0 {
		t.Error("no accepted request recorded")
	}
	if n := srv.Stats().RejectionsByReason["task_runtime_mismatch"]; n != 0 {
		t.Errorf("%d requests signed a task of another runtime", n)
	}
}

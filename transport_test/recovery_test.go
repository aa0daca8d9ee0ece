package transport_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/transport"
)

// TestCancelSharedRegistration: a caller that gives up while a thread's
// registration is running returns at once with context.Canceled, whether it
// started the registration (leader) or joined it (follower); the other
// caller gets the task of that one registration.
func TestCancelSharedRegistration(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cancelLeader bool
	}{
		{"leader canceled", true},
		{"follower canceled", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{front: true})
			const key = "thread-cancel"
			gate := newGate(t)
			e.front.setOnRegister(func(w http.ResponseWriter, r *http.Request, ref string) bool {
				if ref == key {
					gate.hold(r) // then the reference server registers it
				}
				return false
			})
			send := func(ctx context.Context) <-chan result {
				ch := make(chan result, 1)
				go func() { ch <- e.request(transport.WithThread(ctx, key), http.MethodGet, "/v1/responses", nil) }()
				return ch
			}

			leaderCtx, cancelLeader := context.WithCancel(context.Background())
			defer cancelLeader()
			leader := send(leaderCtx)
			receive(t, gate.arrived, "the registration")
			followerCtx, cancelFollower := context.WithCancel(context.Background())
			defer cancelFollower()
			follower := send(followerCtx)
			// Both callers are parked in the task cache's select on the
			// shared attempt and their own contexts.
			waitInStack(t, 2, "[select", taskCacheWait)

			canceled, other, cancel := follower, leader, cancelFollower
			if tc.cancelLeader {
				canceled, other, cancel = leader, follower, cancelLeader
			}
			cancel()
			r := receive(t, canceled, "the canceled caller")
			if !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, transport.ErrRegistration) {
				t.Fatalf("canceled caller: status %d error %v, want context.Canceled", r.status, r.err)
			}
			if transport.IsTemporary(r.err) {
				t.Fatalf("a canceled caller's error %v reports temporary", r.err)
			}
			// It returned while the registration was still held.
			select {
			case r := <-other:
				t.Fatalf("the other caller returned before the registration ended: %d %v", r.status, r.err)
			default:
			}

			gate.open()
			e.mustAssertion(receive(t, other, "the other caller"), key)
			e.mustAssertion(e.get(key), key) // the task was cached for everyone
			if got, tasks := e.front.Attempts(key), e.tasks(key); got != 1 || len(tasks) != 1 {
				t.Fatalf("%d registration attempts, %d tasks; want 1 and 1", got, len(tasks))
			}
		})
	}
}

// TestRegistrationTimeout: a registration that never answers fails after
// the cache's own timeout, the key backs off, and the next attempt after the
// backoff starts afresh and succeeds.
func TestRegistrationTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	e := newEnv(t, envOptions{options: func(o *transport.Options) { o.Tuning.RegistrationTimeout = timeout }})
	e.srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Hang: true, Times: 1})
	const key = "thread-hung"

	start := time.Now()
	r := e.get(key)
	elapsed := time.Since(start)
	if !errors.Is(r.err, transport.ErrRegistration) || !errors.Is(r.err, context.DeadlineExceeded) || !transport.IsTemporary(r.err) {
		t.Fatalf("hung registration: status %d error %v, want a temporary deadline error", r.status, r.err)
	}
	if elapsed < timeout || elapsed > shortWait {
		t.Fatalf("hung registration returned after %v, want about %v", elapsed, timeout)
	}

	r = e.get(key)
	var be *taskcache.BackoffError
	if !errors.As(r.err, &be) || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("request inside the backoff: %v, want a *taskcache.BackoffError over the timeout", r.err)
	}
	// The hang is served when the request reaches the server within the
	// 100 ms; on a saturated CPU (.ci/stress) the attempt can time out
	// before it does, with the same outcome for the client. Either way
	// nothing was registered, and the fault is cleared so that the fresh
	// attempt cannot meet a hang left unserved.
	if st := e.srv.Stats(); st.FaultsServed > 1 || st.TaskRegistrations != 0 {
		t.Fatalf("server: %d faults, %d registrations; want at most 1 and 0", st.FaultsServed, st.TaskRegistrations)
	}
	e.srv.ClearFaults(identitytest.RouteTaskRegister)

	e.clock.Advance(firstBackoff)
	e.mustAssertion(e.get(key), key)
	if st := e.srv.Stats(); st.FaultsServed > 1 || st.RegistrationsByExternalRef[key] != 1 {
		t.Fatalf("server: %d faults, %d registrations for the key; want at most 1 and 1", st.FaultsServed, st.RegistrationsByExternalRef[key])
	}
}

// recSeenFor returns the requests the reference server saw whose body is
// (or starts like) body.
func recSeenFor(srv *identitytest.Server, body []byte) []identitytest.SeenRequest {
	var out []identitytest.SeenRequest
	for _, s := range srv.Requests() {
		if len(s.Body) >= 16 && bytes.HasPrefix(body, s.Body[:16]) {
			out = append(out, s)
		}
	}
	return out
}

// TestRevokedThreadTask: after the server revokes a thread's task,
// concurrent 401s share one re-registration and each request is replayed
// at most once, with its full body.
func TestRevokedThreadTask(t *testing.T) {
	e := newEnv(t, envOptions{})
	const key = "thread-revoked"
	e.mustAssertion(e.get(key), key)
	old := e.tasks(key)
	if len(old) != 1 || !e.srv.RevokeTask(old[0].TaskID) {
		t.Fatalf("cannot revoke the thread's task: %+v", old)
	}

	const n, size = 20, 32 << 10
	bodies := make([][]byte, n)
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		bodies[i] = numberedBody(i, size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := transport.WithThread(context.Background(), key)
			results[i] = e.request(ctx, http.MethodPost, "/v1/responses", bytes.NewReader(bodies[i]))
		}()
	}
	wg.Wait()

	tasks := e.tasks(key)
	if len(tasks) != 2 || !tasks[0].Revoked || tasks[1].Revoked {
		t.Fatalf("tasks for the thread %+v, want the revoked one and exactly one new one", tasks)
	}
	replays := 0
	for i, r := range results {
		e.mustAssertion(r, key)
		if r.echo.TaskID != tasks[1].TaskID {
			t.Fatalf("request %d signed with task %q, want the new %q", i, r.echo.TaskID, tasks[1].TaskID)
		}
		seen := recSeenFor(e.srv, bodies[i])
		switch {
		case len(seen) == 1 && seen[0].Status == http.StatusOK:
		case len(seen) == 2 && seen[0].Status == http.StatusUnauthorized && seen[0].Reason == "task_revoked" &&
			seen[1].Status == http.StatusOK:
			replays++
		default:
			t.Fatalf("request %d reached the server %d times (want 1, or a revoked 401 then a 200)", i, len(seen))
		}
		for _, s := range seen {
			if !bytes.Equal(s.Body, bodies[i]) {
				t.Fatalf("request %d: server received %d of %d body bytes", i, len(s.Body), len(bodies[i]))
			}
		}
	}
	if replays == 0 || uint64(replays) != e.rt.Stats().Replays {
		t.Fatalf("%d replays seen by the server, transport counted %d", replays, e.rt.Stats().Replays)
	}
	if got := e.srv.Stats().RegistrationsByExternalRef[key]; got != 2 {
		t.Fatalf("%d registrations for the thread, want 2", got)
	}
}

// TestUnauthorizedNotReplayable: a 401 on a request whose body cannot be
// replayed is returned as is; a later replayable request recovers.
func TestUnauthorizedNotReplayable(t *testing.T) {
	e := newEnv(t, envOptions{})
	const key = "thread-once"
	e.mustAssertion(e.get(key), key)
	if !e.srv.RevokeTask(e.tasks(key)[0].TaskID) {
		t.Fatal("cannot revoke")
	}
	ctx := transport.WithThread(context.Background(), key)
	body := numberedBody(1, 1024)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/responses", io.NopCloser(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	if req.GetBody != nil {
		t.Fatal("test bug: the body is replayable")
	}
	if r := send(e.rt, req); r.err != nil || r.status != http.StatusUnauthorized {
		t.Fatalf("non-replayable request: status %d error %v, want the 401", r.status, r.err)
	}
	if got := len(recSeenFor(e.srv, body)); got != 1 || e.rt.Stats().Replays != 0 {
		t.Fatalf("non-replayable request sent %d times, %d replays; want 1 and 0", got, e.rt.Stats().Replays)
	}

	body = numberedBody(2, 1024)
	if r := e.request(ctx, http.MethodPost, "/v1/responses", bytes.NewReader(body)); r.err != nil || r.status != http.StatusOK {
		t.Fatalf("replayable request after the revocation: status %d error %v", r.status, r.err)
	}
	if got := e.srv.Stats().RegistrationsByExternalRef[key]; got != 2 {
		t.Fatalf("%d registrations for the thread, want 2", got)
	}
}

// TestSecondUnauthorized: when the re-registered task is rejected too,
// the second 401 is returned: one replay, no loop.
func TestSecondUnauthorized(t *testing.T) {
	e := newEnv(t, envOptions{front: true})
	// Every task is revoked the moment it is registered.
	e.front.setOnTask(func(id string) { e.srv.RevokeTask(id) })
	for _, key := range []string{"thread-doomed", ""} {
		ctx := context.Background()
		if key != "" {
			ctx = transport.WithThread(ctx, key)
		}
		before := e.rt.Stats().Replays
		body := numberedBody(len(key), 4096)
		r := e.request(ctx, http.MethodPost, "/v1/responses", bytes.NewReader(body))
		if r.err != nil || r.status != http.StatusUnauthorized {
			t.Fatalf("key %q: status %d error %v, want the second 401", key, r.status, r.err)
		}
		seen := recSeenFor(e.srv, body)
		if len(seen) != 2 || seen[0].Reason != "task_revoked" || seen[1].Reason != "task_revoked" {
			t.Fatalf("key %q: server saw the request %d times, want 2 rejected sends", key, len(seen))
		}
		if got := e.front.Attempts(key); got != 2 {
			t.Fatalf("key %q: %d registrations, want 2", key, got)
		}
		if got := e.rt.Stats().Replays - before; got != 1 {
			t.Fatalf("key %q: %d replays, want 1", key, got)
		}
	}
}

// TestRevokedProcessTask: the process task (no thread key) recovers from
// revocation the same way, with one shared re-registration.
func TestRevokedProcessTask(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.mustAssertion(e.get(""), "")
	old := e.tasks("")
	if len(old) != 1 || !e.srv.RevokeTask(old[0].TaskID) {
		t.Fatalf("cannot revoke the process task: %+v", old)
	}
	const n = 10
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.request(context.Background(), http.MethodPost, "/v1/responses", bytes.NewReader(numberedBody(i, 512)))
		}()
	}
	wg.Wait()
	tasks := e.tasks("")
	if len(tasks) != 2 {
		t.Fatalf("process tasks %+v, want the revoked one and one new one", tasks)
	}
	for _, r := range results {
		e.mustAssertion(r, "")
		if r.echo.TaskID != tasks[1].TaskID {
			t.Fatalf("signed with %q, want the new process task %q", r.echo.TaskID, tasks[1].TaskID)
		}
	}
	if st := e.srv.Stats(); st.ProcessTaskRegistrations != 2 || st.ThreadTaskRegistrations != 0 {
		t.Fatalf("server: %d process and %d thread registrations, want 2 and 0",
			st.ProcessTaskRegistrations, st.ThreadTaskRegistrations)
	}
	if r := e.rt.Stats().Replays; r == 0 || r > n {
		t.Fatalf("%d replays for %d requests", r, n)
	}
}

// recWriteAuthJSON writes a ChatGPT login with access token tok to path.
func recWriteAuthJSON(t *testing.T, path, tok string) {
	t.Helper()
	data := []byte(`{"tokens":{"access_token":"` + tok + `","account_id":"acct-bearer"}}`)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

// TestBearerRefreshOn401: a Bearer 401 asks a refreshing token source
// once and replays once with the new token; a static source returns the 401.
func TestBearerRefreshOn401(t *testing.T) {
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{"tok-new"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	front := newFrontServer(t, srv)
	path := filepath.Join(t.TempDir(), "auth.json")
	recWriteAuthJSON(t, path, "tok-old")
	// The Codex CLI refreshes the login while our request is in flight: the
	// server sees the old token once, and auth.json then holds the new one.
	front.setOnResource(func(r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer tok-old" {
			recWriteAuthJSON(t, path, "tok-new")
		}
	})
	// The login against the front, with the flag off: Bearer.
	build := func(cred transport.Credential) *transport.Transport {
		return newEnv(t, envOptions{srv: srv, baseURL: front.URL(), base: newHTTPBase(t), plain: true, credential: cred, defaultStore: true}).rt
	}

	src := &countingSource{inner: credentials.NewFileTokenSource(path)}
	rt := build(transport.ChatGPT(src))
	body := numberedBody(7, 8192)
	req, _ := http.NewRequest(http.MethodPost, front.URL()+"/v1/responses", bytes.NewReader(body))
	r := send(rt, req)
	if r.err != nil || r.status != http.StatusOK || r.echo.Mode != identitytest.ModeBearer || r.echo.AccountID != "acct-bearer" {
		t.Fatalf("refreshing source: status %d echo %+v error %v", r.status, r.echo, r.err)
	}
	seen := front.Seen()
	if len(seen) != 2 || seen[0].auth != "Bearer tok-old" || seen[1].auth != "Bearer tok-new" ||
		!bytes.Equal(seen[0].body, body) || !bytes.Equal(seen[1].body, body) {
		t.Fatalf("server saw %d sends, want the old token then the new one, each with the full body", len(seen))
	}
	if got := src.refreshes.Load(); got != 1 || rt.Stats().Replays != 1 {
		t.Fatalf("%d refreshes and %d replays, want 1 and 1", got, rt.Stats().Replays)
	}

	// A static token cannot be refreshed: the 401 comes back, sent once.
	static := build(transport.BearerToken("tok-old", "acct-bearer", false))
	req, _ = http.NewRequest(http.MethodPost, front.URL()+"/v1/responses", bytes.NewReader(body))
	if r := send(static, req); r.err != nil || r.status != http.StatusUnauthorized {
		t.Fatalf("static source: status %d error %v, want the 401", r.status, r.err)
	}
	if got := len(front.Seen()); got != 3 || static.Stats().Replays != 0 {
		t.Fatalf("static source: %d sends in all and %d replays, want 3 and 0", got, static.Stats().Replays)
	}
}

// A 401 on a request whose body cannot be replayed still drops the revoked
// task, so the next request (also not replayable) succeeds on a new task
// instead of being rejected until the task idles out.
func TestNonReplayable401DropsTask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newIdentityServer(t, identitytest.Options{})
	ident := newRuntime(t, srv, uniqueAccount("rv401"), false)
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: agentCred(t, ident)}).rt
	url := srv.URL() + "/v1/responses"
	first := mustEcho(t, ctx, rt, url, "thread-r")
	srv.RevokeTask(first.TaskID)

	send := func() int {
		// io.NopCloser hides the reader's type, so no GetBody is set.
		req, _ := http.NewRequestWithContext(transport.WithThread(ctx, "thread-r"), http.MethodPost, url,
			io.NopCloser(strings.NewReader(`{}`)))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(); got != http.StatusUnauthorized {
		t.Fatalf("first non-replayable request after revocation: %d, want 401", got)
	}
	if got := send(); got != http.StatusOK {
		t.Fatalf("second non-replayable request: %d, want 200 on a new task", got)
	}
	if n := srv.Stats().RegistrationsByExternalRef["thread-r"]; n != 2 {
		t.Fatalf("registrations for thread-r = %d, want 2", n)
	}
}

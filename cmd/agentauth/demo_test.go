package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// decodeDemoJSON checks that stdout is exactly one JSON object with the
// members the demo's --json contract promises and decodes it.
func decodeDemoJSON(t *testing.T, stdout string) demoSummary {
	t.Helper()
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("--json stdout is not one line: %q", stdout)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("--json stdout %q: %v", stdout, err)
	}
	for member, keys := range map[string][]string{
		"requests": {"thread", "background", "total"}, "registrations": {"agent", "thread", "process"},
		"latency_ms": {"p50", "p99"}, "registration_latency_ms": {"p50", "p99", "samples"}, "signatures": nil, "failures": nil, "rejections": nil,
	} {
		v, ok := raw[member]
		if !ok {
			t.Fatalf("--json output lacks %q: %s", member, stdout)
		}
		for _, k := range keys {
			if _, ok := v.(map[string]any)[k]; !ok {
				t.Fatalf("--json output lacks %s.%s: %s", member, k, stdout)
			}
		}
	}
	var s demoSummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestServer(t *testing.T, opts identitytest.Options) *identitytest.Server {
	t.Helper()
	srv, err := identitytest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestDemoDefaultsJSON(t *testing.T) {
	r := runCmd(t, "", "demo", "--json")
	if r.code != 0 {
		t.Fatalf("demo --json exited %d: stderr %q", r.code, r.stderr)
	}
	s := decodeDemoJSON(t, r.stdout)
	if s.Requests.Thread != 200 || s.Requests.Background != 20 || s.Requests.Total != 220 || s.Requests.Accepted != 220 || s.Planned != 220 {
		t.Errorf("requests %+v planned %d, want 200 thread + 20 background, all accepted", s.Requests, s.Planned)
	}
	if s.Registrations.Agent != 1 || s.Registrations.Thread != 8 || s.Registrations.Process != 1 {
		t.Errorf("registrations %+v, want agent 1, thread 8, process 1", s.Registrations)
	}
	if s.Rejections != 0 || s.Failures != 0 || s.EchoMismatches != 0 || s.Canceled != 0 || s.BearerFallbacks != 0 {
		t.Errorf("summary %+v: want no rejection, failure, mismatch, cancellation or fallback", s)
	}
	if s.Modes.ThreadTask != 200 || s.Modes.ProcessTask != 20 || s.Modes.Bearer != 0 {
		t.Errorf("modes %+v, want 200 thread-task and 20 process-task requests", s.Modes)
	}
	// At least one signature per task; at most one per task per second
	// (assertions are reused within their second) over a run that must
	// take less than 15 s.
	if s.Signatures < 9 || s.Signatures > 9*16 {
		t.Errorf("signatures %d, want between 9 and %d", s.Signatures, 9*16)
	}
	if s.LatencyMS.P50 == nil || s.LatencyMS.P99 == nil || *s.LatencyMS.P50 < 0 || *s.LatencyMS.P99 < *s.LatencyMS.P50 {
		t.Errorf("latency %+v: want 0 <= p50 <= p99", s.LatencyMS)
	}
	if rl := s.RegistrationLatencyMS; rl.Samples != 8 || rl.P50 == nil || rl.P99 == nil || *rl.P50 <= 0 || *rl.P99 < *rl.P50 {
		t.Errorf("registration latency %+v: want 8 samples (one per thread), 0 < p50 <= p99", rl)
	}
	if !s.EchoChecked || s.Expected != s.Registrations || len(s.Errors) != 0 || len(s.Warnings) != 0 {
		t.Errorf("summary %+v: want checked echoes, the expected registrations and no error", s)
	}
	if !s.Embedded || s.Server == nil || !s.Server.Consistent ||
		s.Server.AgentRegistrations != 1 || s.Server.ThreadRegistrations != 8 || s.Server.ProcessRegistrations != 1 ||
		s.Server.Accepted != 220 || s.Server.Rejections != 0 {
		t.Errorf("server counters %+v, want the client's", s.Server)
	}
	if s.ElapsedMS <= 0 || s.ElapsedMS > 15000 {
		t.Errorf("elapsed %v ms", s.ElapsedMS)
	}
	// stderr is not a terminal here: plain progress lines ending with the
	// final count.
	if !strings.HasSuffix(r.stderr, "\n") || !strings.Contains(r.stderr, "demo: 220/220 requests done, 0 failures, 0 rejections") || strings.Contains(r.stderr, "\r") {
		t.Errorf("progress on stderr %q", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "demo-") {
		t.Error("output contains the demo access token")
	}
}

func TestDemoDefaultsTable(t *testing.T) {
	r := runCmd(t, "", "demo")
	if r.code != 0 {
		t.Fatalf("demo exited %d: stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		`^agentauth demo: 220 requests against embedded reference server http://127\.0\.0\.1:\d+ in \d+\.\d{3}s$`,
		`^METRIC\s+CLIENT\s+SERVER$`,
		`^requests thread\s+200\s+-$`,
		`^requests background\s+20\s+-$`,
		`^requests total\s+220\s+-$`,
		`^requests accepted \(2xx\)\s+220\s+220$`,
		`^scenario: a ChatGPT login with use_agent_identity on provisions one Agent Identity at the embedded reference server; 8 thread key\(s\) × 25 request\(s\) sign with their thread's task and 20 background request\(s\) with the process task, on 8 worker\(s\)$`,
		`^sent with thread task\s+200\s+-$`,
		`^sent with process task\s+20\s+-$`,
		`^sent as Bearer \(fallback\)\s+0\s+-$`,
		`^registrations agent\s+1\s+1$`,
		`^registrations thread\s+8\s+8$`,
		`^registrations process\s+1\s+1$`,
		`^signatures\s+\d+\s+-$`,
		`^failures\s+0\s+-$`,
		`^rejections\s+0\s+0$`,
		`^latency added p50 \(ms\)\s+\d+\.\d{3}\s+-$`,
		`^latency added p99 \(ms\)\s+\d+\.\d{3}\s+-$`,
		`^thread registration p50 \(ms\)\s+\d+\.\d{3}\s+-$`,
		`^thread registration p99 \(ms\)\s+\d+\.\d{3}\s+-$`,
		`^server counters match the transport's$`,
	} {
		if !regexp.MustCompile(`(?m)` + want).MatchString(r.stdout) {
			t.Errorf("table lacks a line matching %s:\n%s", want, r.stdout)
		}
	}
}

func TestDemoAgainstServer(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AcceptAnyBearerForAgentRegistration: true, RequestLog: 2000})
	r := runCmd(t, "", "demo", "--server", srv.URL()+"/", "--threads", "20", "--requests", "50", "--background", "30", "--concurrency", "16", "--json")
	if r.code != 0 {
		t.Fatalf("demo --server exited %d: stderr %q", r.code, r.stderr)
	}
	s := decodeDemoJSON(t, r.stdout)
	st := srv.Stats()

	if st.AgentRegistrations != 1 || len(srv.Runtimes()) != 1 {
		t.Errorf("server saw %d agent registrations (%d runtimes), want 1", st.AgentRegistrations, len(srv.Runtimes()))
	}
	if st.ThreadTaskRegistrations != 20 || len(st.RegistrationsByExternalRef) != 20 {
		t.Errorf("server saw %d thread-task registrations for %d refs, want 20 for 20", st.ThreadTaskRegistrations, len(st.RegistrationsByExternalRef))
	}
	for i := 1; i <= 20; i++ {
		if n := st.RegistrationsByExternalRef[fmt.Sprintf("thread-%d", i)]; n != 1 {
			t.Errorf("thread-%d registered %d times, want 1", i, n)
		}
	}
	if st.ProcessTaskRegistrations != 1 {
		t.Errorf("server saw %d process-task registrations, want 1", st.ProcessTaskRegistrations)
	}
	process := 0
	for _, task := range srv.Tasks() {
		if task.ExternalTaskRef == "" {
			process++
		}
	}
	if process != 1 {
		t.Errorf("%d tasks without external_task_ref, want 1", process)
	}
	if st.RequestsByMode[identitytest.ModeAssertion] != 1030 || st.Rejections != 0 {
		t.Errorf("server accepted %v with %d rejections, want 1030 assertions and none", st.RequestsByMode, st.Rejections)
	}

	// Every resource request carried an AgentAssertion and the routing
	// header, on the task of its own thread or on the process task.
	reqs := srv.Requests()
	if len(reqs) != 1030 {
		t.Fatalf("request log has %d entries, want 1030", len(reqs))
	}
	perRef := map[string]int{}
	for _, q := range reqs {
		if q.Method != "POST" || q.Path != "/v1/responses" || q.Status != 200 ||
			!strings.HasPrefix(q.Header.Get("Authorization"), "AgentAssertion ") ||
			q.Header.Get("ChatGPT-Account-ID") != demoAccountID || q.Header.Get("X-OpenAI-Fedramp") != "" ||
			q.Echo.Mode != identitytest.ModeAssertion || q.Echo.AccountID != demoAccountID {
			t.Fatalf("resource request %v: want an accepted POST /v1/responses with an AgentAssertion and ChatGPT-Account-ID %s", q, demoAccountID)
		}
		perRef[q.Echo.ExternalTaskRef]++
	}
	if len(perRef) != 21 || perRef[""] != 30 {
		t.Errorf("requests per external_task_ref %v, want 30 on the process task and 50 per thread", perRef)
	}
	for ref, n := range perRef {
		if ref != "" && n != 50 {
			t.Errorf("%s: %d requests, want 50", ref, n)
		}
	}

	// The summary says what the server counted.
	if s.Embedded || s.Server != nil {
		t.Errorf("summary claims an embedded server: %+v", s)
	}
	if s.Requests.Thread != 1000 || s.Requests.Background != 30 || s.Requests.Total != 1030 || s.Requests.Accepted != int64(st.RequestsByMode[identitytest.ModeAssertion]) {
		t.Errorf("summary requests %+v, server accepted %d", s.Requests, st.RequestsByMode[identitytest.ModeAssertion])
	}
	if s.Registrations.Agent != uint64(st.AgentRegistrations) || s.Registrations.Thread != uint64(st.ThreadTaskRegistrations) || s.Registrations.Process != uint64(st.ProcessTaskRegistrations) {
		t.Errorf("summary registrations %+v, server %d/%d/%d", s.Registrations, st.AgentRegistrations, st.ThreadTaskRegistrations, st.ProcessTaskRegistrations)
	}
	if s.Rejections != 0 || s.Failures != 0 || s.ServerURL != srv.URL() {
		t.Errorf("summary %+v", s)
	}
}

func TestDemoRejectedExitsNonZero(t *testing.T) {
	for _, status := range []int{401, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newTestServer(t, identitytest.Options{AcceptAnyBearerForAgentRegistration: true})
			srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: status})
			r := runCmd(t, "", "demo", "--server", srv.URL(), "--threads", "2", "--requests", "3", "--background", "2", "--json")
			if r.code != exitFailure {
				t.Fatalf("exit %d, want 1 (stderr %q)", r.code, r.stderr)
			}
			s := decodeDemoJSON(t, r.stdout)
			if s.Rejections != 8 || s.Requests.Accepted != 0 || s.Requests.Total != 8 {
				t.Errorf("summary %+v: want 8 rejections", s)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; last != "agentauth demo: 8 of 8 requests did not succeed: 8 rejected (non-2xx), 0 failed" {
				t.Errorf("last stderr line %q", last)
			}
		})
	}
}

func TestDemoRegistrationFailureExitsNonZero(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AcceptAnyBearerForAgentRegistration: true})
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: 400})
	r := runCmd(t, "", "demo", "--server", srv.URL(), "--threads", "2", "--requests", "2", "--background", "1", "--json")
	if r.code != exitFailure {
		t.Fatalf("exit %d, want 1 (stderr %q)", r.code, r.stderr)
	}
	s := decodeDemoJSON(t, r.stdout)
	if s.Failures != 5 || s.Requests.Accepted != 0 || s.Registrations.Thread != 0 || s.Registrations.Process != 0 {
		t.Errorf("summary %+v: want 5 failures and no task registration", s)
	}
	if !strings.HasSuffix(r.stderr, "5 of 5 requests did not succeed: 0 rejected (non-2xx), 5 failed\n") {
		t.Errorf("stderr %q", r.stderr)
	}
	// Why, in words: what was being registered where, and the answer.
	for _, want := range []string{
		"4× failed: thread-task registration, first: registering the thread's task at " + srv.URL() + " failed: the server answered 400 Bad Request",
		"1× failed: process-task registration, first: registering the process task (the task of requests without a thread key) at ",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, `key "`) || strings.Contains(r.stderr, "resolver:") {
		t.Errorf("stderr names internal keys:\n%s", r.stderr)
	}
}

func TestDemoInterrupted(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AcceptAnyBearerForAgentRegistration: true})
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The resource never answers, so the run can only end through the
	// context, whenever the cancellation lands.
	stop := time.AfterFunc(100*time.Millisecond, cancel)
	defer stop.Stop()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"demo", "--server", srv.URL(), "--threads", "2", "--requests", "2", "--background", "0", "--json"}, nil, &out, &errb)
	if code != exitFailure {
		t.Fatalf("exit %d, want 1 (stderr %q)", code, errb.String())
	}
	s := decodeDemoJSON(t, out.String())
	if s.Requests.Accepted != 0 || s.Canceled+(s.Planned-s.Requests.Total) == 0 {
		t.Errorf("summary %+v: want canceled or unsent requests", s)
	}
	if !regexp.MustCompile(`agentauth demo: interrupted: 0 of 4 requests completed, \d canceled in flight, \d never sent\n$`).MatchString(errb.String()) {
		t.Errorf("stderr %q", errb.String())
	}
	// No request got a response: no latency sample, not a 0 ms one.
	if s.LatencyMS.P50 != nil || s.LatencyMS.P99 != nil {
		t.Errorf("latency %v/%v from requests that got no response", s.LatencyMS.P50, s.LatencyMS.P99)
	}
}

func TestDemoInterruptedAgainstTheEmbeddedServerIsNotADisagreement(t *testing.T) {
	// The embedded server answers; the run is cut short by its own
	// timeout while requests are in flight. The server may have answered
	// some canceled requests: that is said, not reported as DISAGREE.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--threads", "50", "--requests", "2000", "--background", "0", "--concurrency", "16"}, nil, &out, &errb)
	}()
	// Cancel once some requests are done, whenever that is.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "requests done") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	code := <-done
	if code != exitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	if strings.Contains(out.String(), "DISAGREE") {
		t.Errorf("an interrupted run reports a disagreement:\n%s", out.String())
	}
	if !regexp.MustCompile(`(?m)^server counters match the transport's`).MatchString(out.String()) {
		t.Errorf("table lacks the comparison:\n%s", out.String())
	}
	if !regexp.MustCompile(`agentauth demo: interrupted: \d+ of 100000 requests completed, \d+ canceled in flight, \d+ never sent\n$`).MatchString(errb.String()) {
		t.Errorf("stderr ends %q", tail(errb.String()))
	}
}

func tail(s string) string {
	if len(s) > 300 {
		return s[len(s)-300:]
	}
	return s
}

func TestDemoTimeoutFlag(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AcceptAnyBearerForAgentRegistration: true})
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Hang: true})
	r := runCmd(t, "", "demo", "--server", srv.URL(), "--threads", "1", "--requests", "2", "--background", "0", "--timeout", "200ms", "--json")
	if r.code != exitFailure || !regexp.MustCompile(`agentauth demo: timed out after --timeout 200ms: 0 of 2 requests completed, \d canceled in flight, \d never sent\n$`).MatchString(r.stderr) {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// foreignEchoServer verifies every request with identitytest but answers in
// its own words: another JSON body and no echo header.
// With revokeOnce, each thread task is revoked after its first accepted
// request, so the transport re-registers it once (and replays).
func foreignEchoServer(t *testing.T, revokeOnce bool) (*identitytest.Server, *httptest.Server) {
	t.Helper()
	id := newTestServer(t, identitytest.Options{AcceptAnyBearerForAgentRegistration: true})
	var mu sync.Mutex
	revoked := map[string]bool{}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		id.Handler().ServeHTTP(rec, r)
		var echo identitytest.Echo
		if revokeOnce && json.Unmarshal(rec.Body.Bytes(), &echo) == nil && echo.ExternalTaskRef != "" {
			mu.Lock()
			if !revoked[echo.ExternalTaskRef] {
				revoked[echo.ExternalTaskRef] = true
				id.RevokeTask(echo.TaskID)
			}
			mu.Unlock()
		}
		if rec.Header().Get(identitytest.EchoHeader) == "" {
			// Registrations (and rejections) pass through unchanged.
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write([]byte(`{"mode":"verified","id":"resp_1","status":"completed"}`))
	}))
	t.Cleanup(front.Close)
	return id, front
}

func TestDemoJudgesAForeignServerByStatusAndRegistrations(t *testing.T) {
	id, front := foreignEchoServer(t, false)
	r := runCmd(t, "", "demo", "--server", front.URL, "--threads", "4", "--requests", "5", "--background", "3", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	s := decodeDemoJSON(t, r.stdout)
	if s.EchoChecked || s.EchoMismatches != 0 || s.Requests.Accepted != 23 || s.Registrations != s.Expected ||
		s.Expected.Agent != 1 || s.Expected.Thread != 4 || s.Expected.Process != 1 {
		t.Errorf("summary %+v", s)
	}
	if st := id.Stats(); st.RequestsByMode[identitytest.ModeAssertion] != 23 {
		t.Errorf("the server verified %v", st.RequestsByMode)
	}
	r = runCmd(t, "", "demo", "--server", front.URL, "--threads", "2", "--requests", "2", "--background", "0")
	if r.code != 0 || !strings.Contains(r.stdout, "judged by status code") {
		t.Errorf("table run: %+v", r)
	}
	// Against the reference server itself the echo is still checked.
	r = runCmd(t, "", "demo", "--server", id.URL(), "--threads", "2", "--requests", "2", "--background", "1", "--json")
	if s := decodeDemoJSON(t, r.stdout); r.code != 0 || !s.EchoChecked {
		t.Errorf("reference server via --server: exit %d, %+v", r.code, s)
	}
}

func TestDemoFailsWhenRegistrationsAreNotTheWorkloads(t *testing.T) {
	// Every request is accepted in the end, but each thread's task was
	// registered twice: the demo's contract is one per thread.
	_, front := foreignEchoServer(t, true)
	r := runCmd(t, "", "demo", "--server", front.URL, "--threads", "3", "--requests", "4", "--background", "0", "--concurrency", "1")
	if r.code != exitFailure || !strings.HasSuffix(r.stderr, "agentauth demo: registrations agent 1, thread 6, process 0; the workload needs exactly 1, 3, 0\n") {
		t.Errorf("exit %d stderr %q", r.code, r.stderr)
	}
}

func TestDemoSaysWhyRequestsFailed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	r := runCmd(t, "", "demo", "--server", dead, "--threads", "2", "--requests", "2", "--background", "1")
	if r.code != exitFailure {
		t.Fatalf("exit %d", r.code)
	}
	for _, want := range []string{
		"agentauth demo: transport warning (1×): agentauth: agent provisioning unavailable; using Bearer during the cooldown: ",
		"connection refused",
		"agentauth demo: 5× failed: network (dial), first: ",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}

	// A 401 at agent registration is a hard provisioning failure: named.
	srv := newTestServer(t, identitytest.Options{AccessTokens: []string{"only-this-token"}})
	r = runCmd(t, "", "demo", "--server", srv.URL(), "--threads", "1", "--requests", "2", "--background", "0", "--json")
	s := decodeDemoJSON(t, r.stdout)
	if r.code != exitFailure || len(s.Errors) != 1 || s.Errors[0].Kind != "failed: agent provisioning" || s.Errors[0].Count != 2 ||
		!strings.Contains(s.Errors[0].First, "401") {
		t.Errorf("exit %d errors %+v", r.code, s.Errors)
	}
	if !strings.Contains(r.stderr, "2× failed: agent provisioning, first: ") || strings.Contains(r.stdout+r.stderr, "demo-") {
		t.Errorf("stderr %q", r.stderr)
	}

	// Rejections carry their status and the start of the body.
	srv = newTestServer(t, identitytest.Options{AcceptAnyBearerForAgentRegistration: true})
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: 429})
	r = runCmd(t, "", "demo", "--server", srv.URL(), "--threads", "1", "--requests", "2", "--background", "0")
	if !strings.Contains(r.stderr, "agentauth demo: 2× rejected with HTTP 429, first: 429 Too Many Requests: ") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--threads", "0"},
		{"--threads", "-3"},
		{"--threads", "many"},
		{"--requests", "0"},
		{"--background", "-1"},
		{"--concurrency", "0"},
		{"--threads", "1000", "--requests", "10000"},
		{"--threads", "20000"},
		{"--timeout", "0s"},
		{"--timeout", "2h"},
		{"--server", "ftp://127.0.0.1/"},
		{"--server", "127.0.0.1:8787"},
		{"--server", "http://example.com"},
		{"--server", "http://user:pw@127.0.0.1:1"},
		{"--json=maybe"},
		{"--nope"},
		{"extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCmd(t, "", append([]string{"demo"}, args...)...)
			assertOneLineError(t, r, exitUsage)
			if !strings.HasPrefix(r.stderr, "agentauth demo: ") {
				t.Errorf("stderr %q does not name the command", r.stderr)
			}
		})
	}
}

func TestDemoAndDoHelp(t *testing.T) {
	top := runCmd(t, "", "-h")
	for _, c := range []string{"demo", "do"} {
		if !strings.Contains(top.stdout, "  "+c+" ") {
			t.Errorf("usage lacks %s:\n%s", c, top.stdout)
		}
		r := runCmd(t, "", c, "-h")
		if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: agentauth "+c+" [") {
			t.Errorf("%s -h: %+v", c, r)
		}
	}
	if r := runCmd(t, "", "demo", "-h"); !strings.Contains(r.stdout, "-concurrency") || !strings.Contains(r.stdout, "-server") {
		t.Errorf("demo -h lacks flags: %s", r.stdout)
	}
	if r := runCmd(t, "", "do", "-h"); !strings.Contains(r.stdout, "-use-agent-identity") || !strings.Contains(r.stdout, "-insecure-unverified-jwt") {
		t.Errorf("do -h lacks flags: %s", r.stdout)
	}
}

func TestDemoJobMix(t *testing.T) {
	o := demoOptions{threads: 3, requests: 4, background: 5}
	perThread := map[int]int{}
	bg, maxGap, gap := 0, 0, 0
	for i := range o.total() {
		j := o.demoJob(i)
		if j < 0 {
			bg++
			maxGap, gap = max(maxGap, gap), 0
			continue
		}
		gap++
		perThread[j]++
	}
	if bg != 5 || perThread[0] != 4 || perThread[1] != 4 || perThread[2] != 4 || len(perThread) != 3 {
		t.Fatalf("background %d, per thread %v", bg, perThread)
	}
	// 12 thread jobs among 5 background ones: spread, not bunched.
	if maxGap > 3 {
		t.Errorf("background requests bunched: a run of %d thread requests", maxGap)
	}
}

func TestLatencyPercentiles(t *testing.T) {
	var samples []time.Duration
	for i := 100; i >= 1; i-- {
		samples = append(samples, time.Duration(i)*time.Millisecond+1500*time.Nanosecond, -1)
	}
	p50, p99, ok := latencyPercentiles(samples)
	if p50 != 50.002 || p99 != 99.002 || !ok {
		t.Errorf("p50 %v p99 %v, want 50.002 and 99.002", p50, p99)
	}
	if p50, p99, ok := latencyPercentiles([]time.Duration{-1}); ok {
		t.Errorf("no samples: %v %v", p50, p99)
	}
}

func TestDemoLimitsAreStated(t *testing.T) {
	r := runCmd(t, "", "demo", "--threads", "1000", "--requests", "1000")
	assertOneLineError(t, r, exitUsage)
	want := "agentauth demo: --threads 1000 × --requests 1000 + --background 20 (the default) = 1000020 requests; a run is limited to 100000 requests"
	if !strings.HasPrefix(r.stderr, want) {
		t.Errorf("stderr %q, want prefix %q", r.stderr, want)
	}
	h := runCmd(t, "", "demo", "-h")
	for _, want := range []string{"1 to 10000", "at most 100000", "counts toward the total", "-timeout", "(default 1m0s)"} {
		if !strings.Contains(h.stdout, want) {
			t.Errorf("demo -h lacks %q:\n%s", want, h.stdout)
		}
	}
	// The largest workload within the limits is accepted.
	o := demoOptions{threads: 1000, requests: 99, background: 1000, concurrency: 8, timeout: time.Minute}
	if err := o.validate(map[string]bool{}); err != nil {
		t.Errorf("%+v: %v", o, err)
	}
}

func TestProgress(t *testing.T) {
	var counts progressCounts
	counts.done.Store(5)
	counts.rejections.Store(1)
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true, total: 10, counts: &counts, start: time.Now()}
	p.report(true)
	if got := buf.String(); !strings.HasPrefix(got, "\r[###############...............]  50.0% 5/10") || !strings.Contains(got, "rejections 1") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar %q", got)
	}

	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	if !isTerminal(devnull) {
		t.Error("a character device is not detected as a terminal")
	}
	if isTerminal(&buf) {
		t.Error("a buffer is detected as a terminal")
	}

	// A plain reporter prints at least its final line and stops.
	buf.Reset()
	pp := startProgress(&buf, 10, &counts)
	pp.stop()
	if !strings.HasSuffix(buf.String(), "demo: 5/10 requests done, 0 failures, 1 rejections, 0.0s\n") {
		t.Errorf("plain progress %q", buf.String())
	}
}

// The registration latency comes from the transport's events: a server
// that takes 40 ms to register a task shows at least that, in the JSON and
// in the table.
func TestDemoReportsRegistrationLatencyFromEvents(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AcceptAnyBearerForAgentRegistration: true})
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Latency: 40 * time.Millisecond})
	args := []string{"demo", "--server", srv.URL(), "--threads", "5", "--requests", "2", "--background", "1"}
	r := runCmd(t, "", append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("demo exited %d: %s", r.code, r.stderr)
	}
	rl := decodeDemoJSON(t, r.stdout).RegistrationLatencyMS
	if rl.Samples != 5 || rl.P50 == nil || rl.P99 == nil || *rl.P50 < 40 || *rl.P99 < *rl.P50 {
		t.Errorf("registration latency %+v: want 5 samples, 40 <= p50 <= p99", rl)
	}
	r = runCmd(t, "", args...)
	m := regexp.MustCompile(`(?m)^thread registration p50 \(ms\)\s+(\d+\.\d{3})$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("table without the registration p50:\n%s", r.stdout)
	}
	if v, _ := strconv.ParseFloat(m[1], 64); v < 40 {
		t.Errorf("table registration p50 %s ms, want >= 40", m[1])
	}
}

// Only successful thread registrations are samples, and their number is
// bounded.
func TestRegistrationTimesKeepsSuccessfulThreadRegistrations(t *testing.T) {
	r := &registrationTimes{max: 3}
	ctx := t.Context()
	reg := func(task string, err error, d time.Duration) transport.Event {
		return transport.Event{Op: transport.OpRegistration, Task: task, Err: err, Duration: d}
	}
	r.record(ctx, reg("thread", nil, 5*time.Millisecond))
	r.record(ctx, reg("process", nil, time.Second))
	r.record(ctx, reg("thread", errors.New("503"), time.Second))
	r.record(ctx, reg("thread", context.Canceled, time.Second))
	r.record(ctx, transport.Event{Op: transport.OpSignature, Task: "thread", Duration: time.Second})
	if got := r.snapshot(); !slices.Equal(got, []time.Duration{5 * time.Millisecond}) {
		t.Errorf("samples %v, want only the successful thread registration", got)
	}
	for range 10 {
		r.record(ctx, reg("thread", nil, time.Millisecond))
	}
	if n := len(r.snapshot()); n != 3 {
		t.Errorf("%d samples kept, want the bound 3", n)
	}
}

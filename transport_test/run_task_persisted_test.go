// The run task (the process task, used by requests of no thread) is kept
// where the Codex CLI keeps its own: the task_id of the auth.json
// agent_identity record. A stored task of the runtime is reused instead of
// registering one, a registered one is stored so that Codex and the next
// process reuse it, and a task the server refused is replaced in the file.
package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

const runTaskChildEnv = "AGENTAUTH_TEST_RUN_TASK_CHILD"

func fileRunTask(t *testing.T, path string) (runtimeID, taskID string) {
	t.Helper()
	af, err := credentials.NewFileStore(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if af.AgentIdentityRecord == nil {
		t.Fatal("auth.json holds no agent identity record")
	}
	return af.AgentIdentityRecord.AgentRuntimeID, af.AgentIdentityTaskID
}

func TestRunTaskPersistedAndReusedByTheNextProcess(t *testing.T) {
	const token = "run-task-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	account := uniqueAccount("runtask")
	path := writeLoginFile(t, token, account)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	rt := newEnv(t, optIn(srv, newHTTPBase(t), token, account, credentials.NewFileStore(path))).rt
	first := mustEcho(t, ctx, rt, url, "")
	if first.Mode != identitytest.ModeAssertion || srv.Stats().ProcessTaskRegistrations != 1 {
		t.Fatalf("first request: mode %q, %d process tasks", first.Mode, srv.Stats().ProcessTaskRegistrations)
	}
	runtimeID, taskID := fileRunTask(t, path)
	if runtimeID != first.AgentRuntimeID || taskID != first.TaskID {
		t.Fatalf("auth.json holds runtime %q task %q; the request used %q %q", runtimeID, taskID, first.AgentRuntimeID, first.TaskID)
	}

	// Another process over the same CODEX_HOME: its first sessionless
	// request signs with the stored task, no registration.
	srv.ResetStats()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRunTaskChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), runTaskChildEnv+"="+strings.Join([]string{srv.URL(), path, token, account}, "|"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out.String())
	}
	var childRuntime, childTask string
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "RUNTASK "); ok {
			fmt.Sscan(rest, &childRuntime, &childTask)
		}
	}
	if childRuntime != runtimeID || childTask != taskID {
		t.Fatalf("child signed with runtime %q task %q, want the stored %q %q\n%s", childRuntime, childTask, runtimeID, taskID, out.String())
	}
	if st := srv.Stats(); st.ProcessTaskRegistrations != 0 || st.AgentRegistrations != 0 {
		t.Fatalf("the next process registered %d process tasks and %d agents, want 0 and 0", st.ProcessTaskRegistrations, st.AgentRegistrations)
	}

	// The server forgets the task: it is replaced once, in the file too.
	if !srv.RevokeTask(taskID) {
		t.Fatal("task unknown to the server")
	}
	again := mustEcho(t, ctx, rt, url, "")
	if again.TaskID == taskID || again.Mode != identitytest.ModeAssertion {
		t.Fatalf("after revocation: task %q mode %q", again.TaskID, again.Mode)
	}
	if _, stored := fileRunTask(t, path); stored != again.TaskID {
		t.Fatalf("auth.json task %q, want the replacement %q", stored, again.TaskID)
	}
}

// TestRunTaskChildProcess is the second process of the test above; it does
// nothing unless started by it.
func TestRunTaskChildProcess(t *testing.T) {
	spec := os.Getenv(runTaskChildEnv)
	if spec == "" {
		t.Skip("helper process")
	}
	parts := strings.Split(spec, "|")
	url, path, token, account := parts[0], parts[1], parts[2], parts[3]
	rt := newEnv(t, envOptions{baseURL: url, base: newHTTPBase(t), plain: true, credential: userLogin(token, account, "user-"+account),
		flag: featureflag.New(true), fleet: transport.Fleet{IdentityStore: credentials.NewFileStore(path)}}).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	echo := mustEcho(t, ctx, rt, url+"/v1/responses", "")
	fmt.Printf("RUNTASK %s %s\n", echo.AgentRuntimeID, echo.TaskID)
}

// A run task the Codex CLI registered and stored is reused by a
// user-given Agent Identity record loaded from that auth.json.
func TestRunTaskStoredByCodexIsReused(t *testing.T) {
	srv := newIdentityServer(t, identitytest.Options{})
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := registerAgent(t, srv, key, uniqueAccount("codexrun"), false)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	client := &identity.Client{AuthAPIBase: srv.URL()}
	codexTask, err := client.RegisterTask(ctx, key, rec.AgentRuntimeID, "")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	path := home + "/" + credentials.AuthFileName
	err = credentials.NewFileStore(path).Update(ctx, func(a *credentials.AuthFile) error {
		a.AuthMode = credentials.AuthModeAgentIdentity
		a.AgentIdentityRecord = &rec
		a.AgentIdentityTaskID = codexTask
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetStats()
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, codexHome: home, detect: true, defaultStore: true,
		options: func(o *transport.Options) { o.Getenv = func(string) string { return "" } }}).rt
	echo := mustEcho(t, ctx, rt, srv.URL()+"/v1/responses", "")
	if echo.TaskID != codexTask {
		t.Fatalf("signed with task %q, want Codex's %q", echo.TaskID, codexTask)
	}
	if n := srv.Stats().ProcessTaskRegistrations; n != 0 {
		t.Fatalf("%d process task registrations, want 0", n)
	}
}

// Two processes started together over one auth.json register one agent
// and one run task between them, and sign with the same runtime and task.
func TestTwoProcessesRegisterOneAgent(t *testing.T) {
	const token = "two-real-procs-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Latency: 100 * time.Millisecond, Times: 2})
	account := uniqueAccount("tworeal")
	path := writeLoginFile(t, token, account)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	type result struct {
		out bytes.Buffer
		err error
	}
	results := make([]*result, 2)
	var wg sync.WaitGroup
	for i := range results {
		r := &result{}
		results[i] = r
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRunTaskChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), runTaskChildEnv+"="+strings.Join([]string{srv.URL(), path, token, account}, "|"))
		cmd.Stdout, cmd.Stderr = &r.out, &r.out
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.err = cmd.Run()
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("child %d: %v\n%s", i, r.err, r.out.String())
		}
		for _, line := range strings.Split(r.out.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, "RUNTASK "); ok {
				seen[rest] = true
			}
		}
	}
	st := srv.Stats()
	if st.AgentRegistrations != 1 || st.ProcessTaskRegistrations != 1 || len(seen) != 1 {
		t.Fatalf("%d agent and %d run task registrations, %d distinct (runtime, task) pairs; want 1, 1, 1",
			st.AgentRegistrations, st.ProcessTaskRegistrations, len(seen))
	}
}

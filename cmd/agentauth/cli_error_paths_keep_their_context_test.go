package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

// failDial makes every connection do and demo open fail with err, for the
// rest of the test: no test reaches a public address.
func failDial(t *testing.T, err func(addr string) error) {
	t.Helper()
	testDial = func(_ context.Context, network, addr string) (net.Conn, error) { return nil, err(addr) }
	t.Cleanup(func() { testDial = nil })
}

// dnsFailure is the error a dial to an unresolvable host returns: a
// *net.OpError with neither Addr nor Source.
func dnsFailure(addr string) error {
	host, _, _ := net.SplitHostPort(addr)
	return &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
}

func TestDoOfflineSaysTheHostCannotBeResolved(t *testing.T) {
	clearCodexEnv(t)
	failDial(t, dnsFailure)
	r := runCmd(t, "", "do", "--api-key", doAPIKey, "https://chatgpt.com/backend-api/wham/usage")
	assertOneLineError(t, r, exitFailure, doAPIKey)
	for _, want := range []string{"sending GET https://chatgpt.com/backend-api/wham/usage failed", "cannot resolve chatgpt.com: no such host", "(using the API key from --api-key)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
}

func TestDoConnectionResetIsNamed(t *testing.T) {
	clearCodexEnv(t)
	failDial(t, func(string) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	})
	r := runCmd(t, "", "do", "--api-key", doAPIKey, "https://api.openai.com/v1/models")
	assertOneLineError(t, r, exitFailure, doAPIKey)
	if !strings.Contains(r.stderr, "connection was reset") {
		t.Errorf("stderr %q", r.stderr)
	}
}

// expiredLogin writes a ChatGPT login whose access token expired an hour
// ago, so the first request must refresh it.
func expiredLogin(t *testing.T, home string) {
	t.Helper()
	srv := newTestServer(t, identitytest.Options{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	writeLogin(t, srv, home, identitytest.Login{AccountID: "acct-exp", UserID: "user-exp"}, nil)
}

func TestDoExpiredLoginOfflineSaysTokenRefresh(t *testing.T) {
	clearCodexEnv(t)
	home := t.TempDir()
	expiredLogin(t, home)
	failDial(t, dnsFailure)
	resource := newTestServer(t, identitytest.Options{})
	r := runCmd(t, "", "do", "--codex-home", home, resource.URL()+"/v1/responses")
	assertOneLineError(t, r, exitFailure)
	for _, want := range []string{"token refresh at " + credentials.DefaultTokenURL + " failed", "cannot resolve auth.openai.com", "$" + credentials.EnvRefreshTokenURL} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
}

func TestDoDeadTokenEndpointOverrideIsNamed(t *testing.T) {
	clearCodexEnv(t)
	home := t.TempDir()
	expiredLogin(t, home)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/oauth/token"
	ln.Close()
	t.Setenv(credentials.EnvRefreshTokenURL, dead)
	resource := newTestServer(t, identitytest.Options{})
	r := runCmd(t, "", "do", "--codex-home", home, resource.URL()+"/v1/responses")
	assertOneLineError(t, r, exitFailure)
	for _, want := range []string{"token refresh at " + dead + " (from $" + credentials.EnvRefreshTokenURL + ") failed", "connection refused", "using the ChatGPT login from " + filepath.Join(home, "auth.json") + " (--codex-home)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
}

func TestDemoAgainstAnUnresolvableServerDoesNotPanic(t *testing.T) {
	failDial(t, dnsFailure)
	r := runCmd(t, "", "demo", "--server", "https://chatgpt.com/backend-api", "--threads", "1", "--requests", "1", "--background", "1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "cannot resolve chatgpt.com") {
		t.Errorf("demo: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestDoMissingCodexHomeIsNoSuchDirectory(t *testing.T) {
	clearCodexEnv(t)
	missing := filepath.Join(t.TempDir(), "nope")
	r := runCmd(t, "", "do", "--codex-home", missing, "https://chatgpt.com/")
	assertOneLineError(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--codex-home \""+missing+"\": no such directory") || strings.Contains(r.stderr, "codex login") {
		t.Errorf("stderr %q", r.stderr)
	}
	t.Setenv(credentials.EnvCodexHome, missing)
	r = runCmd(t, "", "do", "https://chatgpt.com/")
	assertOneLineError(t, r, exitUsage)
	if !strings.Contains(r.stderr, "$CODEX_HOME \""+missing+"\": no such directory") {
		t.Errorf("$CODEX_HOME: stderr %q", r.stderr)
	}
	file := writeFile(t, "{}")
	r = runCmd(t, "", "do", "--codex-home", file, "https://chatgpt.com/")
	assertOneLineError(t, r, exitUsage)
	if !strings.Contains(r.stderr, "is not a directory") {
		t.Errorf("a file: stderr %q", r.stderr)
	}
}

func TestDoEmptyAuthFileGetsARemedy(t *testing.T) {
	clearCodexEnv(t)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "auth.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", "do", "--codex-home", home, "https://chatgpt.com/")
	assertOneLineError(t, r, exitFailure)
	if !strings.Contains(r.stderr, "auth.json is empty: log in again with 'codex login'") {
		t.Errorf("stderr %q", r.stderr)
	}
	if err := os.WriteFile(filepath.Join(home, "auth.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, "", "do", "--codex-home", home, "https://chatgpt.com/")
	assertOneLineError(t, r, exitFailure)
	if !strings.Contains(r.stderr, "invalid auth.json") || !strings.Contains(r.stderr, "fix it, or log in again with 'codex login'") {
		t.Errorf("malformed: stderr %q", r.stderr)
	}
}

func TestDoInvalidConfigFlagListsTheValidValues(t *testing.T) {
	clearCodexEnv(t)
	srv := newTestServer(t, identitytest.Options{})
	home := t.TempDir()
	writeLogin(t, srv, home, identitytest.Login{AccountID: "acct-cfg", UserID: "user-cfg"}, nil)
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte("[features]\nuse_agent_identity = \"yes\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", "do", "--codex-home", home, srv.URL()+"/v1/responses")
	assertOneLineError(t, r, exitFailure)
	for _, want := range []string{"features.use_agent_identity is not a boolean (want true or false, unquoted)", "--use-agent-identity=true or =false"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
}

// An environment credential comes before auth.json, as in Codex; do says
// so when --codex-home names a home it then does not use.
func TestDoSaysWhenTheEnvironmentBeatsCodexHome(t *testing.T) {
	clearCodexEnv(t)
	srv := newTestServer(t, identitytest.Options{APIKeys: []string{doAPIKey}})
	home := t.TempDir()
	writeLogin(t, srv, home, identitytest.Login{AccountID: "acct-env", UserID: "user-env"}, nil)
	t.Setenv(credentials.EnvCodexAPIKey, doAPIKey)
	r := runCmd(t, "", "do", "--codex-home", home, srv.URL()+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.Mode != identitytest.ModeBearer {
		t.Fatalf("do: %+v", r)
	}
	want := "agentauth do: note: using the API key from env " + credentials.EnvCodexAPIKey + "; it comes before --codex-home's auth.json (Codex's order): unset it to use the login there\n"
	if r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	assertNoSecret(t, r, doAPIKey)
	// -v names the credential on every run.
	r = runCmd(t, "", "do", "-v", "--api-key", doAPIKey, srv.URL()+"/v1/responses")
	if r.code != 0 || !strings.Contains(r.stderr, "* using the API key from --api-key\n") {
		t.Errorf("-v: %+v", r)
	}
	assertNoSecret(t, r, doAPIKey)
}

func TestHelpCommandPrintsTheCommandsUsage(t *testing.T) {
	r := runCmd(t, "", "help", "do")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: agentauth do ") || r.stderr != "" {
		t.Errorf("help do: %+v", r)
	}
	assertOneLineError(t, runCmd(t, "", "help", "frobnicate"), exitUsage)
	assertOneLineError(t, runCmd(t, "", "help", "do", "extra"), exitUsage)
}

func TestInterruptedRunExitsWithTheSignalStatus(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	ctx, stop := signalContext(context.Background(), sigs)
	defer stop()
	sigs <- os.Interrupt
	<-ctx.Done()
	if got := interruptedCode(ctx, exitFailure); got != 130 {
		t.Errorf("Ctrl-C: exit %d, want 130", got)
	}
	if got := interruptedCode(ctx, exitOK); got != exitOK {
		t.Errorf("a run that finished despite Ctrl-C: exit %d, want 0", got)
	}
	// A do interrupted before it could send exits 130 through main's path.
	srv := newTestServer(t, identitytest.Options{APIKeys: []string{doAPIKey}})
	var out, errb strings.Builder
	if got := interruptedCode(ctx, run(ctx, []string{"do", "--api-key", doAPIKey, srv.URL() + "/v1/responses"}, strings.NewReader(""), &out, &errb)); got != 130 {
		t.Errorf("do after Ctrl-C: exit %d, stderr %q", got, errb.String())
	}

	term := make(chan os.Signal, 1)
	tctx, tstop := signalContext(context.Background(), term)
	defer tstop()
	term <- syscall.SIGTERM
	<-tctx.Done()
	if got := interruptedCode(tctx, exitFailure); got != 143 {
		t.Errorf("SIGTERM: exit %d, want 143", got)
	}
	plain, cancel := context.WithCancel(context.Background())
	cancel()
	if got := interruptedCode(plain, exitFailure); got != exitFailure {
		t.Errorf("canceled without a signal: exit %d, want 1", got)
	}
}

func TestVersionWithoutVCSStampNamesTheModuleVersion(t *testing.T) {
	for _, bi := range []*debug.BuildInfo{{Main: debug.Module{Version: "(devel)"}}, {}, nil} {
		line := versionLine(func() (*debug.BuildInfo, bool) { return bi, bi != nil })
		if !strings.HasPrefix(line, "agentauth v"+identity.Version+"-devel go") || strings.Contains(line, "(devel)") {
			t.Errorf("versionLine(%v) = %q", bi, line)
		}
	}
}

func TestDemoJSONSaysWhichScenarioRan(t *testing.T) {
	r := runCmd(t, "", "demo", "--json", "--threads", "2", "--requests", "3", "--background", "0")
	var s demoSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.code != 0 {
		t.Fatalf("demo: %+v (%v)", r, err)
	}
	if !strings.Contains(s.Scenario, "2 thread key(s) × 3 request(s)") || strings.Contains(s.Scenario, "background") {
		t.Errorf("scenario %q", s.Scenario)
	}
	if s.Modes.ThreadTask != 6 || s.Modes.ProcessTask != 0 {
		t.Errorf("modes %+v", s.Modes)
	}
}

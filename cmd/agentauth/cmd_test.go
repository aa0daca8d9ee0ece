package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

// The published test vectors of the protocol (docs/protocol.md): seed
// 32×0x07, runtime agent-123, task task-123, 2026-04-23T00:00:00Z.
const (
	specKey    = "MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHgSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="
	specPub    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
	specHeader = "AgentAssertion eyJhZ2VudF9ydW50aW1lX2lkIjoiYWdlbnQtMTIzIiwic2lnbmF0dXJlIjoiK0dsck9LUi9GSHh4aGttT2hnNWhqMTkrNU83aE0yTWd4TnJnVGZSZ0lYOENZbjEzQUpFU3Y1eVhrd3dVQzlqRGQ4Y3ZRUk11MWY4UHliZjYvTEJnRHc9PSIsInRhc2tfaWQiOiJ0YXNrLTEyMyIsInRpbWVzdGFtcCI6IjIwMjYtMDQtMjNUMDA6MDA6MDBaIn0"
)

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// assertOneLineError checks the failure shape: non-zero exit, nothing on
// stdout, exactly one line on stderr, and none of the secrets in it.
func assertOneLineError(t *testing.T, r result, wantCode int, secrets ...string) {
	t.Helper()
	if r.code != wantCode {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, wantCode, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q is not exactly one line", r.stderr)
	}
	for _, s := range secrets {
		for i := 0; i+16 <= len(s); i += 8 {
			if strings.Contains(r.stderr, s[i:i+16]) {
				t.Errorf("stderr %q contains part of a secret", r.stderr)
				break
			}
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "record.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsage(t *testing.T) {
	r := runCmd(t, "", "-h")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("-h: %+v", r)
	}
	for _, c := range []string{"serve", "keygen", "assertion"} {
		if !strings.Contains(r.stdout, "  "+c+" ") {
			t.Errorf("usage lacks %s:\n%s", c, r.stdout)
		}
		sub := runCmd(t, "", c, "-h")
		if sub.code != 0 || !strings.HasPrefix(sub.stdout, "usage: agentauth "+c) || !strings.Contains(sub.stdout, "-") || sub.stderr != "" {
			t.Errorf("%s -h: %+v", c, sub)
		}
	}
	if r := runCmd(t, ""); r.code != exitUsage || !strings.HasPrefix(r.stderr, "usage:") {
		t.Errorf("no arguments: %+v", r)
	}
	assertOneLineError(t, runCmd(t, "", "frobnicate"), exitUsage)
	assertOneLineError(t, runCmd(t, "", "keygen", "--nope"), exitUsage)
	assertOneLineError(t, runCmd(t, "", "keygen", "extra"), exitUsage)
	assertOneLineError(t, runCmd(t, "", "keygen", "--runtime-id", "a\nb"), exitUsage)
	assertOneLineError(t, runCmd(t, "", "serve", "--max-skew", "soon"), exitUsage)
	assertOneLineError(t, runCmd(t, "", "serve", "--max-skew", "-1s"), exitUsage)
}

func TestKeygenPipesIntoAssertion(t *testing.T) {
	kg := runCmd(t, "", "keygen")
	if kg.code != 0 || kg.stderr != "" {
		t.Fatalf("keygen: %+v", kg)
	}
	var rec keygenRecord
	dec := json.NewDecoder(strings.NewReader(kg.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		t.Fatalf("keygen output %q: %v", kg.stdout, err)
	}
	key, err := identity.ParsePrivateKey(rec.AgentPrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if key.SSHPublicKey() != rec.PublicKeySSH || !strings.HasPrefix(rec.AgentRuntimeID, "rt-") || len(rec.AgentRuntimeID) != 19 {
		t.Fatalf("keygen record %+v", rec)
	}

	a := runCmd(t, kg.stdout, "assertion", "--record", "-", "--task-id", "task-123", "--at", "2026-04-23T00:00:00Z")
	if a.code != 0 || a.stderr != "" || !strings.HasSuffix(a.stdout, "\n") || strings.Count(a.stdout, "\n") != 1 {
		t.Fatalf("assertion: %+v", a)
	}
	header := strings.TrimSuffix(a.stdout, "\n")
	parsed, err := identity.ParseAssertion(header)
	if err != nil {
		t.Fatalf("ParseAssertion: %v", err)
	}
	if err := parsed.Verify(key.PublicKey()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if parsed.AgentRuntimeID != rec.AgentRuntimeID || parsed.TaskID != "task-123" || parsed.Timestamp != "2026-04-23T00:00:00Z" {
		t.Fatalf("assertion %v", parsed)
	}

	// keygen honours --runtime-id and never repeats a key.
	kg2 := runCmd(t, "", "keygen", "--runtime-id", "agent-7")
	var rec2 keygenRecord
	if err := json.Unmarshal([]byte(kg2.stdout), &rec2); err != nil || rec2.AgentRuntimeID != "agent-7" || rec2.AgentPrivateKey == rec.AgentPrivateKey {
		t.Fatalf("keygen --runtime-id: %+v %v", rec2, err)
	}
}

func TestAssertionSpecVector(t *testing.T) {
	// An Agent Identity record (extra fields ignored) read from a file.
	path := writeFile(t, `{"agent_runtime_id":"agent-123","agent_private_key":"`+specKey+`","account_id":"acct","chatgpt_user_id":"u","plan_type":"plus","chatgpt_account_is_fedramp":false}`)
	for _, at := range []string{"2026-04-23T00:00:00.9+00:00", "2026-04-23T00:00:00Z", "2026-04-23T02:00:00.999999999+02:00", "2026-04-22T19:00:00-05:00"} {
		r := runCmd(t, "", "assertion", "--record", path, "--task-id", "task-123", "--at", at)
		if r.code != 0 || r.stdout != specHeader+"\n" || r.stderr != "" {
			t.Errorf("--at %s: got %+v, want the test-vector header", at, r)
		}
	}
	// A keygen-shaped record with the matching public key works too.
	r := runCmd(t, `{"agent_runtime_id":"agent-123","agent_private_key":"`+specKey+`","public_key_ssh":"`+specPub+`"}`,
		"assertion", "--record", "-", "--task-id", "task-123", "--at", "2026-04-23T00:00:00.9+00:00")
	if r.stdout != specHeader+"\n" {
		t.Errorf("keygen-shaped record: %+v", r)
	}
}

func TestAssertionDefaultsToNow(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	r := runCmd(t, `{"agent_runtime_id":"agent-123","agent_private_key":"`+specKey+`"}`, "assertion", "--record", "-", "--task-id", "t")
	after := time.Now()
	a, err := identity.ParseAssertion(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	ts, err := a.Time()
	if err != nil || ts.Before(before) || ts.After(after) {
		t.Fatalf("timestamp %s not between %s and %s (%v)", a.Timestamp, before, after, err)
	}
}

func TestAssertionErrors(t *testing.T) {
	good := `{"agent_runtime_id":"agent-123","agent_private_key":"` + specKey + `"}`
	otherKey, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"missing --record", good, []string{"--task-id", "t"}, exitUsage},
		{"missing --task-id", good, []string{"--record", "-"}, exitUsage},
		{"bad --at", good, []string{"--record", "-", "--task-id", "t", "--at", "yesterday"}, exitUsage},
		{"--at without zone", good, []string{"--record", "-", "--task-id", "t", "--at", "2026-04-23T00:00:00"}, exitUsage},
		{"--at outside the four-digit years", good, []string{"--record", "-", "--task-id", "t", "--at", "0000-01-01T00:00:00+01:00"}, exitUsage},
		{"control char in task", good, []string{"--record", "-", "--task-id", "a\x01b"}, exitUsage},
		{"record not JSON", "agent_private_key=" + specKey, []string{"--record", "-", "--task-id", "t"}, exitUsage},
		{"truncated JSON", good[:60], []string{"--record", "-", "--task-id", "t"}, exitUsage},
		{"key not a string", `{"agent_runtime_id":"a","agent_private_key":["` + specKey + `"]}`, []string{"--record", "-", "--task-id", "t"}, exitUsage},
		{"no runtime id", `{"agent_private_key":"` + specKey + `"}`, []string{"--record", "-", "--task-id", "t"}, exitUsage},
		{"no key", `{"agent_runtime_id":"a"}`, []string{"--record", "-", "--task-id", "t"}, exitUsage},
		{"bad key", `{"agent_runtime_id":"a","agent_private_key":"` + specKey[:40] + `"}`, []string{"--record", "-", "--task-id", "t"}, exitUsage},
		{"mismatched public key", `{"agent_runtime_id":"a","agent_private_key":"` + specKey + `","public_key_ssh":"` + otherKey.SSHPublicKey() + `"}`, []string{"--record", "-", "--task-id", "t"}, exitUsage},
		{"missing file", "", []string{"--record", filepath.Join(t.TempDir(), "nope.json"), "--task-id", "t"}, exitUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.stdin, append([]string{"assertion"}, tc.args...)...)
			assertOneLineError(t, r, tc.code, specKey, otherKey.MarshalPrivateKey())
			if !strings.HasPrefix(r.stderr, "agentauth assertion: ") {
				t.Errorf("stderr %q does not name the command", r.stderr)
			}
		})
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--api-key", "sk-serve-secret", "--encrypt-task-ids", "--max-skew", "1m"}, nil, pw, &stderr)
		pw.Close()
		done <- code
	}()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL line: %v (stderr %s)", err, stderr.String())
	}
	url := strings.TrimSuffix(line, "\n")
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("first line %q is not the base URL", line)
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	status := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/responses", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request to serve: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(""); got != http.StatusUnauthorized {
		t.Errorf("no auth: %d, want 401", got)
	}
	if got := status("Bearer sk-serve-secret"); got != http.StatusOK {
		t.Errorf("configured API key: %d, want 200", got)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop when its context was canceled")
	}
	tr.CloseIdleConnections()
	if _, err := c.Get(url + "/v1/responses"); err == nil {
		t.Error("server still answers after serve returned")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "listening") || !strings.Contains(logs, "stopped") || strings.Contains(logs, "sk-serve-secret") {
		t.Errorf("logs %q: want listening/stopped lines and no API key", logs)
	}
}

func TestServeListenError(t *testing.T) {
	r := runCmd(t, "", "serve", "--addr", "127.0.0.1:notaport", "--access-token", "tok-secret-1234567890")
	assertOneLineError(t, r, exitFailure, "tok-secret-1234567890")
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		r := runCmd(t, "", args...)
		if r.code != 0 || r.stderr != "" || !regexp.MustCompile(`^agentauth \S+( \([0-9a-f]+(, modified)?\))? go\S+ \w+/\w+\n$`).MatchString(r.stdout) {
			t.Errorf("%v: %+v", args, r)
		}
	}
	assertOneLineError(t, runCmd(t, "", "version", "extra"), exitUsage)
	line := versionLine(func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, true
	})
	if !strings.HasPrefix(line, "agentauth v1.2.3 (0123456789ab, modified) go") {
		t.Errorf("versionLine %q", line)
	}
	if line := versionLine(func() (*debug.BuildInfo, bool) { return nil, false }); !strings.HasPrefix(line, "agentauth v"+identity.Version+"-devel go") {
		t.Errorf("no build info: %q", line)
	}
}

func TestHelpSpellsLongFlagsWithTwoDashes(t *testing.T) {
	for _, c := range []string{"demo", "do", "serve", "keygen", "assertion", "version"} {
		r := runCmd(t, "", c, "-h")
		if r.code != 0 || regexp.MustCompile(`(?m)^  -[a-z]{2}`).MatchString(r.stdout) {
			t.Errorf("%s -h lists a long flag with one dash:\n%s", c, r.stdout)
		}
	}
	r := runCmd(t, "", "do", "-h")
	for _, want := range []string{"\n  --timeout duration\n", "(default 2m0s)", "\n  -d string\n", "\n  --api-key-stdin\n", "Credentials go only to first-party origins"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("do -h lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestFlagErrorsSpellLongFlagsWithTwoDashes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--threads", "many"}, `agentauth demo: invalid value "many" for flag --threads: parse error`},
		{[]string{"demo", "-threads", "many"}, `agentauth demo: invalid value "many" for flag --threads: parse error`},
		{[]string{"do", "--nope", "http://127.0.0.1:1/"}, "agentauth do: flag provided but not defined: --nope"},
		{[]string{"do", "--timeout", "soon", "http://127.0.0.1:1/"}, `agentauth do: invalid value "soon" for flag --timeout`},
		{[]string{"do", "-X"}, "agentauth do: flag needs an argument: -X"},
		{[]string{"serve", "--max-skew", "soon"}, `agentauth serve: invalid value "soon" for flag --max-skew`},
	} {
		r := runCmd(t, "", tc.args...)
		assertOneLineError(t, r, exitUsage)
		if !strings.HasPrefix(r.stderr, tc.want) {
			t.Errorf("%v: stderr %q, want prefix %q", tc.args, r.stderr, tc.want)
		}
	}
}

// startServe runs serve in process and returns its first stdout line.
func startServe(t *testing.T, stdin string, args ...string) (url string, stderr *syncBuffer, stop func() int) {
	t.Helper()
	lines, stderr, stop := startServeLines(t, 1, stdin, args...)
	return lines[0], stderr, stop
}

// startServeLines runs serve in process and returns its first n stdout
// lines.
func startServeLines(t *testing.T, n int, stdin string, args ...string) (lines []string, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr = new(syncBuffer)
	done := make(chan int, 1)
	go func() {
		code := run(ctx, append([]string{"serve"}, args...), strings.NewReader(stdin), pw, stderr)
		pw.Close()
		done <- code
	}()
	br := bufio.NewReader(pr)
	for range n {
		line, err := br.ReadString('\n')
		if err != nil {
			cancel()
			<-done
			t.Fatalf("reading line %d of stdout: %v (stderr %s)", len(lines)+1, err, stderr.String())
		}
		lines = append(lines, strings.TrimSuffix(line, "\n"))
	}
	go io.Copy(io.Discard, br)
	var once sync.Once
	exit := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case exit = <-done:
			case <-time.After(5 * time.Second):
				t.Error("serve did not stop")
			}
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	return lines, stderr, stop
}

func TestServeTrustsKeygenRecords(t *testing.T) {
	t.Setenv(identity.EnvAuthAPIBase, "")
	kg := runCmd(t, "", "keygen")
	kg2 := runCmd(t, "", "keygen", "--runtime-id", "rt-public-only")
	var k2 keygenRecord
	if err := json.Unmarshal([]byte(kg2.stdout), &k2); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, kg.stdout)
	// The second record without its private key: a public key is enough.
	pubOnly := writeFile(t, `{"agent_runtime_id":"rt-public-only","public_key_ssh":"`+k2.PublicKeySSH+`"}`)
	url, logs, stop := startServe(t, "", "--addr", "127.0.0.1:0", "--trust-record", path, "--trust-record", pubOnly)

	r := runCmd(t, "", "do", "--record", path, "--thread", "thread-1", "-d", "{}", url+"/v1/responses")
	e := decodeEcho(t, r.stdout)
	var k keygenRecord
	if err := json.Unmarshal([]byte(kg.stdout), &k); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || e.Mode != "assertion" || e.AgentRuntimeID != k.AgentRuntimeID || e.ExternalTaskRef != "thread-1" {
		t.Fatalf("do --record against serve --trust-record: %+v", r)
	}
	r = runCmd(t, kg2.stdout, "do", "--record", "-", url+"/v1/responses")
	if e := decodeEcho(t, r.stdout); r.code != 0 || e.AgentRuntimeID != "rt-public-only" {
		t.Fatalf("public-key-only record: %+v", r)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if l := logs.String(); !strings.Contains(l, "trusted_runtimes=2") || strings.Contains(l, k.AgentPrivateKey) {
		t.Errorf("logs %q", l)
	}

	for _, bad := range []string{writeFile(t, "{}"), writeFile(t, `{"agent_runtime_id":"x","public_key_ssh":"ssh-ed25519 !!"}`), filepath.Join(t.TempDir(), "missing")} {
		r := runCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--trust-record", bad)
		assertOneLineError(t, r, exitUsage)
	}
}

func TestServeWildcardWarnsAndPrintsALoopbackURL(t *testing.T) {
	url, logs, stop := startServe(t, "", "--addr", "0.0.0.0:0")
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(url) || strings.HasSuffix(url, ":0") {
		t.Errorf("URL line %q, want http://127.0.0.1:PORT", url)
	}
	resp, err := http.Get(url + "/v1/responses")
	if err != nil {
		t.Fatalf("the printed URL does not work: %v", err)
	}
	resp.Body.Close()
	stop()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "every interface") || !strings.Contains(l, "agent registration is open") {
		t.Errorf("no warning about an open server on every interface: %s", l)
	}
	// Loopback: no warning.
	_, logs, stop = startServe(t, "", "--addr", "127.0.0.1:0", "--access-token", "tok-1234567890")
	stop()
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warning on loopback: %s", logs.String())
	}
}

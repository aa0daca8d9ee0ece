package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBounded is runCmd with a deadline, for commands (serve) that would
// run until interrupted if a case unexpectedly passed validation.
func runBounded(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// The error paths the other tests do not reach: each exits with its code
// and one line on stderr that says what is wrong.
func TestEveryErrorPathIsOneLine(t *testing.T) {
	clearCodexEnv(t)
	kg := runCmd(t, "", "keygen", "--runtime-id", "rt-paths")
	if kg.code != 0 {
		t.Fatalf("keygen: %+v", kg)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(kg.stdout), &rec); err != nil {
		t.Fatal(err)
	}
	rec["account_id"] = 5
	badAccount, _ := json.Marshal(rec)
	dir := t.TempDir()
	notADir := writeFile(t, "x")
	big := strings.Repeat("k", doMaxSecret+1)
	manyLines := strings.Repeat("tok-line-0123456789\n", serveMaxSecrets+1)

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"do stdin secret too large", big, []string{"do", "--api-key-stdin", "https://chatgpt.com/"}, exitUsage, "larger than"},
		{"do empty --record", "", []string{"do", "--record", "", "https://chatgpt.com/"}, exitUsage, "--record needs a file name"},
		{"do record account_id not a string", "", []string{"do", "--record", writeFile(t, string(badAccount)), "https://chatgpt.com/"}, exitUsage, "must be strings"},
		{"do record is a directory", "", []string{"do", "--record", dir, "https://chatgpt.com/"}, exitUsage, "cannot read record"},
		{"assertion record too large", strings.Repeat(" ", maxRecordBytes+1), []string{"assertion", "--record", "-", "--task-id", "t"}, exitUsage, "larger than"},
		{"assertion record bad runtime id", "", []string{"assertion", "--record", writeFile(t, `{"agent_runtime_id":"a\u0001","agent_private_key":"x"}`), "--task-id", "t"}, exitUsage, "agent_runtime_id"},
		{"keygen runtime id not UTF-8", "", []string{"keygen", "--runtime-id", "rt-\xff"}, exitUsage, "not valid UTF-8"},
		{"serve addr without port", "", []string{"serve", "--addr", "127.0.0.1"}, exitUsage, "is not HOST:PORT"},
		{"serve trust record not JSON", "", []string{"serve", "--addr", "127.0.0.1:0", "--trust-record", writeFile(t, "[1]")}, exitUsage, "not a JSON object"},
		{"serve trust record without a key", "", []string{"serve", "--addr", "127.0.0.1:0", "--trust-record", writeFile(t, `{"agent_runtime_id":"rt-1"}`)}, exitUsage, "neither public_key_ssh nor agent_private_key"},
		{"serve trust record bad runtime id", "", []string{"serve", "--addr", "127.0.0.1:0", "--trust-record", writeFile(t, `{"agent_runtime_id":"rt-\u0001","public_key_ssh":"ssh-ed25519 AAAA"}`)}, exitUsage, "agent_runtime_id"},
		{"serve stdin too large", big, []string{"serve", "--addr", "127.0.0.1:0", "--access-token-stdin"}, exitUsage, "larger than"},
		{"serve stdin too many lines", manyLines[:min(len(manyLines), doMaxSecret)], []string{"serve", "--addr", "127.0.0.1:0", "--access-token-stdin"}, exitUsage, "more than"},
		{"serve issue-login under a file", "", []string{"serve", "--addr", "127.0.0.1:0", "--access-token", "tok-paths-0123456789", "--issue-login", filepath.Join(notADir, "home")}, exitFailure, "--issue-login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBounded(t, tc.stdin, tc.args...)
			assertOneLineError(t, r, tc.code, "tok-paths-0123456789")
			if !strings.Contains(r.stderr, tc.want) || !strings.HasPrefix(r.stderr, "agentauth "+tc.args[0]+": ") {
				t.Errorf("stderr %q, want it to name the command and contain %q", r.stderr, tc.want)
			}
		})
	}
}

// A response cut short is described, not dumped as a Go error chain.
func TestDoResponseCutShortIsDescribed(t *testing.T) {
	clearCodexEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("partial"))
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // closes the connection mid-body
	})}
	go srv.Serve(ln)
	defer srv.Close()
	r := runCmd(t, "", "do", "--api-key", doAPIKey, "http://"+ln.Addr().String()+"/v1/responses")
	if r.code != exitFailure || r.stdout != "partial" || !strings.Contains(r.stderr, "reading the response failed: the server closed the connection before the answer was complete") {
		t.Errorf("cut-short response: %+v", r)
	}
	assertNoSecret(t, r, doAPIKey)
}

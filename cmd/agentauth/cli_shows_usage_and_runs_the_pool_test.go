package main

import (
	"strings"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
)

// do -v prints, after the response headers, what they said about the
// login's usage limits.
func TestDoVerbosePrintsUsage(t *testing.T) {
	srv := newTestServer(t, identitytest.Options{AccessTokens: []string{doToken}})
	srv.SetUsage("acct-usage", identitytest.Usage{PrimaryUsedPercent: 42.5, PrimaryWindowMinutes: 300})
	r := runCmd(t, "", "do", "--access-token", doToken, "--account-id", "acct-usage", "-v", srv.URL()+"/v1/responses")
	if r.code != 0 {
		t.Fatalf("do: %+v", r)
	}
	if !strings.Contains(r.stderr, "* usage: codex primary window: 42.5% used of 300 min") {
		t.Errorf("stderr has no usage line:\n%s", r.stderr)
	}
	assertNoSecret(t, r, doToken)
	// Without -v nothing of it is printed.
	r = runCmd(t, "", "do", "--access-token", doToken, "--account-id", "acct-usage", srv.URL()+"/v1/responses")
	if strings.Contains(r.stderr, "* usage:") {
		t.Errorf("usage printed without -v:\n%s", r.stderr)
	}
}

// demo --logins N runs the pool scenario through the command line.
func TestDemoLoginsRunsThePool(t *testing.T) {
	r := runCmd(t, "", "demo", "--logins", "3", "--threads", "12", "--requests", "3")
	if r.code != exitOK || !strings.Contains(r.stdout, ", 0 failed requests") || !strings.Contains(r.stdout, "login-2") {
		t.Fatalf("demo --logins 3: %+v", r)
	}
	if r := runCmd(t, "", "demo", "--logins", "1"); r.code != exitUsage {
		t.Errorf("demo --logins 1: exit %d, want %d", r.code, exitUsage)
	}
}

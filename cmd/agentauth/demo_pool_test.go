package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The pool demo runs three logins, limits the second half way, and reports
// every thread of it moved once with no request failing.
func TestPoolDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runPoolDemo(context.Background(), 3, 24, 4, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	if !strings.Contains(s, ", 0 failed requests") {
		t.Errorf("output:\n%s", s)
	}
	found := false
	for _, l := range strings.Split(s, "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[0] == "login-2" {
			found = true
			if f[3] != "0" || f[4] == "-" {
				t.Errorf("limited login: %q (want 0 threads after, a limit)", l)
			}
		}
	}
	if !found {
		t.Errorf("no login-2 row:\n%s", s)
	}
	if code := runPoolDemo(context.Background(), 1, 1, 2, &out, &errOut); code != exitUsage {
		t.Errorf("--logins 1: exit %d", code)
	}
}

package main

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// A callback port held by another program fails the login with one line.
func TestLoginPortInUseIsOneLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.NotFoundHandler()}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	defer func() { hs.Close(); <-done }()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	r := runCmd(t, "", "login", "--no-browser", "--port", port, "--codex-home", t.TempDir(), "--experimental_issuer", "http://127.0.0.1:1")
	assertOneLineError(t, r, exitFailure)
	if !strings.Contains(r.stderr, "in use") {
		t.Errorf("stderr %q does not say the port is in use", r.stderr)
	}
}

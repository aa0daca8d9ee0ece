package login

import (
	"strings"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
)

// A token endpoint that fails the code exchange ends the device login
// with one line naming the status, and writes nothing.
func TestDeviceCodeExchangeFailureIsOneLine(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	srv.SetDeviceCodeInterval(0)
	srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: 500, Body: []byte(`{"error":{"code":"server_error","message":"try later"}}`), Times: 1})
	home := t.TempDir()
	out := newOut()
	done := make(chan error, 1)
	go func() {
		done <- DeviceCode(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Out: out, Getenv: env()})
	}()
	if err := srv.ApproveDeviceCode(out.await(t, userCodeLine), identitytest.Login{AccountID: "acct-x"}); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "server_error") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
	if _, err := readFileIfAny(home); err == nil {
		t.Error("auth.json written after a failed exchange")
	}
}

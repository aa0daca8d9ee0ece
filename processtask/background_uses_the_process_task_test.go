package processtask_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/processtask"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// A control-plane call made from inside a thread's handler: Background
// makes it sessionless, so it signs with the process task, not the
// thread's; WithThread below it tags it again.
func TestBackgroundUsesTheProcessTaskInsideAThread(t *testing.T) {
	env := newAgentEnv(t, "rt-background")
	c := &http.Client{Transport: env.rt}
	inThread := transport.WithThread(context.Background(), "thread-7")
	url := env.srv.URL() + "/v1/models"

	if e := echo(t, c, newRequest(t, inThread, url)); e.Mode != identitytest.ModeAssertion || e.ExternalTaskRef != "thread-7" {
		t.Fatalf("thread request echo %+v", e)
	}
	bg := processtask.Background(inThread)
	if e := echo(t, c, newRequest(t, bg, url)); e.Mode != identitytest.ModeAssertion || e.ExternalTaskRef != "" {
		t.Errorf("Background(thread ctx) echo %+v, want the process task (no external_task_ref)", e)
	}
	if id, ok := transport.ThreadFrom(bg); ok {
		t.Errorf("ThreadFrom(Background(ctx)) = %q, true", id)
	}
	if e := echo(t, c, newRequest(t, transport.WithThread(bg, "thread-8"), url)); e.ExternalTaskRef != "thread-8" {
		t.Errorf("WithThread(Background(ctx)) echo %+v, want thread-8", e)
	}
	st := env.rt.Stats()
	if st.Requests[resolver.ModeProcessTask] != 1 || st.Requests[resolver.ModeThreadTask] != 2 || st.ProcessRegistrations != 1 {
		t.Errorf("stats %+v", st)
	}
}

// Background keeps the parent's cancellation, deadline and values.
func TestBackgroundKeepsTheParentContext(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), key{}, "v"), time.Hour)
	bg := processtask.Background(transport.WithThread(parent, "t"))
	if bg.Value(key{}) != "v" {
		t.Error("value lost")
	}
	if d1, _ := parent.Deadline(); func() bool { d2, ok := bg.Deadline(); return !ok || !d2.Equal(d1) }() {
		t.Error("deadline lost")
	}
	cancel()
	select {
	case <-bg.Done():
	default:
		t.Error("cancellation of the parent does not reach the Background context")
	}
}

package identitytest

import (
	"context"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

// TestInteropWithIdentityClient runs the library's own registration client
// against the server: provisioning, process and thread tasks, plain and
// encrypted ids, and an assertion on the result. The server and the client
// are written from the same spec by different hands, so agreement here is
// evidence that both read it the same way.
func TestInteropWithIdentityClient(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		s, clock := newTestServer(t, Options{AccessTokenAccounts: map[string]string{"tok-login": "acct-1"}, EncryptTaskIDs: encrypt})
		hc := newClient(t)
		cl := &identity.Client{HTTPClient: hc, AuthAPIBase: s.URL(), Now: clock.Now}
		k := testKey(t, 9)
		rid, err := cl.RegisterAgent(context.Background(), identity.AgentRegistration{
			AccessToken: "tok-login",
			Routing:     headers.Routing{AccountID: "acct-1", FedRAMP: true},
			PublicKey:   k.SSHPublicKey(),
		})
		if err != nil {
			t.Fatalf("encrypt=%v: RegisterAgent: %v", encrypt, err)
		}
		if rts := s.Runtimes(); len(rts) != 1 || rts[0].RuntimeID != rid || rts[0].AccountID != "acct-1" || !rts[0].FedRAMP {
			t.Fatalf("Runtimes() = %+v", rts)
		}
		process, err := cl.RegisterTask(context.Background(), k, rid, "")
		if err != nil {
			t.Fatalf("encrypt=%v: RegisterTask(process): %v", encrypt, err)
		}
		thread, err := cl.RegisterTask(context.Background(), k, rid, "thread-1")
		if err != nil {
			t.Fatalf("encrypt=%v: RegisterTask(thread): %v", encrypt, err)
		}
		tasks := s.Tasks()
		if len(tasks) != 2 || tasks[0].TaskID != process || tasks[0].ExternalTaskRef != "" ||
			tasks[1].TaskID != thread || tasks[1].ExternalTaskRef != "thread-1" {
			t.Fatalf("Tasks() = %+v, client got %q %q", tasks, process, thread)
		}
		r := do(t, hc, http.MethodPost, s.URL()+"/v1/responses", map[string]string{"Authorization": sign(t, k, rid, thread, clock.Now())}, nil)
		if e := decodeEcho(t, r); e.TaskID != thread || e.ExternalTaskRef != "thread-1" {
			t.Fatalf("echo %+v", e)
		}
		st := s.Stats()
		if st.AgentRegistrations != 1 || st.ProcessTaskRegistrations != 1 || st.ThreadTaskRegistrations != 1 || st.Rejections != 0 {
			t.Fatalf("stats %+v", st)
		}

		// The client sees injected faults as errors.
		s.InjectFault(RouteTaskRegister, Fault{MissingTaskID: true, Times: 1})
		if _, err := cl.RegisterTask(context.Background(), k, rid, ""); err == nil {
			t.Error("RegisterTask accepted a response without a task id")
		}
		s.InjectFault(RouteTaskRegister, Fault{BadEncryptedTaskID: true, Times: 1})
		if _, err := cl.RegisterTask(context.Background(), k, rid, ""); err == nil {
			t.Error("RegisterTask accepted an encrypted id for another key")
		}
	}
}

// A task the server no longer knows (invalid_task_id, task_not_found,
// task_expired in a 400 or 404 body, not only a 401) is re-registered once
// and the request replayed; the replacement run task is persisted in
// auth.json and a replacement thread task cached. Any other 400 or 404 is
// returned as it came, body intact.
package transport_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

func TestTaskGoneIsReRegisteredOnce(t *testing.T) {
	for _, tc := range []struct {
		name, thread string
		status       int
		body         string
	}{
		{"run task not found", "", http.StatusNotFound, `{"error":{"code":"task_not_found","message":"no such task"}}`},
		{"run task expired", "", http.StatusUnauthorized, `{"error":"task_expired"}`},
		{"thread task invalid", "gone-thread", http.StatusBadRequest, `{"error":{"code":"invalid_task_id"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := unique("gone-token")
			srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
			account := uniqueAccount("gone")
			path := writeLoginFile(t, token, account)
			rt := newEnv(t, optIn(srv, newHTTPBase(t), token, account, credentials.NewFileStore(path))).rt
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			url := srv.URL() + "/v1/responses"
			first := mustEcho(t, ctx, rt, url, tc.thread)
			srv.ResetStats()
			srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: tc.status, Body: []byte(tc.body), Times: 1})
			again := mustEcho(t, ctx, rt, url, tc.thread)
			st := srv.Stats()
			if again.TaskID == first.TaskID || st.TaskRegistrations != 1 || st.FaultsServed != 1 {
				t.Fatalf("after %d %s: task %q (was %q), %d registrations, %d faults; want one re-registration",
					tc.status, tc.body, again.TaskID, first.TaskID, st.TaskRegistrations, st.FaultsServed)
			}
			// The replacement is kept: the next request registers nothing.
			if next := mustEcho(t, ctx, rt, url, tc.thread); next.TaskID != again.TaskID || srv.Stats().TaskRegistrations != 1 {
				t.Fatalf("replacement not kept: %q, %d registrations", next.TaskID, srv.Stats().TaskRegistrations)
			}
			if tc.thread == "" {
				if _, stored := fileRunTask(t, path); stored != again.TaskID {
					t.Fatalf("auth.json run task %q, want the replacement %q", stored, again.TaskID)
				}
			}
		})
	}
}

func TestOtherNotFoundIsReturnedAsIs(t *testing.T) {
	token := unique("nf-token")
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	account := uniqueAccount("nf")
	rt := newEnv(t, optIn(srv, newHTTPBase(t), token, account, credentials.NewMemoryStore())).rt
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"
	mustEcho(t, ctx, rt, url, "")
	srv.ResetStats()
	body := `{"error":{"code":"model_not_found"}}` + strings.Repeat(" ", 10<<10)
	srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: http.StatusNotFound, Body: []byte(body), Times: 1})
	req := newRequest(t, ctx, url)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || string(got) != body {
		t.Fatalf("status %d, body of %d bytes (want %d intact)", resp.StatusCode, len(got), len(body))
	}
	if n := srv.Stats().TaskRegistrations; n != 0 {
		t.Fatalf("%d task registrations for a 404 that is not about the task", n)
	}
}

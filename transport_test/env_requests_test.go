package transport_test

// What a test does with an env: send requests, check how the server saw
// them, and scan everything for secrets.

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/agentauth/agentauth/identitytest"
)

// do posts one request on thread and keeps its error for the secret scan.
// Unlike request, it is for the test goroutine only.
func (e *env) do(thread string) result {
	ctx, cancel := context.WithTimeout(context.Background(), shortWait)
	defer cancel()
	r := post(ctx, e.rt, e.url, thread)
	if r.err != nil {
		e.errs = append(e.errs, r.err)
	}
	return r
}

// request sends a request for path with ctx through the transport; any
// goroutine may call it. A *bytes.Reader body is replayable
// (http.NewRequest sets GetBody).
func (e *env) request(ctx context.Context, method, path string, body io.Reader) result {
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, body)
	if err != nil {
		return result{err: err}
	}
	return send(e.rt, req)
}

// get sends GET /v1/responses on thread key (none when key is "").
func (e *env) get(key string) result {
	return e.request(threadCtx(context.Background(), key), http.MethodGet, "/v1/responses", nil)
}

// mustAssertion fails unless r is a 200 that the server verified as an
// AgentAssertion on a task of thread ("" = the process task) and, when
// known, of the env's runtime.
func (e *env) mustAssertion(r result, thread string) {
	e.t.Helper()
	if r.err != nil {
		e.t.Fatalf("request on %q: %v", thread, r.err)
	}
	if r.status != http.StatusOK || r.echo.Mode != identitytest.ModeAssertion || r.echo.ExternalTaskRef != thread ||
		(e.runtime != "" && r.echo.AgentRuntimeID != e.runtime) || r.echo.AccountID != e.account {
		e.t.Fatalf("request on %q: status %d echo %+v", thread, r.status, r.echo)
	}
}

// mustBearer fails unless r is a 200 that the server verified as Bearer.
func (e *env) mustBearer(r result) {
	e.t.Helper()
	if r.err != nil {
		e.t.Fatalf("request: %v", r.err)
	}
	if r.status != http.StatusOK || r.echo.Mode != identitytest.ModeBearer || r.echo.AccountID != e.account {
		e.t.Fatalf("request: status %d echo %+v, want Bearer", r.status, r.echo)
	}
}

// tasks returns the tasks the server registered for ref on this env's
// runtime, oldest first.
func (e *env) tasks(ref string) []identitytest.Task {
	var out []identitytest.Task
	for _, task := range e.srv.Tasks() {
		if task.RuntimeID == e.runtime && task.ExternalTaskRef == ref {
			out = append(out, task)
		}
	}
	return out
}

// allSecrets returns the env's keys and tokens plus every credential that
// went over the wire or that the server recorded.
func (e *env) allSecrets() []string {
	out := append([]string(nil), e.secrets...)
	out = append(out, e.wire.Secrets()...)
	for _, seen := range e.srv.Requests() {
		if v := seen.Header.Get("Authorization"); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// checkNoSecrets scans every error the env's requests returned and both
// log buffers.
func (e *env) checkNoSecrets() {
	e.t.Helper()
	secrets := e.allSecrets()
	for i, err := range e.errs {
		for _, s := range errTexts(err) {
			checkNoSecret(e.t, fmt.Sprintf("error %d", i), s, secrets)
		}
	}
	checkNoSecret(e.t, "text log", e.text.String(), secrets)
	checkNoSecret(e.t, "JSON log", e.js.String(), secrets)
}

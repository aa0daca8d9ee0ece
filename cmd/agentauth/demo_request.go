// demo's request: one POST, and the check of the reference server's echo.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/agentauth/agentauth/identitytest"
)

// demoRequestBody is the small JSON body of every resource request.
var demoRequestBody = []byte(`{"model":"agentauth-demo","input":"ping"}`)

// demoResult is the outcome of one demo request.
type demoResult struct {
	ok       bool   // 2xx
	err      error  // no response (nil when canceled)
	canceled bool   // no response because the run was interrupted
	status   int    // the response's status
	body     string // the start of a non-2xx body, for the error summary
	echoed   bool   // the answer was the reference server's echo, and was checked
	mismatch bool   // the reference server echoed another mode or thread than sent
}

// demoRequest sends one POST and reads the answer. When the answer is the
// reference server's echo (always for the embedded server; for --server
// only when the response carries identitytest's echo header) it also checks
// that the request was signed with an AgentAssertion on the expected thread
// (or on the process task). Another server's answer is judged by its status
// alone: the demo promises nothing about its body.
func demoRequest(ctx context.Context, client *http.Client, target, thread string, embedded bool) demoResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(demoRequestBody))
	if err != nil {
		return demoResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return demoResult{canceled: true}
		}
		return demoResult{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, demoMaxEcho))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return demoResult{status: resp.StatusCode, body: string(body)}
	}
	if !embedded && resp.Header.Get(identitytest.EchoHeader) == "" {
		return demoResult{ok: true, status: resp.StatusCode}
	}
	var echo identitytest.Echo
	if json.Unmarshal(body, &echo) != nil || echo.Mode != identitytest.ModeAssertion ||
		echo.ExternalTaskRef != thread || echo.AccountID != demoAccountID {
		return demoResult{ok: true, status: resp.StatusCode, echoed: true, mismatch: true}
	}
	return demoResult{ok: true, status: resp.StatusCode, echoed: true}
}

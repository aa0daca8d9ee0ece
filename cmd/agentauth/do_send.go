// do's request: it sends the planned request through the transport and
// copies the answer to stdout.

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// sendDo sends req through client (whose transport is auth), copies the
// response body to stdout and turns a failure into do's one stderr line,
// scrubbed of secrets; using names the credential for those lines.
func sendDo(ctx context.Context, client *http.Client, auth *transport.Transport, req *doRequest, using string, secrets []string, stdout, stderr io.Writer) int {
	rctx := ctx
	if req.hasThr {
		rctx = transport.WithThread(ctx, req.thread)
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hreq, err := http.NewRequestWithContext(rctx, req.method, req.target.String(), body)
	if err != nil {
		return failure(stderr, "agentauth do", errors.New("cannot build the request"))
	}
	hreq.Header = req.header
	if req.host != "" {
		hreq.Host = req.host
	}
	resp, err := client.Do(hreq)
	if err != nil {
		msg := describeDoError(err, req.authAPI)
		if ctx.Err() == context.DeadlineExceeded {
			msg = fmt.Sprintf("gave up after --timeout %s: %s", req.timeout, msg)
		}
		msg += " (" + using + ")"
		return failure(stderr, "agentauth do", errors.New(scrub(msg, secrets)))
	}
	defer resp.Body.Close()
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return failure(stderr, "agentauth do", errors.New(scrub("reading the response failed: "+rootCause(err), secrets)))
	}
	if resp.StatusCode >= 400 {
		msg := "server answered " + resp.Status
		if n := auth.Stats().Requests[resolver.ModePassThrough]; n > 0 {
			// A redirect left the first-party origins: that hop went out
			// without a credential, which is often why it was refused.
			msg += fmt.Sprintf(" (%d hop(s) went to an origin that is not first-party and carried no credential; see --allow-origin)", n)
		}
		msg += " (" + using + ")"
		return failure(stderr, "agentauth do", errors.New(msg))
	}
	return exitOK
}

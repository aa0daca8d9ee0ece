package identity

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agentauth/agentauth/internal/useragent"
)

// exchange is one bounded HTTP request to an identity endpoint.
type exchange struct {
	op      string
	method  string
	url     string
	body    []byte // nil for no body
	header  http.Header
	timeout time.Duration
	secrets []string // removed from quoted error bodies
}

// exchange performs x once and returns the body of a 2xx response, read up
// to MaxResponseBytes. Failures are classified here so that
// RegistrationError.Temporary can tell the call's own timeout from the
// caller giving up.
func (c *Client) exchange(ctx context.Context, x exchange) ([]byte, *RegistrationError) {
	fail := func(err error) ([]byte, *RegistrationError) {
		return nil, &RegistrationError{Op: x.op, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(&callerDoneError{err})
	}
	// A context that ends within the timeout already bounds the call (a
	// task registration's context carries the cache's own bound): a second
	// timer and context would change nothing, since classifyTransportError
	// looks at the caller's context first either way.
	callCtx := ctx
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > x.timeout {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, x.timeout)
		defer cancel()
	}

	var body io.Reader
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	req, err := http.NewRequestWithContext(callCtx, x.method, x.url, body)
	if err != nil {
		return fail(fmt.Errorf("%w: building request: %w", errInvalidRequest, err))
	}
	for k, vs := range x.header {
		req.Header[k] = vs
	}
	// Registrations carry exactly what current Codex sends (JSON, the
	// credential, FedRAMP routing, a User-Agent); only the JWKS fetch,
	// which has no body, asks for JSON explicitly.
	if x.body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)
	if c.Originator != "" {
		req.Header.Set(useragent.HeaderOriginator, c.Originator)
	}

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fail(classifyTransportError(ctx, callCtx, x.timeout, err))
	}
	defer resp.Body.Close()

	limit := orDefault(c.MaxResponseBytes, DefaultMaxResponseBytes)
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fail(classifyTransportError(ctx, callCtx, x.timeout, fmt.Errorf("reading response: %w", err)))
	}
	tooLarge := int64(len(data)) > limit
	if tooLarge {
		data = data[:limit]
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &RegistrationError{
			Op:         x.op,
			StatusCode: resp.StatusCode,
			Body:       errorBody(data, x.secrets...),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
		}
	}
	if tooLarge {
		return fail(fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, limit))
	}
	return data, nil
}

// classifyTransportError distinguishes the caller's context ending (never
// temporary) from the call's own timeout (temporary) and keeps both
// matchable with errors.Is.
func classifyTransportError(caller, call context.Context, timeout time.Duration, err error) error {
	if cerr := caller.Err(); cerr != nil {
		return &callerDoneError{ensureIs(err, cerr)}
	}
	if call.Err() == context.DeadlineExceeded {
		return fmt.Errorf("no response within %s: %w", timeout, ensureIs(err, context.DeadlineExceeded))
	}
	return err
}

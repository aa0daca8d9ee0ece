package transport_test

// Sending requests through a transport: results, echoes, thread tags and
// bounded worker pools.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// threadCtx tags ctx with thread unless thread is empty.
func threadCtx(ctx context.Context, thread string) context.Context {
	if thread == "" {
		return ctx
	}
	return transport.WithThread(ctx, thread)
}

// newRequest builds a POST with a replayable JSON body.
func newRequest(t testing.TB, ctx context.Context, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"input":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// roundTripEcho sends one request for thread ("" for none) through rt and
// returns the status and the reference server's echo. It returns an error
// rather than failing so that it can run on worker goroutines.
func roundTripEcho(ctx context.Context, rt http.RoundTripper, url, thread string) (int, identitytest.Echo, error) {
	r := post(ctx, rt, url, thread)
	if r.err == nil && r.echoErr != nil {
		return r.status, r.echo, fmt.Errorf("decoding echo: %w", r.echoErr)
	}
	return r.status, r.echo, r.err
}

// mustEcho is roundTripEcho that fails the test unless the answer is 200.
func mustEcho(t testing.TB, ctx context.Context, rt http.RoundTripper, url, thread string) identitytest.Echo {
	t.Helper()
	status, echo, err := roundTripEcho(ctx, rt, url, thread)
	if err != nil {
		t.Fatalf("round trip (thread %q): %v", thread, err)
	}
	if status != http.StatusOK {
		t.Fatalf("round trip (thread %q): status %d", thread, status)
	}
	return echo
}

// runWorkers runs fn(i) for i in [0, n) on at most workers goroutines and
// returns the first error. Every goroutine has ended when it returns.
func runWorkers(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs <- fmt.Errorf("item %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// stubSend sends one request through rt (whose base is a stubBase) and
// returns an error for anything but 200.
func stubSend(ctx context.Context, rt http.RoundTripper, url, thread string) error {
	r := post(ctx, rt, url, thread)
	if r.err == nil && r.status != http.StatusOK {
		return fmt.Errorf("status %d", r.status)
	}
	return r.err
}

// numberedBody is a distinctive request body of about size bytes for request i,
// so the server-side copy can be matched to its sender.
func numberedBody(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "request-%03d:", i)
	for b.Len() < size {
		b.WriteString("0123456789abcdef")
	}
	return b.Bytes()
}

// result is the outcome of one request: the response (body read, echo
// decoded when it is a 200) or the error.
type result struct {
	status int
	header http.Header
	body   []byte
	echo   identitytest.Echo
	// echoErr is why a 200's body is not an echo (a fault test's answer
	// may be anything).
	echoErr error
	err     error
}

// send sends req with rt and reads the whole answer. It does not fail the
// test, so workers can call it.
func send(rt http.RoundTripper, req *http.Request) result {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, header: resp.Header}
	r.body, r.err = io.ReadAll(resp.Body)
	if r.err == nil && resp.StatusCode == http.StatusOK {
		r.echoErr = json.Unmarshal(r.body, &r.echo)
	}
	return r
}

// post sends POST url on thread ("" for none) through rt with a replayable
// body.
func post(ctx context.Context, rt http.RoundTripper, url, thread string) result {
	req, err := http.NewRequestWithContext(threadCtx(ctx, thread), http.MethodPost, url, strings.NewReader(`{}`))
	if err != nil {
		return result{err: err}
	}
	return send(rt, req)
}

// demo's workload: the reference server, the workers and the order of a run.

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// runDemoWorkload starts the embedded server unless opts.server is set,
// provisions an identity from a ChatGPT-style login with the flag on,
// drives the workload and collects the summary. An error means the demo
// could not run at all; failed requests are counted, not returned.
func runDemoWorkload(ctx context.Context, opts demoOptions, stderr io.Writer) (*demoSummary, error) {
	token, err := demoToken() // demo_transport.go
	if err != nil {
		return nil, err
	}
	base := opts.server
	var srv *identitytest.Server
	if base == "" {
		if srv, err = startDemoServer(token); err != nil {
			return nil, err
		}
		defer srv.Close()
		base = srv.URL()
	}
	netTransport := demoNetTransport(opts.concurrency)
	defer netTransport.CloseIdleConnections()

	errs := &demoErrors{secrets: []string{token}}
	regs := &registrationTimes{max: demoMaxRegistrationSamples}
	auth, err := newDemoTransport(netTransport, base, token, opts, errs, regs)
	if err != nil {
		return nil, fmt.Errorf("building the transport: %w", err)
	}
	w := newDemoWorkers(ctx, opts, auth, base, srv != nil, newDemoTally(opts.total(), errs, base))
	started := time.Now()
	prog := startProgress(stderr, opts.total(), &w.tally.counts)
	w.run(ctx)
	prog.stop()
	elapsed := time.Since(started)
	w.client.CloseIdleConnections()

	st := auth.Stats()
	sum := w.tally.summary(opts, srv != nil, st, regs, elapsed) // demo_tally.go
	if srv != nil {
		sum.Server = demoServerView(srv, st, sum)
	}
	return sum, nil
}

// startDemoServer starts the embedded reference server, which accepts
// token as the login.
func startDemoServer(token string) (*identitytest.Server, error) {
	srv, err := identitytest.NewServer(identitytest.Options{
		AccessTokens: []string{token},
		RequestLog:   -1, // the demo reads counters, not the request log
	})
	if err != nil {
		return nil, fmt.Errorf("starting the reference server: %w", err)
	}
	return srv, nil
}

// demoWorkers send the workload's requests, opts.concurrency at a time,
// each taking the next request index until all are sent or ctx ends.
type demoWorkers struct {
	opts       demoOptions
	client     *http.Client
	target     string
	embedded   bool
	threadCtx  []context.Context // per thread key, the context that tags it
	threadKeys []string
	tally      *demoTally
	next       atomic.Int64 // the next request index
}

// newDemoWorkers prepares the workers of a run through auth against base.
func newDemoWorkers(ctx context.Context, opts demoOptions, auth *transport.Transport, base string, embedded bool, tally *demoTally) *demoWorkers {
	w := &demoWorkers{
		opts: opts,
		client: &http.Client{
			Transport:     timedRoundTripper{next: auth},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		target:     base + "/v1/responses",
		embedded:   embedded,
		threadCtx:  make([]context.Context, opts.threads),
		threadKeys: make([]string, opts.threads),
		tally:      tally,
	}
	for i := range w.threadCtx {
		w.threadKeys[i] = "thread-" + strconv.Itoa(i+1)
		w.threadCtx[i] = transport.WithThread(ctx, w.threadKeys[i])
	}
	return w
}

// run starts the workers and waits for them all.
func (w *demoWorkers) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range w.opts.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work(ctx)
		}()
	}
	wg.Wait()
}

// work sends requests, the next index each time, until none is left or
// ctx ends; a request of a thread job carries its thread key.
func (w *demoWorkers) work(ctx context.Context) {
	total := w.opts.total()
	for {
		i := w.next.Add(1) - 1
		if i >= total || ctx.Err() != nil {
			return
		}
		job := w.opts.demoJob(i)
		rctx, want := ctx, ""
		if job >= 0 {
			rctx, want = w.threadCtx[job], w.threadKeys[job]
			w.tally.threadN.Add(1)
		} else {
			w.tally.backgroundN.Add(1)
		}
		tm := new(requestTiming)
		r := demoRequest(context.WithValue(rctx, timingKey{}, tm), w.client, w.target, want, w.embedded) // demo_request.go
		w.tally.record(i, r, tm)
	}
}

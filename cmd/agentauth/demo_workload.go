// demo's workload: the reference server, the transport under test, and the requests it sends.

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// demoRequestBody is the small JSON body of every resource request.
var demoRequestBody = []byte(`{"model":"agentauth-demo","input":"ping"}`)

// timingKey carries a request's *requestTiming through the transport.
type timingKey struct{}

// requestTiming accumulates, for one demo request, the time spent in the
// whole agentauth RoundTrip and the part spent in the base transport (the
// network and the server); the difference is what the middleware added.
type requestTiming struct {
	total atomic.Int64
	base  atomic.Int64
}

// timedRoundTripper adds the duration of each RoundTrip to the total or
// base field of the request's requestTiming.
type timedRoundTripper struct {
	next http.RoundTripper
	base bool
}

func (t timedRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	tm, _ := req.Context().Value(timingKey{}).(*requestTiming)
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if tm != nil {
		d := int64(time.Since(start))
		if t.base {
			tm.base.Add(d)
		} else {
			tm.total.Add(d)
		}
	}
	return resp, err
}

func (t timedRoundTripper) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// runDemoWorkload starts the embedded server unless opts.server is set,
// provisions an identity from a ChatGPT-style login with the flag on,
// drives the workload and collects the summary. An error means the demo
// could not run at all; failed requests are counted, not returned.
func runDemoWorkload(ctx context.Context, opts demoOptions, stderr io.Writer) (*demoSummary, error) {
	token, err := demoToken()
	if err != nil {
		return nil, err
	}
	base := opts.server
	var srv *identitytest.Server
	if base == "" {
		srv, err = identitytest.NewServer(identitytest.Options{
			AccessTokens: []string{token},
			RequestLog:   -1, // the demo reads counters, not the request log
		})
		if err != nil {
			return nil, fmt.Errorf("starting the reference server: %w", err)
		}
		defer srv.Close()
		base = srv.URL()
	}

	// One connection per worker stays open; the default of two idle
	// connections per host would make most requests dial.
	netTransport := http.DefaultTransport.(*http.Transport).Clone()
	if testDial != nil {
		netTransport.DialContext = testDial
	}
	netTransport.MaxIdleConnsPerHost = opts.concurrency + 2
	defer netTransport.CloseIdleConnections()

	errs := &demoErrors{secrets: []string{token}}
	regs := &registrationTimes{max: demoMaxRegistrationSamples}
	auth, err := newDemoTransport(netTransport, base, token, opts, errs, regs)
	if err != nil {
		return nil, fmt.Errorf("building the transport: %w", err)
	}
	client := &http.Client{
		Transport:     timedRoundTripper{next: auth},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	total := opts.total()
	threadCtx := make([]context.Context, opts.threads)
	threadKeys := make([]string, opts.threads)
	for i := range threadCtx {
		threadKeys[i] = "thread-" + strconv.Itoa(i+1)
		threadCtx[i] = transport.WithThread(ctx, threadKeys[i])
	}
	// One latency sample per request; -1 (no sample) until the request got
	// a response, so requests that were never sent or got none (canceled,
	// failed) do not count as 0 ms.
	added := make([]time.Duration, total)
	for i := range added {
		added[i] = -1
	}
	var (
		counts                    progressCounts
		next                      atomic.Int64
		threadN, backgroundN, okN atomic.Int64
		canceledN, mismatchN      atomic.Int64
		echoedN                   atomic.Int64
		target                    = base + "/v1/responses"
		wg                        sync.WaitGroup
	)
	started := time.Now()
	prog := startProgress(stderr, total, &counts)
	for range opts.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				job := opts.demoJob(i)
				rctx, want := ctx, ""
				if job >= 0 {
					rctx, want = threadCtx[job], threadKeys[job]
					threadN.Add(1)
				} else {
					backgroundN.Add(1)
				}
				tm := new(requestTiming)
				r := demoRequest(context.WithValue(rctx, timingKey{}, tm), client, target, want, srv != nil)
				switch {
				case r.canceled:
					canceledN.Add(1)
				case r.err != nil:
					counts.failures.Add(1)
					errs.add(demoErrorKindOf(r.err), describeDoError(r.err, base))
				case !r.ok:
					added[i] = time.Duration(tm.total.Load() - tm.base.Load())
					counts.rejections.Add(1)
					errs.add(fmt.Sprintf("rejected with HTTP %d", r.status), fmt.Sprintf("%d %s: %s", r.status, http.StatusText(r.status), r.body))
				default:
					added[i] = time.Duration(tm.total.Load() - tm.base.Load())
					okN.Add(1)
					if r.mismatch {
						mismatchN.Add(1)
					}
					if r.echoed {
						echoedN.Add(1)
					}
				}
				counts.done.Add(1)
			}
		}()
	}
	wg.Wait()
	prog.stop()
	elapsed := time.Since(started)
	client.CloseIdleConnections()

	st := auth.Stats()
	sum := &demoSummary{ServerURL: base, Embedded: srv != nil, Planned: total, Scenario: opts.scenario(srv != nil)}
	sum.Requests.Thread = threadN.Load()
	sum.Requests.Background = backgroundN.Load()
	sum.Requests.Total = sum.Requests.Thread + sum.Requests.Background
	sum.Requests.Accepted = okN.Load()
	sum.Modes.ThreadTask = st.RequestsIn(resolver.ModeThreadTask)
	sum.Modes.ProcessTask = st.RequestsIn(resolver.ModeProcessTask)
	sum.Modes.Bearer = st.RequestsIn(resolver.ModeBearer)
	sum.Registrations.Agent = st.AgentRegistrations
	sum.Registrations.Thread = st.ThreadRegistrations
	sum.Registrations.Process = st.ProcessRegistrations
	sum.Signatures = st.Signatures
	sum.Failures = counts.failures.Load()
	sum.Rejections = counts.rejections.Load()
	sum.Canceled = canceledN.Load()
	sum.EchoMismatches = mismatchN.Load()
	sum.Replays = st.Replays
	sum.BearerFallbacks = st.BearerFallbacks
	if p50, p99, ok := latencyPercentiles(added); ok {
		sum.LatencyMS.P50, sum.LatencyMS.P99 = &p50, &p99
	}
	if samples := regs.snapshot(); len(samples) > 0 {
		p50, p99, _ := latencyPercentiles(samples)
		sum.RegistrationLatencyMS.P50, sum.RegistrationLatencyMS.P99 = &p50, &p99
		sum.RegistrationLatencyMS.Samples = len(samples)
	}
	sum.ElapsedMS = roundMS(elapsed)
	sum.PassThrough = st.RequestsIn(resolver.ModePassThrough)
	sum.EchoChecked = echoedN.Load() > 0
	sum.Expected.Agent, sum.Expected.Thread = 1, uint64(opts.threads)
	if opts.background > 0 {
		sum.Expected.Process = 1
	}
	if sum.Canceled > 0 || sum.Requests.Total < sum.Planned {
		// A cut-short run registers only what it reached.
		sum.Expected = sum.Registrations
	}
	sum.Errors, sum.Warnings = errs.snapshot()
	if srv != nil {
		sum.Server = demoServerView(srv, st, sum)
	}
	return sum, nil
}

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

// demoToken returns a random login token for this run. It is a secret in
// the sense that it is never printed.
func demoToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errors.New("reading randomness failed")
	}
	return "demo-" + hex.EncodeToString(b[:]), nil
}

// demoServerView is the embedded server's count of the run, checked
// against the transport's stats st and the client's summary sum.
func demoServerView(srv *identitytest.Server, st transport.Stats, sum *demoSummary) *demoServerCounts {
	ss := srv.Stats()
	accepted := 0
	for _, n := range ss.RequestsByMode {
		accepted += n
	}
	c := &demoServerCounts{
		AgentRegistrations:   ss.AgentRegistrations,
		ThreadRegistrations:  ss.ThreadTaskRegistrations,
		ProcessRegistrations: ss.ProcessTaskRegistrations,
		Accepted:             accepted,
		Rejections:           ss.Rejections,
	}
	// A canceled request may still have been answered by the server
	// (and a registration it was waiting for may still have
	// completed there): when the run was cut short, the server may
	// count up to the canceled requests more than the client.
	slack := sum.Canceled
	c.Unsettled = slack > 0
	within := func(server, client int64) bool { return server >= client && server-client <= slack }
	c.Consistent = within(int64(ss.AgentRegistrations), int64(st.AgentRegistrations)) &&
		within(int64(ss.ThreadTaskRegistrations), int64(st.ThreadRegistrations)) &&
		within(int64(ss.ProcessTaskRegistrations), int64(st.ProcessRegistrations)) &&
		within(int64(accepted), sum.Requests.Accepted)
	return c
}

// newDemoTransport builds the transport under test: a ChatGPT-style login
// with use_agent_identity on, against base, with a fresh identity store.
func newDemoTransport(netTransport *http.Transport, base, token string, opts demoOptions, errs *demoErrors, regs *registrationTimes) (*transport.Transport, error) {
	cache := taskcache.CacheOptions{}
	if opts.threads > taskcache.DefaultCapacity {
		// Evicting a live thread would re-register it and skew the counts.
		cache.Capacity = opts.threads
	}
	return transport.New(timedRoundTripper{next: netTransport, base: true}, transport.Config{
		// Warnings (a Bearer fallback and its cause, a store that cannot
		// persist) are the transport's explanation of a failing run.
		Logger: slog.New(demoWarnHandler(errs)),
		Credentials: &credentials.Credentials{
			Kind:    credentials.KindChatGPT,
			ChatGPT: &credentials.ChatGPTLogin{AccessToken: token, AccountID: demoAccountID},
			Source:  "agentauth demo",
		},
		Flag: featureflag.New(true),
		// A fresh store per run: the identity is provisioned against this
		// run's server and must not be reused against another.
		IdentityStore:     credentials.NewMemoryStore(),
		ChatGPTBaseURL:    base,
		AuthAPIBaseURL:    base,
		AllowedOrigins:    []string{base},
		AllowInsecureHTTP: strings.HasPrefix(base, "http://"),
		ThreadCache:       cache,
		Software:          identity.Software{HarnessID: "agentauth-demo"},
		Observer:          &transport.Observer{OnEvent: regs.record},
		// Registrations bypass the timing wrapper, so the time a request
		// waits for one counts as latency added by the middleware.
		RegistrationClient: &http.Client{
			Transport:     netTransport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	})
}

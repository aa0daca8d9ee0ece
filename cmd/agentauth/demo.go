package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identity"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

const demoSynopsis = "agentauth demo [--server URL] [--threads N] [--requests M] [--background K] [--concurrency C] [--timeout 1m] [--json]"

// Workload bounds: large enough for any demonstration, small enough that a
// run finishes within the default timeout on a small machine (the embedded
// server handles about 5,000 requests a second on 2 shared CPUs) and a typo
// cannot exhaust memory (one latency sample per request is kept).
const (
	demoMaxThreads     = 10_000
	demoMaxTotal       = 100_000 // threads×requests+background
	demoMaxConcurrency = 1024
	// demoDefaultTimeout bounds the whole run; the default workload takes
	// about a second. demoMaxTimeout bounds --timeout.
	demoDefaultTimeout = 60 * time.Second
	demoMaxTimeout     = 30 * time.Minute
	// demoMaxErrorKinds bounds the distinct failure kinds the summary
	// keeps (each with its count and first message).
	demoMaxErrorKinds = 8
	// demoMaxErrorText bounds each kept message.
	demoMaxErrorText = 300
	// demoAccountID is the account of the ChatGPT-style login the demo
	// provisions its identity from.
	demoAccountID = "acct-demo"
	// demoMaxEcho bounds how much of a response the demo reads to check
	// the echo of the reference server.
	demoMaxEcho = 64 << 10
)

// errDemoTimeout is the cause of the run's own deadline, told apart from a
// caller's cancellation.
var errDemoTimeout = errors.New("demo timed out")

// demoRequestBody is the small JSON body of every resource request.
var demoRequestBody = []byte(`{"model":"agentauth-demo","input":"ping"}`)

func init() {
	register(command{
		name:    "demo",
		summary: "drive thread and background requests through the transport against the reference server and summarise",
		run:     runDemo,
	})
}

// demoOptions is the validated command line of demo.
type demoOptions struct {
	server      string // base URL, "" for the embedded server
	threads     int
	requests    int
	background  int
	concurrency int
	timeout     time.Duration
	json        bool
}

func (o demoOptions) total() int64 {
	return int64(o.threads)*int64(o.requests) + int64(o.background)
}

// demoSummary is what demo prints, as a table or (with --json) as one JSON
// object. Counts are of this run only.
type demoSummary struct {
	// Scenario says in one sentence what the run did: the credential, the
	// workload and the server.
	Scenario  string `json:"scenario"`
	ServerURL string `json:"server_url"`
	Embedded  bool   `json:"embedded"`
	Planned   int64  `json:"planned"`
	Requests  struct {
		Thread     int64 `json:"thread"`
		Background int64 `json:"background"`
		Total      int64 `json:"total"`
		Accepted   int64 `json:"accepted"` // answered 2xx
	} `json:"requests"`
	// Modes are the transport's counts of how requests were sent
	// (replays after a 401 included): AgentAssertion on a thread task or on
	// the process task, or Bearer while provisioning was unavailable.
	Modes struct {
		ThreadTask  uint64 `json:"thread_task"`
		ProcessTask uint64 `json:"process_task"`
		Bearer      uint64 `json:"bearer"`
	} `json:"modes"`
	Registrations struct {
		Agent   uint64 `json:"agent"`
		Thread  uint64 `json:"thread"`
		Process uint64 `json:"process"`
	} `json:"registrations"`
	Signatures      uint64 `json:"signatures"`
	Failures        int64  `json:"failures"`   // requests that returned an error
	Rejections      int64  `json:"rejections"` // requests answered non-2xx
	Canceled        int64  `json:"canceled"`   // requests cut short by interruption or the run's timeout
	EchoMismatches  int64  `json:"echo_mismatches"`
	Replays         uint64 `json:"replays"`
	BearerFallbacks uint64 `json:"bearer_fallbacks"`
	// PassThrough counts requests the transport sent without a credential
	// because their origin was not first-party.
	PassThrough uint64 `json:"pass_through"`
	// LatencyMS is measured over the requests that got a response; both
	// are null when none did.
	LatencyMS struct {
		P50 *float64 `json:"p50"`
		P99 *float64 `json:"p99"`
	} `json:"latency_ms"`
	// RegistrationLatencyMS is the duration of each successful thread
	// task registration as the transport reported it to its Observer (one
	// AuthAPI round trip, signing included); null when there was none.
	RegistrationLatencyMS struct {
		P50     *float64 `json:"p50"`
		P99     *float64 `json:"p99"`
		Samples int      `json:"samples"`
	} `json:"registration_latency_ms"`
	// Expected is what the demo's workload must register: one agent, one
	// task per thread key, one process task when there is background work.
	Expected struct {
		Agent   uint64 `json:"agent"`
		Thread  uint64 `json:"thread"`
		Process uint64 `json:"process"`
	} `json:"expected_registrations"`
	// EchoChecked says whether responses were compared with the request:
	// only the reference server's echo (which it marks with a header) is
	// understood; other servers are judged by status codes and counts.
	EchoChecked bool    `json:"echo_checked"`
	ElapsedMS   float64 `json:"elapsed_ms"`
	// Errors are the first failure of each kind (redacted), with counts.
	Errors []demoErrorKind `json:"errors,omitempty"`
	// Warnings are what the transport logged at warn level (first of each
	// message), such as why it fell back to Bearer.
	Warnings []demoErrorKind `json:"warnings,omitempty"`
	// Server holds the embedded server's own counters; nil with --server.
	Server *demoServerCounts `json:"server,omitempty"`
}

// demoErrorKind is one kind of failure: its count and the first message.
type demoErrorKind struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
	First string `json:"first"`
}

// demoServerCounts is the embedded reference server's view of the run.
type demoServerCounts struct {
	AgentRegistrations   int  `json:"agent_registrations"`
	ThreadRegistrations  int  `json:"thread_registrations"`
	ProcessRegistrations int  `json:"process_registrations"`
	Accepted             int  `json:"accepted"`
	Rejections           int  `json:"rejections"`
	Consistent           bool `json:"consistent"` // the server counted what the client did
	// Unsettled is set when the run was cut short: the server may have
	// answered up to Canceled requests the client stopped waiting for, so
	// its accepted count may exceed the client's by that much.
	Unsettled bool `json:"unsettled,omitempty"`
}

// runDemo runs the demo workload and prints its summary: a table (or one
// JSON object with --json) on stdout, and the first error of each kind on
// stderr. It exits 1 when any request failed or was rejected, when the
// registrations are not the workload's (one agent, one task per thread, one
// process task), when the reference server's echo or counters disagree
// with the client's, or when the run was interrupted or timed out.
func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo")
	server := fs.String("server", "", "base URL of a server offering agent registration (accepting any Bearer token), task registration and POST /v1/responses (default: start the reference server on loopback); plain http only for loopback hosts")
	threads := fs.Int("threads", 8, fmt.Sprintf("number of thread keys (thread-1 .. thread-N), 1 to %d", demoMaxThreads))
	requests := fs.Int("requests", 25, fmt.Sprintf("requests per thread key; threads×requests+background is at most %d", demoMaxTotal))
	background := fs.Int("background", 20, "requests without a thread key (process task); may be 0; counts toward the total")
	concurrency := fs.Int("concurrency", 8, fmt.Sprintf("number of concurrent workers, 1 to %d", demoMaxConcurrency))
	timeout := fs.Duration("timeout", demoDefaultTimeout, fmt.Sprintf("give up after this long (at most %s)", demoMaxTimeout))
	asJSON := fs.Bool("json", false, "print the summary as one JSON object instead of a table")
	if code, done := parseFlags(fs, demoSynopsis, args, stdout, stderr); done {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	opts := demoOptions{server: *server, threads: *threads, requests: *requests, background: *background, concurrency: *concurrency, timeout: *timeout, json: *asJSON}
	if err := opts.validate(set); err != nil {
		return usageError(stderr, fs.Name(), err)
	}

	ctx, cancel := context.WithTimeoutCause(ctx, opts.timeout, errDemoTimeout)
	defer cancel()
	sum, err := runDemoWorkload(ctx, opts, stderr)
	if err != nil {
		return failure(stderr, fs.Name(), err)
	}
	if opts.json {
		out, err := json.Marshal(sum)
		if err != nil {
			return failure(stderr, fs.Name(), errors.New("encoding the summary failed"))
		}
		fmt.Fprintf(stdout, "%s\n", out)
	} else {
		printDemoTable(stdout, sum)
	}
	printDemoDiagnostics(stderr, sum)

	switch {
	case sum.Canceled > 0 || sum.Requests.Total < sum.Planned:
		cause := "interrupted"
		if context.Cause(ctx) == errDemoTimeout {
			cause = "timed out after --timeout " + opts.timeout.String()
		}
		return failure(stderr, fs.Name(), fmt.Errorf("%s: %d of %d requests completed, %d canceled in flight, %d never sent",
			cause, sum.Requests.Total-sum.Canceled, sum.Planned, sum.Canceled, sum.Planned-sum.Requests.Total))
	case sum.Rejections > 0 || sum.Failures > 0:
		return failure(stderr, fs.Name(), fmt.Errorf("%d of %d requests did not succeed: %d rejected (non-2xx), %d failed", sum.Rejections+sum.Failures, sum.Requests.Total, sum.Rejections, sum.Failures))
	case sum.Registrations != sum.Expected:
		return failure(stderr, fs.Name(), fmt.Errorf("registrations agent %d, thread %d, process %d; the workload needs exactly %d, %d, %d",
			sum.Registrations.Agent, sum.Registrations.Thread, sum.Registrations.Process, sum.Expected.Agent, sum.Expected.Thread, sum.Expected.Process))
	case sum.EchoMismatches > 0:
		return failure(stderr, fs.Name(), fmt.Errorf("%d responses of the reference server echo a credential other than the expected AgentAssertion", sum.EchoMismatches))
	case sum.Server != nil && !sum.Server.Consistent:
		return failure(stderr, fs.Name(), errors.New("the server's counters disagree with the transport's"))
	}
	return exitOK
}

// printDemoDiagnostics tells why requests failed: the first error of each
// kind, the transport's warnings (such as the cause of a Bearer fallback)
// and requests sent without a credential. Messages are redacted already.
func printDemoDiagnostics(w io.Writer, s *demoSummary) {
	for _, e := range s.Warnings {
		fmt.Fprintf(w, "agentauth demo: transport warning (%d×): %s\n", e.Count, e.First)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "agentauth demo: %d× %s, first: %s\n", e.Count, e.Kind, e.First)
	}
	if s.PassThrough > 0 {
		fmt.Fprintf(w, "agentauth demo: %d requests went out without a credential: their origin is not first-party (ChatGPTBaseURL and AllowedOrigins decide which origins get one)\n", s.PassThrough)
	}
}

// validate checks the workload against the stated bounds. set names the
// flags the user gave, so that an error can say which values are defaults.
func (o *demoOptions) validate(set map[string]bool) error {
	switch {
	case o.threads < 1 || o.threads > demoMaxThreads:
		return fmt.Errorf("--threads must be between 1 and %d", demoMaxThreads)
	case o.requests < 1 || o.requests > demoMaxTotal:
		return fmt.Errorf("--requests must be between 1 and %d", demoMaxTotal)
	case o.background < 0 || o.background > demoMaxTotal:
		return fmt.Errorf("--background must be between 0 and %d", demoMaxTotal)
	case o.concurrency < 1 || o.concurrency > demoMaxConcurrency:
		return fmt.Errorf("--concurrency must be between 1 and %d", demoMaxConcurrency)
	case o.timeout <= 0 || o.timeout > demoMaxTimeout:
		return fmt.Errorf("--timeout must be positive and at most %s", demoMaxTimeout)
	case o.total() > demoMaxTotal:
		term := func(name string, v int) string {
			if set[name] {
				return fmt.Sprintf("--%s %d", name, v)
			}
			return fmt.Sprintf("--%s %d (the default)", name, v)
		}
		return fmt.Errorf("%s × %s + %s = %d requests; a run is limited to %d requests",
			term("threads", o.threads), term("requests", o.requests), term("background", o.background), o.total(), demoMaxTotal)
	}
	if o.server != "" {
		base, err := parseServerURL(o.server)
		if err != nil {
			return err
		}
		o.server = base
	}
	return nil
}

// parseServerURL checks --server and returns it without a trailing "/".
// Plain http is allowed only for loopback hosts: the demo sends a login
// token there.
func parseServerURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return "", fmt.Errorf("--server %q is not an http(s) URL", truncate(raw))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("--server must be a base URL without user info, query or fragment")
	case u.Scheme == "http" && !identity.IsLoopbackBase(raw):
		return "", fmt.Errorf("--server %q: plain http is allowed only for loopback hosts; use https", truncate(raw))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// scenario describes the run the options ask for.
func (o demoOptions) scenario(embedded bool) string {
	where := "the server at --server"
	if embedded {
		where = "the embedded reference server"
	}
	s := fmt.Sprintf("a ChatGPT login with use_agent_identity on provisions one Agent Identity at %s; %d thread key(s) × %d request(s) sign with their thread's task", where, o.threads, o.requests)
	if o.background > 0 {
		s += fmt.Sprintf(" and %d background request(s) with the process task", o.background)
	}
	return s + fmt.Sprintf(", on %d worker(s)", o.concurrency)
}

// demoJob says what request i of the workload is: background requests are
// spread evenly among the thread requests (Bresenham), and thread requests
// go round-robin over the thread keys, so every phase of the run mixes
// modes and keys. It returns the thread index (0-based) or -1.
func (o demoOptions) demoJob(i int64) int {
	total, bg := o.total(), int64(o.background)
	before := i * bg / total // background jobs among 0..i-1
	if (i+1)*bg/total != before {
		return -1
	}
	return int((i - before) % int64(o.threads))
}

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

	cache := resolver.CacheOptions{}
	if opts.threads > resolver.DefaultCapacity {
		// Evicting a live thread would re-register it and skew the counts.
		cache.Capacity = opts.threads
	}
	errs := &demoErrors{secrets: []string{token}}
	regs := &registrationTimes{max: demoMaxRegistrationSamples}
	auth, err := transport.New(timedRoundTripper{next: netTransport, base: true}, transport.Config{
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
		Observer:          &transport.Observer{OnRegistration: regs.record},
		// Registrations bypass the timing wrapper, so the time a request
		// waits for one counts as latency added by the middleware.
		RegistrationClient: &http.Client{
			Transport:     netTransport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	})
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
		ss := srv.Stats()
		accepted := 0
		for _, n := range ss.RequestsByMode {
			accepted += n
		}
		sum.Server = &demoServerCounts{
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
		sum.Server.Unsettled = slack > 0
		within := func(server, client int64) bool { return server >= client && server-client <= slack }
		sum.Server.Consistent = within(int64(ss.AgentRegistrations), int64(st.AgentRegistrations)) &&
			within(int64(ss.ThreadTaskRegistrations), int64(st.ThreadRegistrations)) &&
			within(int64(ss.ProcessTaskRegistrations), int64(st.ProcessRegistrations)) &&
			within(int64(accepted), sum.Requests.Accepted)
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

// demoErrors keeps the first message of each kind of failure and warning,
// redacted and bounded, with counts. Safe for concurrent use.
type demoErrors struct {
	secrets  []string
	mu       sync.Mutex
	errs     []demoErrorKind
	warnings []demoErrorKind
}

func (d *demoErrors) add(kind, msg string) { d.record(&d.errs, kind, msg) }

func (d *demoErrors) warn(msg string) { d.record(&d.warnings, msg, msg) }

func (d *demoErrors) record(list *[]demoErrorKind, kind, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range *list {
		if (*list)[i].Kind == kind {
			(*list)[i].Count++
			return
		}
	}
	if len(*list) >= demoMaxErrorKinds {
		kind = "other"
		for i := range *list {
			if (*list)[i].Kind == kind {
				(*list)[i].Count++
				return
			}
		}
	}
	msg = oneLine(scrub(msg, d.secrets))
	if len(msg) > demoMaxErrorText {
		msg = msg[:demoMaxErrorText] + "..."
	}
	*list = append(*list, demoErrorKind{Kind: kind, Count: 1, First: msg})
}

func (d *demoErrors) snapshot() (errs, warnings []demoErrorKind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.errs), slices.Clone(d.warnings)
}

// demoErrorKindOf names the kind of a request error for grouping: the
// transport's error class, else a network or other failure.
func demoErrorKindOf(err error) (kind string) {
	defer func() {
		if recover() != nil {
			kind = "failed: other"
		}
	}()
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case isNil(err):
		return "failed: other"
	case errors.Is(err, transport.ErrProvisioning):
		return "failed: agent provisioning"
	case errors.Is(err, transport.ErrRegistration):
		var te *transport.Error
		if errors.As(err, &te) && te.Mode == resolver.ModeThreadTask {
			return "failed: thread-task registration"
		}
		return "failed: process-task registration"
	case errors.Is(err, transport.ErrCredential):
		return "failed: credential"
	case errors.Is(err, context.DeadlineExceeded):
		return "failed: timeout"
	case errors.As(err, &dns) && dns != nil:
		return "failed: network (dns)"
	case errors.As(err, &op) && op != nil && op.Op != "":
		return "failed: network (" + op.Op + ")"
	case errors.As(err, &op) && op != nil:
		return "failed: network"
	}
	return "failed: other"
}

// demoWarnHandler returns the slog.Handler that collects the transport's
// warn-level records, with their error attribute, into errs.
func demoWarnHandler(errs *demoErrors) slog.Handler {
	return &logHandler{
		enabled: func(l slog.Level) bool { return l >= slog.LevelWarn },
		emit: func(r slog.Record, attrs []slog.Attr) error {
			msg := r.Message
			eachAttr(r, attrs, func(a slog.Attr) {
				if a.Key == "error" {
					msg += ": " + a.Value.Resolve().String()
				}
			})
			errs.warn(msg)
			return nil
		},
	}
}

// demoMaxRegistrationSamples bounds the registration durations a run
// keeps: one per thread (at most 10,000) plus re-registrations.
const demoMaxRegistrationSamples = 100_000

// registrationTimes collects, from the transport's Observer, the duration
// of each successful thread task registration. Events arrive on the
// goroutines that register, so it locks; it keeps at most max samples.
type registrationTimes struct {
	max int
	mu  sync.Mutex
	d   []time.Duration
}

func (r *registrationTimes) record(_ context.Context, ev transport.RegistrationEvent) {
	if ev.Kind != transport.TaskThread || ev.Outcome != transport.OutcomeSuccess {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.d) < r.max {
		r.d = append(r.d, ev.Duration)
	}
}

func (r *registrationTimes) snapshot() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.d)
}

// latencyPercentiles returns the nearest-rank p50 and p99 of the samples
// (negative ones, meaning no sample, are skipped) in milliseconds with three
// decimals; ok is false when there is no sample at all.
func latencyPercentiles(samples []time.Duration) (p50, p99 float64, ok bool) {
	valid := make([]time.Duration, 0, len(samples))
	for _, d := range samples {
		if d >= 0 {
			valid = append(valid, d)
		}
	}
	if len(valid) == 0 {
		return 0, 0, false
	}
	slices.Sort(valid)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(valid)))) - 1
		return valid[max(i, 0)]
	}
	return roundMS(rank(0.50)), roundMS(rank(0.99)), true
}

func roundMS(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
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

// printDemoTable prints the summary as an aligned table; the SERVER column
// appears only with the embedded server, whose counters it shows.
func printDemoTable(w io.Writer, s *demoSummary) {
	where := "server " + s.ServerURL
	if s.Embedded {
		where = "embedded reference server " + s.ServerURL
	}
	fmt.Fprintf(w, "agentauth demo: %d requests against %s in %.3fs\n", s.Requests.Total, where, s.ElapsedMS/1000)
	fmt.Fprintf(w, "scenario: %s\n\n", s.Scenario)
	srv := func(f func(*demoServerCounts) int) string {
		if s.Server == nil {
			return ""
		}
		return strconv.Itoa(f(s.Server))
	}
	rows := []struct{ name, value, server string }{
		{"requests thread", strconv.FormatInt(s.Requests.Thread, 10), ""},
		{"requests background", strconv.FormatInt(s.Requests.Background, 10), ""},
		{"requests total", strconv.FormatInt(s.Requests.Total, 10), ""},
		{"requests accepted (2xx)", strconv.FormatInt(s.Requests.Accepted, 10), srv(func(c *demoServerCounts) int { return c.Accepted })},
		{"sent with thread task", strconv.FormatUint(s.Modes.ThreadTask, 10), ""},
		{"sent with process task", strconv.FormatUint(s.Modes.ProcessTask, 10), ""},
		{"sent as Bearer (fallback)", strconv.FormatUint(s.Modes.Bearer, 10), ""},
		{"registrations agent", strconv.FormatUint(s.Registrations.Agent, 10), srv(func(c *demoServerCounts) int { return c.AgentRegistrations })},
		{"registrations thread", strconv.FormatUint(s.Registrations.Thread, 10), srv(func(c *demoServerCounts) int { return c.ThreadRegistrations })},
		{"registrations process", strconv.FormatUint(s.Registrations.Process, 10), srv(func(c *demoServerCounts) int { return c.ProcessRegistrations })},
		{"signatures", strconv.FormatUint(s.Signatures, 10), ""},
		{"failures", strconv.FormatInt(s.Failures, 10), ""},
		{"rejections", strconv.FormatInt(s.Rejections, 10), srv(func(c *demoServerCounts) int { return c.Rejections })},
		{"latency added p50 (ms)", formatMS(s.LatencyMS.P50), ""},
		{"latency added p99 (ms)", formatMS(s.LatencyMS.P99), ""},
		{"thread registration p50 (ms)", formatMS(s.RegistrationLatencyMS.P50), ""},
		{"thread registration p99 (ms)", formatMS(s.RegistrationLatencyMS.P99), ""},
	}
	if s.Canceled > 0 {
		rows = append(rows, struct{ name, value, server string }{"canceled", strconv.FormatInt(s.Canceled, 10), ""})
	}
	width := len("METRIC")
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	line := func(name, value, server string) {
		if s.Server == nil {
			fmt.Fprintf(w, "%-*s  %10s\n", width, name, value)
			return
		}
		if server == "" {
			server = "-"
		}
		fmt.Fprintf(w, "%-*s  %10s  %10s\n", width, name, value, server)
	}
	line("METRIC", "CLIENT", "SERVER")
	for _, r := range rows {
		line(r.name, r.value, r.server)
	}
	switch {
	case s.Server != nil && s.Server.Consistent && s.Server.Unsettled:
		fmt.Fprintf(w, "\nserver counters match the transport's, allowing for the %d canceled requests the server may have answered\n", s.Canceled)
	case s.Server != nil && s.Server.Consistent:
		fmt.Fprintln(w, "\nserver counters match the transport's")
	case s.Server != nil:
		fmt.Fprintln(w, "\nserver counters DISAGREE with the transport's")
	case !s.EchoChecked && s.Requests.Accepted > 0:
		fmt.Fprintln(w, "\nthe server's answers were judged by status code (they are not the reference server's echo)")
	}
}

// formatMS prints a latency, or "-" when there was no sample.
func formatMS(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 3, 64)
}

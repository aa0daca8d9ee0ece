package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/transport"
)

// LoopbackOptions configures [Loopback].
type LoopbackOptions struct {
	// Concurrency is the number of client goroutines. 0 means 8.
	Concurrency int
	// Rounds is the number of rounds of each path; the order of the paths
	// rotates from round to round so that drift favours none. 0 means 16.
	Rounds int
	// Round is how long each round sends requests. 0 means 250 ms.
	Round time.Duration
}

// Loopback paths, in the order of the first round.
const (
	PathBare  = "bare"  // the base transport, requests without a credential
	PathWire  = "wire"  // the base transport, requests that already carry the credential headers
	PathFloor = "floor" // [Floor] over the base: the tight copy with the same headers set
	PathOurs  = "ours"  // our transport (thread assertion, cached) over the base
)

// LoopbackPaths lists the paths [Loopback] measures.
var LoopbackPaths = []string{PathBare, PathWire, PathFloor, PathOurs}

// PathResult is what one loopback path achieved over all its rounds.
type PathResult struct {
	// Requests is the number completed in each round, in round order.
	Requests []int64
	// RPS is requests per second over all rounds.
	RPS float64
	// CPU is the process CPU time (client and server: both run in this
	// process) per request over all rounds; 0 where unavailable.
	CPU time.Duration
}

// LoopbackResult is the outcome of [Loopback].
type LoopbackResult struct {
	Concurrency int
	Rounds      int
	Round       time.Duration
	// Paths holds the result of each of [LoopbackPaths].
	Paths map[string]PathResult
	// Asserted counts the requests the server saw with a real
	// AgentAssertion (not the wire path's stand-in), Unauthenticated those
	// it saw without an Authorization header.
	Asserted, Unauthenticated int64
}

// Ratio is requests per second through our transport ÷ through the bare one.
func (r LoopbackResult) Ratio() float64 { return r.Paths[PathOurs].RPS / r.Paths[PathBare].RPS }

// WireRatio is requests per second of the wire path ÷ the bare one: what
// carrying the credential headers costs by itself, whoever sets them.
func (r LoopbackResult) WireRatio() float64 { return r.Paths[PathWire].RPS / r.Paths[PathBare].RPS }

// OwnRatio is requests per second through our transport ÷ the wire path
// (the bare transport sending the same header bytes): the share of the
// transport's own work (copy, lookup, routing), the loopback target.
func (r LoopbackResult) OwnRatio() float64 { return r.Paths[PathOurs].RPS / r.Paths[PathWire].RPS }

// FloorRatio is requests per second through the [Floor] ÷ the wire path:
// what the least a correct auth RoundTripper does (copy the request)
// costs on this server.
func (r LoopbackResult) FloorRatio() float64 { return r.Paths[PathFloor].RPS / r.Paths[PathWire].RPS }

// loopbackBody is the server's answer, the size of a small JSON reply.
const loopbackBody = `{"id":"resp_bench","object":"response","status":"completed","output":[]}`

// Loopback starts an http.Server on 127.0.0.1 with keep-alive and drives it
// in alternating rounds along four paths that share one http.Transport and
// its connection pool: the bare transport; the bare transport with requests
// that already carry headers of the same sizes as our credential and
// routing headers (the "wire" path: the cost of the bytes, with no
// RoundTripper work); the [Floor] (clone and set); and our transport
// (thread assertion, cached).
func Loopback(opts LoopbackOptions) (res LoopbackResult, err error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 16
	}
	if opts.Round <= 0 {
		opts.Round = 250 * time.Millisecond
	}
	res = LoopbackResult{Concurrency: opts.Concurrency, Rounds: opts.Rounds, Round: opts.Round, Paths: map[string]PathResult{}}

	var counts loopbackCounts
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{
		Handler:           counts.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := &http.Transport{
		MaxIdleConns:        2 * opts.Concurrency,
		MaxIdleConnsPerHost: 2 * opts.Concurrency,
		IdleConnTimeout:     time.Minute,
	}
	defer func() {
		base.CloseIdleConnections()
		if cerr := srv.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}()
	url := "http://" + ln.Addr().String() + "/v1/responses"

	reg := &Registrar{}
	cred, err := AgentIdentity(NewRecord())
	if err != nil {
		return res, err
	}
	ours, err := transport.New(base, transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		HTTPClient:    reg.Client(),
		Tuning: transport.Tuning{
			ExtraOrigins:      []string{"http://" + ln.Addr().String()},
			AllowInsecureHTTP: true,
		},
	})
	if err != nil {
		return res, err
	}
	ctx, cancel := HandlerContext()
	defer cancel()
	ctx = transport.WithThread(ctx, ThreadKey)
	paths, err := warmLoopbackPaths(ctx, url, base, ours, &counts, opts.Concurrency)
	if err != nil {
		return res, err
	}
	if err := loopbackRounds(opts, paths, &res); err != nil {
		return res, err
	}
	res.Asserted, res.Unauthenticated = counts.asserted.Load(), counts.unauth.Load()
	return res, nil
}

// warmLoopbackPaths builds the four paths of Loopback and warms each up:
// ours first, which tells the wire path how long the assertion is. It
// then resets the server's counts.
func warmLoopbackPaths(ctx context.Context, url string, base *http.Transport, ours http.RoundTripper, counts *loopbackCounts, concurrency int) (map[string]loopbackPath, error) {
	plain := func() *http.Request { return NewRequest(ctx, url) }

	// Warm our path first: it tells the wire path how long the assertion
	// is (the server keeps only its length, never the value).
	if _, err := drive(ours, plain, concurrency, 100*time.Millisecond); err != nil {
		return nil, err
	}
	n := counts.authLen.Load() - int64(len("AgentAssertion "))
	if n <= 0 {
		return nil, errors.New("loopback: the server saw no AgentAssertion")
	}
	wireAuth := "AgentAssertion " + strings.Repeat("w", int(n))
	wire := func() *http.Request {
		req := NewRequest(ctx, url)
		req.Header.Set("Authorization", wireAuth)
		req.Header.Set("ChatGPT-Account-ID", AccountID)
		return req
	}
	paths := map[string]loopbackPath{
		PathBare:  {base, plain},
		PathWire:  {base, wire},
		PathFloor: {Floor{Base: base}, plain},
		PathOurs:  {ours, plain},
	}
	for _, p := range []string{PathBare, PathWire, PathFloor} {
		if _, err := drive(paths[p].rt, paths[p].newReq, concurrency, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	counts.asserted.Store(0)
	counts.unauth.Store(0)

	return paths, nil
}

// loopbackCounts is what the loopback server counts: requests with a
// thread assertion, without credentials and with anything else, and the
// length of the first assertion (never its value).
type loopbackCounts struct {
	asserted, unauth, other, authLen atomic.Int64
}

// handler answers every request with loopbackBody and counts it.
func (c *loopbackCounts) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// Every path costs the handler the same: one lookup, one
		// comparison, one counter.
		switch a := r.Header.Get("Authorization"); {
		case strings.HasPrefix(a, "AgentAssertion eyJ"): // base64url of `{"`
			c.asserted.Add(1)
			if c.authLen.Load() == 0 {
				c.authLen.Store(int64(len(a)))
			}
		case a == "":
			c.unauth.Add(1)
		default:
			c.other.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, loopbackBody)
	})
}

// loopbackPath is one path of Loopback: a RoundTripper and the requests
// it sends.
type loopbackPath struct {
	rt     http.RoundTripper
	newReq func() *http.Request
}

// loopbackRounds drives every path for opts.Rounds rounds in rotating
// order and records requests per round, req/s and CPU time per request.
func loopbackRounds(opts LoopbackOptions, paths map[string]loopbackPath, res *LoopbackResult) error {
	total := map[string]int64{}
	cpu := map[string]time.Duration{}
	for i := range opts.Rounds {
		for j := range LoopbackPaths {
			name := LoopbackPaths[(i+j)%len(LoopbackPaths)]
			p := paths[name]
			cpu0 := processCPU()
			n, err := drive(p.rt, p.newReq, opts.Concurrency, opts.Round)
			if err != nil {
				return fmt.Errorf("loopback %s: %w", name, err)
			}
			cpu[name] += processCPU() - cpu0
			total[name] += n
			pr := res.Paths[name]
			pr.Requests = append(pr.Requests, n)
			res.Paths[name] = pr
		}
	}
	secs := (time.Duration(opts.Rounds) * opts.Round).Seconds()
	for name, pr := range res.Paths {
		pr.RPS = float64(total[name]) / secs
		if total[name] > 0 {
			pr.CPU = cpu[name] / time.Duration(total[name])
		}
		res.Paths[name] = pr
	}
	return nil
}

// drive sends requests made by newReq (one per goroutine, resent) through
// rt on concurrency goroutines for d and returns how many completed with 200.
func drive(rt http.RoundTripper, newReq func() *http.Request, concurrency int, d time.Duration) (int64, error) {
	var stop atomic.Bool
	var done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	for range concurrency {
		wg.Go(func() {
			req := newReq()
			for !stop.Load() {
				resp, err := rt.RoundTrip(req)
				if err == nil && resp.StatusCode != http.StatusOK {
					resp.Body.Close()
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return done.Load(), firstErr
}

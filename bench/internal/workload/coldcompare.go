package workload

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// Cold-path paths.
const (
	ColdOurs   = "ours"    // our transport: the first request of a new thread key
	ColdByHand = "by-hand" // the same by hand: register, sign, send
)

// ColdPaths lists the paths [ColdCompare] measures.
var ColdPaths = []string{ColdOurs, ColdByHand}

// ColdCompareOptions configures [ColdCompare].
type ColdCompareOptions struct {
	// Threads is the number of new thread keys each path sends its first
	// request for, at each concurrency. 0 means 600.
	Threads int
	// Concurrency lists the numbers of client goroutines. nil means 1, 8
	// and 64.
	Concurrency []int
	// Rounds splits each path's threads into this many rounds; the path
	// that goes first alternates. 0 means 4.
	Rounds int
	// Server is the reference server to use; nil starts one in this
	// process, whose CPU time then counts as the client's.
	Server *ReferenceServer
}

// ColdLevel is what one path achieved at one concurrency.
type ColdLevel struct {
	Threads int
	// PerSecond is new threads (first requests) completed per second of
	// wall time.
	PerSecond float64
	// CPU is this process's CPU time per new thread (0 where unavailable):
	// the client's alone when the server runs in another process.
	CPU time.Duration
}

// ColdCompareResult is the outcome of [ColdCompare].
type ColdCompareResult struct {
	Concurrency []int
	Rounds      int
	// ServerInProcess reports that the server ran in this process, so CPU
	// includes its work.
	ServerInProcess bool
	// Levels holds, per path, the result at each concurrency.
	Levels map[string]map[int]ColdLevel
	// Registrations is the number of thread registrations the workload
	// made per path (one per thread) or -1 when the server's counters are
	// not readable (another process).
	Registrations map[string]int
}

// CPURatio is ours ÷ by hand in CPU time per new thread at concurrency c.
func (r ColdCompareResult) CPURatio(c int) float64 {
	o, h := r.Levels[ColdOurs][c].CPU, r.Levels[ColdByHand][c].CPU
	if o <= 0 || h <= 0 {
		return 0
	}
	return float64(o) / float64(h)
}

// RateRatio is ours ÷ by hand in new threads per second at concurrency c.
func (r ColdCompareResult) RateRatio(c int) float64 {
	h := r.Levels[ColdByHand][c].PerSecond
	if h <= 0 {
		return 0
	}
	return r.Levels[ColdOurs][c].PerSecond / h
}

// ReferenceServer is a reference server (identitytest) on loopback with one
// Agent Identity, in this process or another.
type ReferenceServer struct {
	URL       string
	RuntimeID string
	// PrivateKey is the identity's key in the record's encoding. It is a
	// test key of a loopback server, but still a secret: it is never printed.
	PrivateKey string
	AccountID  string
	UserID     string

	srv  *identitytest.Server // in-process only
	stop func() error
}

// Record returns the identity as an Agent Identity record.
func (s *ReferenceServer) Record() identity.Record {
	return identity.Record{AgentRuntimeID: s.RuntimeID, AgentPrivateKey: identity.Secret(s.PrivateKey),
		AccountID: s.AccountID, ChatGPTUserID: s.UserID, PlanType: "plus"}
}

// Close stops the server (and its process).
func (s *ReferenceServer) Close() error { return s.stop() }

// referenceLine is what a server process prints once it listens.
type referenceLine struct {
	URL, RuntimeID, PrivateKey, AccountID, UserID string
}

// NewReferenceServer starts the reference server in this process.
func NewReferenceServer() (*ReferenceServer, error) {
	srv, err := identitytest.NewServer(identitytest.Options{RequestLog: -1})
	if err != nil {
		return nil, err
	}
	rec, _, err := srv.NewAgentIdentity("", identitytest.Login{})
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &ReferenceServer{URL: srv.URL(), RuntimeID: rec.AgentRuntimeID, PrivateKey: rec.AgentPrivateKey.Reveal(),
		AccountID: rec.AccountID, UserID: rec.ChatGPTUserID, srv: srv,
		stop: func() error { srv.Close(); return nil }}, nil
}

// ServeReference is the body of a reference-server process: it starts the
// server, writes one JSON line describing it (its identity's key included,
// for the parent only) to out, and serves until in reaches EOF (the parent
// closed the pipe or exited).
func ServeReference(in io.Reader, out io.Writer) error {
	s, err := NewReferenceServer()
	if err != nil {
		return err
	}
	defer s.Close()
	line, err := json.Marshal(referenceLine{s.URL, s.RuntimeID, s.PrivateKey, s.AccountID, s.UserID})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, in)
	return nil
}

// StartReferenceProcess runs cmd, which must call [ServeReference] with its
// stdin and stdout, and returns the server it announced. Close ends the
// process by closing its stdin, and waits for it.
func StartReferenceProcess(cmd *exec.Cmd) (*ReferenceServer, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() error {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case err := <-done:
			return err
		case <-t.C:
			_ = cmd.Process.Kill()
			return <-done
		}
	}
	var line referenceLine
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		stop()
		return nil, fmt.Errorf("reference server process: no announcement: %v", sc.Err())
	}
	if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.URL == "" {
		stop()
		return nil, errors.New("reference server process: unreadable announcement")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return &ReferenceServer{URL: line.URL, RuntimeID: line.RuntimeID, PrivateKey: line.PrivateKey,
		AccountID: line.AccountID, UserID: line.UserID, stop: stop}, nil
}

// byHand is the least a client does for the first request of a new thread
// with an Agent Identity: sign and send the task registration, decode the
// task id, sign the assertion and send the request with it.
type byHand struct {
	client           *http.Client
	registerURL, url string
	runtimeID, acct  string
	key              *identity.PrivateKey
}

func (h *byHand) first(thread string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig, ts := identity.RegistrationSignature(h.key, h.runtimeID, time.Now())
	body := `{"timestamp":"` + ts + `","signature":"` + sig + `","external_task_ref":"` + thread + `"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.registerURL, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	var reg struct {
		TaskID string `json:"task_id"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&reg)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || reg.TaskID == "" {
		return fmt.Errorf("by hand: registration: status %d, %v", resp.StatusCode, err)
	}
	assertion, err := identity.SignAssertion(h.key, h.runtimeID, reg.TaskID, time.Now())
	if err != nil {
		return err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, h.url, strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header["Authorization"] = []string{assertion}
	req.Header["Chatgpt-Account-Id"] = []string{h.acct}
	return send(h.client.Transport, req)
}

// oursFirst sends the first request of thread through rt, on a context
// that can be canceled, as a server handler's is (so the registration
// flight runs as it does in production: on a goroutine of its own that no
// one caller can cancel).
func oursFirst(rt http.RoundTripper, url, thread string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(transport.WithThread(ctx, thread),
		http.MethodPost, url, strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return send(rt, req)
}

// send sends req, reads the answer and checks it is a 200.
func send(rt http.RoundTripper, req *http.Request) error {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// ColdCompare compares the first request of new thread keys through our
// transport with the same done by hand (registration signature, POST,
// JSON decode, assertion signature, request), both over one shared
// http.Transport to the reference server on loopback, at each concurrency
// in rounds of alternating order. It reports new threads per second and
// this process's CPU time per new thread on each path.
func ColdCompare(opts ColdCompareOptions) (res ColdCompareResult, err error) {
	if opts.Threads <= 0 {
		opts.Threads = 600
	}
	if opts.Concurrency == nil {
		opts.Concurrency = []int{1, 8, 64}
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 4
	}
	opts.Rounds = min(opts.Rounds, opts.Threads)
	res = ColdCompareResult{Concurrency: opts.Concurrency, Rounds: opts.Rounds,
		Levels: map[string]map[int]ColdLevel{}, Registrations: map[string]int{}}
	srv := opts.Server
	if srv == nil {
		if srv, err = NewReferenceServer(); err != nil {
			return res, err
		}
		defer srv.Close()
		res.ServerInProcess = true
	}
	maxConc := 1
	for _, c := range opts.Concurrency {
		maxConc = max(maxConc, c)
	}
	base := &http.Transport{MaxIdleConns: 2 * maxConc, MaxIdleConnsPerHost: 2 * maxConc, IdleConnTimeout: time.Minute}
	defer base.CloseIdleConnections()
	rec := srv.Record()
	key, err := rec.Key()
	if err != nil {
		return res, err
	}
	cred, err := AgentIdentity(rec)
	if err != nil {
		return res, err
	}
	rt, err := transport.New(base, transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		BaseURL:       srv.URL,
	})
	if err != nil {
		return res, err
	}
	reqURL := srv.URL + identitytest.ResponsesPath
	hand := &byHand{client: &http.Client{Transport: base}, url: reqURL, runtimeID: rec.AgentRuntimeID, acct: rec.AccountID, key: key,
		registerURL: srv.URL + "/v1/agent/" + url.PathEscape(rec.AgentRuntimeID) + "/task/register"}
	var seq atomic.Int64
	first := map[string]func() error{
		ColdOurs:   func() error { return oursFirst(rt, reqURL, fmt.Sprintf("cold-ours-%d", seq.Add(1))) },
		ColdByHand: func() error { return hand.first(fmt.Sprintf("cold-hand-%d", seq.Add(1))) },
	}
	// Warm-up: connections for the highest concurrency on both paths.
	for _, p := range ColdPaths {
		if _, err := coldWave(first[p], maxConc, maxConc); err != nil {
			return res, fmt.Errorf("cold path %s: warm-up: %w", p, err)
		}
		res.Registrations[p] += maxConc
	}
	if err := coldLevels(opts, first, &res); err != nil {
		return res, err
	}
	if err := checkColdRegistrations(srv, &res); err != nil {
		return res, err
	}
	return res, nil
}

// coldLevels measures both paths at each concurrency of opts, in rounds
// of alternating order, into res.
func coldLevels(opts ColdCompareOptions, first map[string]func() error, res *ColdCompareResult) error {
	for _, c := range opts.Concurrency {
		wall := map[string]time.Duration{}
		cpu := map[string]time.Duration{}
		done := map[string]int{}
		for r := range opts.Rounds {
			n := opts.Threads/opts.Rounds + btoi(r < opts.Threads%opts.Rounds)
			for j := range ColdPaths {
				p := ColdPaths[(j+r)%len(ColdPaths)]
				cpu0 := processCPU()
				d, err := coldWave(first[p], n, c)
				if err != nil {
					return fmt.Errorf("cold path %s at %d: %w", p, c, err)
				}
				cpu[p] += processCPU() - cpu0
				wall[p] += d
				done[p] += n
			}
		}
		for _, p := range ColdPaths {
			if res.Levels[p] == nil {
				res.Levels[p] = map[int]ColdLevel{}
			}
			l := ColdLevel{Threads: done[p], PerSecond: float64(done[p]) / wall[p].Seconds()}
			if cpu[p] > 0 {
				l.CPU = cpu[p] / time.Duration(done[p])
			}
			res.Levels[p][c] = l
			res.Registrations[p] += done[p]
		}
	}
	return nil
}

// checkColdRegistrations checks that an in-process reference server
// registered exactly the threads each path sent; with the server in
// another process it marks the registrations unknown (-1).
func checkColdRegistrations(srv *ReferenceServer, res *ColdCompareResult) error {
	if srv.srv != nil {
		var ours, hand int
		for ref, n := range srv.srv.Stats().RegistrationsByExternalRef {
			switch {
			case strings.HasPrefix(ref, "cold-ours-"):
				ours += n
			case strings.HasPrefix(ref, "cold-hand-"):
				hand += n
			}
		}
		if ours != res.Registrations[ColdOurs] || hand != res.Registrations[ColdByHand] {
			return fmt.Errorf("cold path: the server registered %d (ours) and %d (by hand) threads, want %d and %d",
				ours, hand, res.Registrations[ColdOurs], res.Registrations[ColdByHand])
		}
	} else {
		res.Registrations = map[string]int{ColdOurs: -1, ColdByHand: -1}
	}
	return nil
}

// coldWave runs first n times on c goroutines and returns the wall time.
func coldWave(first func() error, n, c int) (time.Duration, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range min(c, n) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := first(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}

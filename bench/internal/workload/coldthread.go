package workload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/redisstore"
	"github.com/agentauth/agentauth/transport"
)

// RedisAddrEnv names the environment variable that points [ColdThread] at
// a running Redis (host:port), as it does the redisstore tests.
const RedisAddrEnv = "AGENTAUTH_REDIS_ADDR"

// ColdThreadOptions configures [ColdThread].
type ColdThreadOptions struct {
	// Keys is the number of new thread keys each path sends its first
	// request for. 0 means 1,000.
	Keys int
	// Rounds splits the keys of each path into this many rounds; the path
	// that goes first alternates from round to round so that drift of a
	// shared machine hits both alike. 0 means 10; it is capped at Keys.
	Rounds int
	// RedisAddr is the Redis (host:port) the Redis path uses. "" means the
	// address in $AGENTAUTH_REDIS_ADDR, or, when that is empty too, a
	// redis-server from PATH started on a free loopback port for the
	// duration of the workload; without one the result is Skipped. The
	// workload writes only keys under a prefix of its own, which it
	// deletes at the end, and flushes nothing.
	RedisAddr string
}

// ColdPathResult is the latency of the first request of a new thread key
// along one path: one task registration at the reference server plus the
// request itself, measured from the call to the response body read.
type ColdPathResult struct {
	// Mean and Median are over all the path's keys.
	Mean, Median time.Duration
	// Samples holds each key's latency, in the order sent.
	Samples []time.Duration
	// Registrations is the number of thread-task registrations the server
	// counted for the path's keys; OnceRegistered is how many of those
	// keys it registered exactly once (both equal Keys when every key
	// cost exactly one registration).
	Registrations, OnceRegistered int
}

// ColdThreadResult is the outcome of [ColdThread].
type ColdThreadResult struct {
	// Skipped reports that no Redis was available; SkipReason says why and
	// nothing else is set.
	Skipped    bool
	SkipReason string

	Keys, Rounds int
	// RedisAddr is the Redis the Redis path used; RedisStarted reports
	// whether the workload started it (and stopped it afterwards).
	RedisAddr    string
	RedisStarted bool
	// InMemory is the path without a TaskStore; Redis the one whose
	// transport has Options.Fleet.TaskStore = redisstore.New(...).
	InMemory, Redis ColdPathResult
	// Store is the Redis store's counters after the run, warm-up
	// included: Registrations should be Keys + 1 and LocalFallbacks 0,
	// otherwise some first requests did not go through Redis.
	Store redisstore.Stats
}

// Ratio is the median first-request latency with the Redis store ÷ without
// it (0 when skipped).
func (r ColdThreadResult) Ratio() float64 {
	if r.Skipped || r.InMemory.Median <= 0 {
		return 0
	}
	return float64(r.Redis.Median) / float64(r.InMemory.Median)
}

// Added is what the Redis store adds to the median first request.
func (r ColdThreadResult) Added() time.Duration { return r.Redis.Median - r.InMemory.Median }

// ColdThread starts the reference server (identitytest) on 127.0.0.1 with
// one Agent Identity and two transports for it over one shared
// http.Transport: one keeps thread tasks in memory only, the other also
// resolves them through a redisstore.Store. Both send the first request of
// opts.Keys new thread keys each, one at a time, in opts.Rounds rounds of
// alternating order; each request is timed alone. Every key must cost
// exactly one registration, which the result reports per path.
func ColdThread(opts ColdThreadOptions) (res ColdThreadResult, err error) {
	if opts.Keys <= 0 {
		opts.Keys = 1000
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 10
	}
	opts.Rounds = min(opts.Rounds, opts.Keys)
	res = ColdThreadResult{Keys: opts.Keys, Rounds: opts.Rounds}

	store, cleanup, skip, err := coldThreadStore(opts, &res)
	defer cleanup()
	if skip != "" {
		return ColdThreadResult{Skipped: true, SkipReason: skip}, nil
	}
	if err != nil {
		return res, err
	}

	srv, err := identitytest.NewServer(identitytest.Options{RequestLog: -1})
	if err != nil {
		return res, err
	}
	defer srv.Close()
	rec, _, err := srv.NewAgentIdentity("", identitytest.Login{})
	if err != nil {
		return res, err
	}
	base := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
	defer base.CloseIdleConnections()
	cred, err := AgentIdentity(rec)
	if err != nil {
		return res, err
	}
	newRT := func(withStore bool) (*transport.Transport, error) {
		opts := transport.Options{
			Credential:    cred,
			AgentIdentity: featureflag.New(false),
			BaseURL:       srv.URL(),
		}
		if withStore {
			opts.Fleet.TaskStore = store
		}
		return transport.New(base, opts)
	}
	mem, err := newRT(false)
	if err != nil {
		return res, err
	}
	red, err := newRT(true)
	if err != nil {
		return res, err
	}
	url := srv.URL() + identitytest.ResponsesPath
	paths := [2]coldThreadPath{{"mem", mem, &res.InMemory}, {"redis", red, &res.Redis}}
	if err := coldThreadRounds(opts, srv, url, paths); err != nil {
		return res, err
	}
	res.Store = store.Stats()
	return res, nil
}

// coldThreadStore returns the redisstore.Store of ColdThread on
// opts.RedisAddr, $RedisAddrEnv or a redis-server it starts, recording
// which in res; cleanup (never nil) deletes the run's keys, closes the
// client and stops a started server, in that order. skip is why the
// measurement is skipped ("" when it is not).
func coldThreadStore(opts ColdThreadOptions, res *ColdThreadResult) (store *redisstore.Store, cleanup func(), skip string, err error) {
	var cleanups []func()
	cleanup = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	addr := opts.RedisAddr
	if addr == "" {
		addr = os.Getenv(RedisAddrEnv)
	}
	if addr == "" {
		bin, lerr := exec.LookPath("redis-server")
		if lerr != nil {
			return nil, cleanup, "redis-server is not on PATH and " + RedisAddrEnv + " is unset", nil
		}
		rs, serr := startRedis(bin)
		if serr != nil {
			return nil, cleanup, "", serr
		}
		cleanups = append(cleanups, rs.stop)
		addr, res.RedisStarted = rs.addr, true
	}
	res.RedisAddr = addr

	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	cleanups = append(cleanups, func() { client.Close() })
	prefix, err := runPrefix()
	if err != nil {
		return nil, cleanup, "", err
	}
	cleanups = append(cleanups, func() { deleteKeys(client, prefix) })
	store, err = redisstore.New(client, redisstore.Options{
		Prefix: prefix,
		// Short, in case the clean-up fails: these mappings serve no one
		// after the run.
		TTL: 10 * time.Minute,
		// Generous, so that a slow moment of a shared machine is measured
		// as such rather than turned into a local fallback.
		OpTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, cleanup, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	perr := client.Ping(ctx).Err()
	cancel()
	if perr != nil {
		return nil, cleanup, "", fmt.Errorf("cold thread: Redis at %s: %w", addr, perr)
	}
	return store, cleanup, "", nil
}

// coldThreadPath is one of ColdThread's two transports and its figures.
type coldThreadPath struct {
	name string
	rt   *transport.Transport
	out  *ColdPathResult
}

// coldThreadRounds warms both paths up, sends the first request of
// opts.Keys new thread keys on each in rounds of alternating order, and
// tallies the samples and how often the server registered each key.
func coldThreadRounds(opts ColdThreadOptions, srv *identitytest.Server, url string, paths [2]coldThreadPath) error {
	key := func(p coldThreadPath, i int) string { return "cold-" + p.name + "-" + strconv.Itoa(i) }

	// Warm-up: connections, the process task, the Redis scripts.
	for _, p := range paths {
		if _, err := coldRequest(p.rt, url, key(p, -1)); err != nil {
			return fmt.Errorf("cold thread %s: warm-up: %w", p.name, err)
		}
	}
	next := [2]int{}
	for r := range opts.Rounds {
		n := opts.Keys/opts.Rounds + btoi(r < opts.Keys%opts.Rounds)
		for j := range paths {
			pi := (j + r) % len(paths)
			p := paths[pi]
			for range n {
				d, err := coldRequest(p.rt, url, key(p, next[pi]))
				if err != nil {
					return fmt.Errorf("cold thread %s: %w", p.name, err)
				}
				p.out.Samples = append(p.out.Samples, d)
				next[pi]++
			}
		}
	}

	byRef := srv.Stats().RegistrationsByExternalRef
	for _, p := range paths {
		for i := range opts.Keys {
			c := byRef[key(p, i)]
			p.out.Registrations += c
			p.out.OnceRegistered += btoi(c == 1)
		}
		p.out.Mean, p.out.Median = meanMedian(p.out.Samples)
	}
	return nil
}

// coldRequest sends the first request of thread through rt and returns
// how long it took until the body was read; the server must have verified
// a thread assertion for it.
func coldRequest(rt http.RoundTripper, url, thread string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(transport.WithThread(context.Background(), thread),
		http.MethodPost, url, strings.NewReader("{}"))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var echo identitytest.Echo
	if err := json.Unmarshal(body, &echo); err != nil {
		return 0, err
	}
	if echo.Mode != identitytest.ModeAssertion || echo.ExternalTaskRef != thread || echo.TaskID == "" {
		return 0, fmt.Errorf("the server verified mode %q for thread %q", echo.Mode, echo.ExternalTaskRef)
	}
	return d, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func meanMedian(s []time.Duration) (mean, median time.Duration) {
	if len(s) == 0 {
		return 0, 0
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	m := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		m = (sorted[len(sorted)/2-1] + m) / 2
	}
	return sum / time.Duration(len(s)), m
}

// runPrefix is a Redis key prefix no other run shares.
func runPrefix() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("agentauth:bench:coldthread:%d:%s:", time.Now().UnixNano(), hex.EncodeToString(b[:])), nil
}

// deleteKeys removes the run's keys (the prefix holds no glob
// metacharacter) so that a shared Redis is left as it was; a failure only
// leaves keys that expire by themselves.
func deleteKeys(client *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			client.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		client.Unlink(ctx, batch...)
	}
}

// redisProcess is a redis-server the workload started.
type redisProcess struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	out  *capped
}

// startRedis starts bin on a free 127.0.0.1 port without persistence and
// waits until it answers PING. A port taken between choosing and binding
// makes redis-server exit; it is tried again on another port.
func startRedis(bin string) (*redisProcess, error) {
	var errs []error
	for range 3 {
		rs, err := tryStartRedis(bin)
		if err == nil {
			return rs, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func tryStartRedis(bin string) (*redisProcess, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	rs := &redisProcess{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{}), out: &capped{max: 2048}}
	rs.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	rs.cmd.Stdout, rs.cmd.Stderr = rs.out, rs.out
	if err := rs.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	go func() { _ = rs.cmd.Wait(); close(rs.done) }()
	if err := waitPing(rs.addr, rs.done, 10*time.Second); err != nil {
		rs.stop()
		return nil, fmt.Errorf("redis-server on %s: %w; its output: %q", rs.addr, err, rs.out.String())
	}
	return rs, nil
}

// waitPing polls PING until Redis answers: the server is another process,
// so there is nothing to wait on but its socket (or its exit).
func waitPing(addr string, exited <-chan struct{}, limit time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond,
		ContextTimeoutEnabled: true, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("redis-server exited")
		case <-tick.C:
		}
	}
	return fmt.Errorf("no PING answer within %v", limit)
}

// stop terminates the server (it keeps no data) and waits for it to exit.
func (rs *redisProcess) stop() {
	if err := rs.cmd.Process.Signal(syscall.SIGTERM); err == nil {
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-rs.done:
			return
		case <-t.C:
		}
	}
	_ = rs.cmd.Process.Kill()
	<-rs.done
}

// capped keeps the first max bytes written to it, for error messages.
type capped struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(c.buf.String())
}

package redisstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// The fleet tests run each replica in its own process: the test binary
// re-executed with -test.run=^TestChildReplica$ and its configuration in
// these environment variables.
const (
	envChild       = "AGENTAUTH_REDISSTORE_CHILD"
	envServer      = "AGENTAUTH_REDISSTORE_SERVER"
	envRuntime     = "AGENTAUTH_REDISSTORE_RUNTIME"
	envKey         = "AGENTAUTH_REDISSTORE_KEY" // the private key, handed to the child only
	envAccount     = "AGENTAUTH_REDISSTORE_ACCOUNT"
	envRedis       = "AGENTAUTH_REDISSTORE_REDIS" // empty: no store
	envPrefix      = "AGENTAUTH_REDISSTORE_PREFIX"
	envThreads     = "AGENTAUTH_REDISSTORE_THREADS"
	envRequests    = "AGENTAUTH_REDISSTORE_REQUESTS"
	envLockTimeout = "AGENTAUTH_REDISSTORE_LOCK_TIMEOUT"
	envHang        = "AGENTAUTH_REDISSTORE_HANG" // "1": task registration never answers
)

func threadName(i int) string { return fmt.Sprintf("thread-%02d", i) }

// TestChildReplica is one replica process of the fleet tests. It prints
// "ready", waits for a line on stdin (the start barrier), sends REQUESTS
// requests on each of THREADS threads concurrently, printing
// "result <thread> <task id>" for each, then "stats <store stats JSON>".
func TestChildReplica(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("helper process of the fleet tests; it runs only when they re-execute the test binary")
	}
	srvURL := os.Getenv(envServer)
	rec := identity.Record{AgentRuntimeID: os.Getenv(envRuntime), AgentPrivateKey: identity.Secret(os.Getenv(envKey)),
		AccountID: os.Getenv(envAccount), ChatGPTUserID: "user-identitytest", PlanType: "plus"}
	threads, _ := strconv.Atoi(os.Getenv(envThreads))
	requests, _ := strconv.Atoi(os.Getenv(envRequests))
	var out sync.Mutex
	printf := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format, args...)
	}

	var store *Store
	if addr := os.Getenv(envRedis); addr != "" {
		opts := Options{Prefix: os.Getenv(envPrefix), OpTimeout: testOpTimeout}
		if d := os.Getenv(envLockTimeout); d != "" {
			var err error
			if opts.LockTimeout, err = time.ParseDuration(d); err != nil {
				t.Fatal(err)
			}
			opts.OpTimeout = min(opts.OpTimeout, opts.LockTimeout/3)
		}
		store = newStore(t, addr, opts)
	}
	var regClient *http.Client
	if os.Getenv(envHang) == "1" {
		hang := &hangingRegistrations{base: http.DefaultTransport.(*http.Transport).Clone(), printf: printf}
		defer hang.base.CloseIdleConnections()
		regClient = &http.Client{Transport: hang}
	}
	var r *replica
	if store != nil {
		r = newReplica(t, srvURL, rec, store, regClient)
	} else {
		r = newReplica(t, srvURL, rec, nil, regClient)
	}

	printf("ready\n")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("start barrier: %v", err)
	}
	var wg sync.WaitGroup
	for i := range threads {
		wg.Go(func() {
			for range requests {
				task, err := r.do(context.Background(), srvURL, threadName(i))
				if err != nil {
					t.Errorf("%s: %v", threadName(i), err)
					return
				}
				printf("result %s %s\n", threadName(i), task)
			}
		})
	}
	wg.Wait()
	var st Stats
	if store != nil {
		st = store.Stats()
	}
	b, _ := json.Marshal(st)
	printf("stats %s\n", b)
}

// hangingRegistrations is the registration client of a replica that takes
// the fleet lock and then never finishes registering: it reports "hung" and
// blocks until its request is abandoned (or the process is killed).
type hangingRegistrations struct {
	base   *http.Transport
	printf func(string, ...any)
}

func (h *hangingRegistrations) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/task/register") {
		return h.base.RoundTrip(req)
	}
	if req.Body != nil {
		req.Body.Close()
	}
	h.printf("hung\n")
	<-req.Context().Done()
	return nil, req.Context().Err()
}

// child is a running replica process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, closed at EOF
	stderr bytes.Buffer
	out    []string // every stdout line, once lines is drained
}

type childConfig struct {
	srv         *identitytest.Server
	rec         identity.Record
	redisAddr   string // "" runs without a store
	prefix      string
	threads     int
	requests    int
	lockTimeout time.Duration
	hang        bool
}

func startChild(t *testing.T, cfg childConfig) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildReplica$", "-test.count=1", "-test.timeout=2m")
	env := append(os.Environ(),
		envChild+"=1",
		envServer+"="+cfg.srv.URL(),
		envRuntime+"="+cfg.rec.AgentRuntimeID,
		envKey+"="+cfg.rec.AgentPrivateKey.Reveal(),
		envAccount+"="+cfg.rec.AccountID,
		envRedis+"="+cfg.redisAddr,
		envPrefix+"="+cfg.prefix,
		envThreads+"="+strconv.Itoa(cfg.threads),
		envRequests+"="+strconv.Itoa(cfg.requests),
	)
	if cfg.lockTimeout > 0 {
		env = append(env, envLockTimeout+"="+cfg.lockTimeout.String())
	}
	if cfg.hang {
		env = append(env, envHang+"=1")
	}
	cmd.Env = env
	c := &child{cmd: cmd, lines: make(chan string, 4096)}
	cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.wait()
		}
	})
	return c
}

// expect reads stdout until a line equal to want, within limit.
func (c *child) expect(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before %q; stderr:\n%s", want, c.stderr.String())
			}
			c.out = append(c.out, l)
			if l == want {
				return
			}
		case <-timer.C:
			t.Fatalf("no %q from the child within %v", want, limit)
		}
	}
}

// wait drains stdout and waits for the process to exit.
func (c *child) wait() error {
	for l := range c.lines {
		c.out = append(c.out, l)
	}
	return c.cmd.Wait()
}

// finish releases nothing: it waits for a started child and fails the test
// unless it exited cleanly.
func (c *child) finish(t *testing.T, name string) {
	t.Helper()
	if err := c.wait(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, strings.Join(c.out, "\n"), c.stderr.String())
	}
}

// results parses the child's "result" lines into thread → task ids seen,
// and its store stats.
func (c *child) results(t *testing.T) (map[string][]string, Stats) {
	t.Helper()
	res := map[string][]string{}
	var st Stats
	for _, l := range c.out {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "result":
			res[f[1]] = append(res[f[1]], f[2])
		case len(f) == 2 && f[0] == "stats":
			if err := json.Unmarshal([]byte(f[1]), &st); err != nil {
				t.Fatal(err)
			}
		}
	}
	return res, st
}

// fleet is a set of replica processes that are ready and wait for the
// start barrier.
type fleet struct {
	cfg      childConfig
	children []*child
}

// startFleet starts n replica processes and waits until each is ready.
func startFleet(t *testing.T, n int, cfg childConfig) *fleet {
	t.Helper()
	f := &fleet{cfg: cfg, children: make([]*child, n)}
	for i := range f.children {
		f.children[i] = startChild(t, cfg)
	}
	for _, c := range f.children {
		c.expect(t, "ready", 30*time.Second)
	}
	return f
}

// run releases the replicas together and returns thread → every task id
// any of them was served with, and their summed store stats.
func (f *fleet) run(t *testing.T) (map[string][]string, Stats) {
	t.Helper()
	for _, c := range f.children { // the start barrier
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	all := map[string][]string{}
	var sum Stats
	for i, c := range f.children {
		c.finish(t, fmt.Sprintf("replica %d", i))
		res, st := c.results(t)
		got := 0
		for th, tasks := range res {
			all[th] = append(all[th], tasks...)
			got += len(tasks)
		}
		if want := f.cfg.threads * f.cfg.requests; got != want {
			t.Fatalf("replica %d answered %d requests, want %d", i, got, want)
		}
		sum.Hits += st.Hits
		sum.Registrations += st.Registrations
		sum.Waits += st.Waits
		sum.Takeovers += st.Takeovers
		sum.LocalFallbacks += st.LocalFallbacks
		sum.Outages += st.Outages
	}
	return all, sum
}

// runFleet starts n replica processes, releases them together and collects
// their results.
func runFleet(t *testing.T, n int, cfg childConfig) (map[string][]string, Stats) {
	t.Helper()
	return startFleet(t, n, cfg).run(t)
}

package redisstore

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
	"github.com/redis/go-redis/v9"
)

// Environment of the provisioning replica processes (besides the fleet
// tests' envServer, envAccount, envRedis, envPrefix, envThreads and
// envRequests); the sealing key reaches them through SealingKeyEnv.
const (
	envOptIn       = "AGENTAUTH_REDISSTORE_OPTIN"        // "1": TestChildOptInReplica runs
	envAccessToken = "AGENTAUTH_REDISSTORE_ACCESS_TOKEN" // the ChatGPT login's token, child only
	envLoginPrefix = "AGENTAUTH_REDISSTORE_LOGIN_PREFIX"
)

// startChildRun re-executes the test binary to run only the test matching
// run, with env added to the environment.
func startChildRun(t *testing.T, run string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), env...)
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

// TestChildOptInReplica is one replica of TestFleetOneAgentIdentity: a
// transport on a ChatGPT login with the use_agent_identity flag on, whose
// IdentityStore and TaskStore are one sealed Store. It prints "ready",
// waits for the start barrier, sends REQUESTS requests on each of THREADS
// threads, printing "result <thread> <task id> <runtime id>", then
// "stats <transport agent registrations>".
func TestChildOptInReplica(t *testing.T) {
	if os.Getenv(envOptIn) != "1" {
		t.Skip("helper process of TestFleetOneAgentIdentity")
	}
	srvURL := os.Getenv(envServer)
	threads, _ := strconv.Atoi(os.Getenv(envThreads))
	requests, _ := strconv.Atoi(os.Getenv(envRequests))
	// The sealing key comes from SealingKeyEnv, as in production.
	store := newStore(t, os.Getenv(envRedis), Options{Prefix: os.Getenv(envPrefix), LoginPrefix: os.Getenv(envLoginPrefix)})
	if store.sealer == nil {
		t.Fatal("no sealing key in the environment")
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	rt, err := transport.New(base, transport.Options{
		// A login shares its identity through the store only when it names
		// its account and its user; transport.BearerToken names no user, so
		// the token comes from a static source that does.
		Credential: transport.ChatGPT(credentials.StaticTokenSource(credentials.Token{
			AccessToken: identity.Secret(os.Getenv(envAccessToken)), AccountID: os.Getenv(envAccount), UserID: "user-" + os.Getenv(envAccount)})),
		AgentIdentity: featureflag.New(true),
		Fleet:         transport.Fleet{IdentityStore: store, TaskStore: store},
		BaseURL:       srvURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()
	var out sync.Mutex
	printf := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format, args...)
	}
	printf("ready\n")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("start barrier: %v", err)
	}
	var wg sync.WaitGroup
	for i := range threads {
		wg.Go(func() {
			for range requests {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				echo, err := optInRequest(ctx, client, srvURL, threadName(i))
				cancel()
				if err != nil {
					t.Errorf("%s: %v", threadName(i), err)
					return
				}
				printf("result %s %s %s\n", threadName(i), echo.TaskID, echo.AgentRuntimeID)
			}
		})
	}
	wg.Wait()
	printf("stats %d\n", rt.Stats().AgentRegistrations)
}

func optInRequest(ctx context.Context, client *http.Client, srvURL, thread string) (*identitytest.Echo, error) {
	req, err := http.NewRequestWithContext(transport.WithThread(ctx, thread), http.MethodPost,
		srvURL+identitytest.ResponsesPath, strings.NewReader("{}"))
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var echo identitytest.Echo
	if err := json.Unmarshal(body, &echo); err != nil {
		return nil, err
	}
	if echo.Mode != identitytest.ModeAssertion || echo.ExternalTaskRef != thread || echo.TaskID == "" {
		return nil, fmt.Errorf("unexpected echo mode=%s ref=%q", echo.Mode, echo.ExternalTaskRef)
	}
	return &echo, nil
}

// Acceptance 2: four replica processes on one ChatGPT login with the flag
// on, started together, each with 50 threads: the fleet registers one
// agent and 50 thread tasks, every request of every replica signs with the
// one runtime, and Redis holds neither the access token nor the private
// key in the clear.
func TestFleetOneAgentIdentity(t *testing.T) {
	const replicas, threads, requests = 4, 50, 2
	addr := redisAddr(t)
	token := "fleet-optin-access-token-" + randHex(t)
	account := "acct-fleet-" + randHex(t)
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: []string{token}, RequestLog: 100000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	key := newKey(t)
	prefix := uniquePrefix(t)
	loginPrefix := prefix + "login:"
	env := []string{envOptIn + "=1", envServer + "=" + srv.URL(), envAccessToken + "=" + token, envAccount + "=" + account,
		envRedis + "=" + addr, envPrefix + "=" + prefix, envLoginPrefix + "=" + loginPrefix,
		envThreads + "=" + strconv.Itoa(threads), envRequests + "=" + strconv.Itoa(requests),
		SealingKeyEnv + "=" + base64.StdEncoding.EncodeToString(key)}
	children := make([]*child, replicas)
	for i := range children {
		children[i] = startChildRun(t, "TestChildOptInReplica", env...)
	}
	for _, c := range children {
		c.expect(t, "ready", 30*time.Second)
	}
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	runtimes := map[string]bool{}
	tasks := map[string]map[string]bool{}
	var agentRegs int
	for i, c := range children {
		c.finish(t, fmt.Sprintf("replica %d", i))
		n := 0
		for _, l := range c.out {
			f := strings.Fields(l)
			switch {
			case len(f) == 4 && f[0] == "result":
				n++
				runtimes[f[3]] = true
				if tasks[f[1]] == nil {
					tasks[f[1]] = map[string]bool{}
				}
				tasks[f[1]][f[2]] = true
			case len(f) == 2 && f[0] == "stats":
				r, _ := strconv.Atoi(f[1])
				agentRegs += r
			}
		}
		if n != threads*requests {
			t.Fatalf("replica %d answered %d requests, want %d", i, n, threads*requests)
		}
	}
	st := srv.Stats()
	if st.AgentRegistrations != 1 || agentRegs != 1 || len(runtimes) != 1 {
		t.Fatalf("%d agent registrations at the server (%d counted by the replicas), %d runtimes in use; want 1, 1, 1",
			st.AgentRegistrations, agentRegs, len(runtimes))
	}
	if st.ThreadTaskRegistrations != threads || len(tasks) != threads {
		t.Fatalf("%d thread task registrations for %d threads, want %d", st.ThreadTaskRegistrations, len(tasks), threads)
	}
	for th, ids := range tasks {
		if len(ids) != 1 {
			t.Fatalf("%s used %d tasks across the fleet", th, len(ids))
		}
	}
	t.Logf("%d replicas × %d threads: %d agent registration, %d thread task registrations", replicas, threads, st.AgentRegistrations, st.ThreadTaskRegistrations)

	// The fleet's identity, read back with the sealing key, is the one in use.
	s := newSealedStore(t, addr, newSealer(t, key), Options{Prefix: prefix, LoginPrefix: loginPrefix})
	rec, err := s.LoadAgentIdentity(context.Background(), credentials.Login{AccountID: account, UserID: "user-" + account})
	if err != nil || rec == nil || !runtimes[rec.AgentRuntimeID] {
		t.Fatalf("stored identity %v, %v; runtimes in use %v", rec, err, slices.Collect(maps.Keys(runtimes)))
	}
	secrets := []string{token, rec.AgentPrivateKey.Reveal()}
	for _, r := range srv.Requests() {
		if h := r.Header.Get("Authorization"); h != "" {
			secrets = append(secrets, h, strings.TrimPrefix(h, "AgentAssertion "))
		}
	}
	scanAll(t, addr, secrets, []string{account, rec.AgentRuntimeID, "thread-"})
}

// scanAll is acceptance 5 over the whole database: SCAN every key and read
// it whole (GET for strings, HGETALL for hashes); no key name or value may
// contain a secret, and no key name may contain any of names.
func scanAll(t *testing.T, addr string, secrets, names []string) {
	t.Helper()
	c := newClient(t, addr)
	ctx := context.Background()
	var scanned, hashes int
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		scanned++
		values, isHash := readValues(t, c, k)
		if isHash {
			hashes++
		}
		for _, s := range secrets {
			if s == "" {
				continue
			}
			if strings.Contains(k, s) {
				t.Fatalf("key name %q holds a secret", k)
			}
			for _, v := range values {
				if strings.Contains(v, s) {
					t.Fatalf("the value of %q holds a secret", k)
				}
			}
		}
		for _, n := range names {
			if strings.Contains(k, n) {
				t.Fatalf("key name %q reveals %q", k, n)
			}
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("scanned %d keys (%d hashes) against %d secrets: none found", scanned, hashes, len(secrets))
}

// readValues reads key k whole: its value (GET) for a string, its fields
// and values (HGETALL) for a hash, nothing when it expired meanwhile.
func readValues(t *testing.T, c *redis.Client, k string) (values []string, isHash bool) {
	t.Helper()
	ctx := context.Background()
	typ, err := c.Type(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	switch typ {
	case "string":
		v, err := c.Get(ctx, k).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		return []string{v}, false
	case "hash":
		h, err := c.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range h {
			values = append(values, f, v)
		}
		return values, true
	case "none":
		return nil, false
	}
	t.Fatalf("key %q has unexpected type %s", k, typ)
	return nil, false
}

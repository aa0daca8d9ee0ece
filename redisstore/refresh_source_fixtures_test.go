package redisstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// The refresh-source tests run the refreshing token source of package
// credentials (the one a service uses) over this package's Coordinator,
// against identitytest's token endpoint, whose refresh tokens are single
// use: a second token request for one generation would be answered
// refresh_token_reused.

const (
	envSourceReplica = "AGENTAUTH_REDISSTORE_SOURCE_REPLICA" // "1": TestChildSourceReplica runs
	envSourceHolder  = "AGENTAUTH_REDISSTORE_SOURCE_HOLDER"  // "request" or "release": TestChildSourceHolder runs
	envSeedID        = "AGENTAUTH_REDISSTORE_SEED_ID"
	sourceAccount    = "acct-source-fleet"
)

// sourceStoreOptions are the Store options of every replica of these
// tests: fast polling, so a replica waiting for the fleet lock sees it
// free within a few milliseconds.
func sourceStoreOptions(loginPrefix string, opTimeout time.Duration) Options {
	return Options{LoginPrefix: loginPrefix, OpTimeout: opTimeout, PollInterval: 5 * time.Millisecond, MaxPollInterval: 20 * time.Millisecond}
}

// sourceReplica is one service instance on the fleet's login: its own
// Store (Redis connections), Coordinator, refreshing token source and
// transport.
type sourceReplica struct {
	coord *Coordinator
	src   *credentials.RefreshingTokenSource
	srv   string // base URL of the resource server
	http  *http.Client

	requests, failed atomic.Int64
	mu               sync.Mutex
	errs             []string // the first few failures
}

func newSourceReplica(tb testing.TB, s *Store, seed *credentials.TokenSet, lockTimeout time.Duration, tokenURL, srvURL string) *sourceReplica {
	tb.Helper()
	c := coordinator(tb, s, credentials.Login{AccountID: sourceAccount}, CoordinatorOptions{Initial: seed, LockTimeout: lockTimeout})
	base := http.DefaultTransport.(*http.Transport).Clone()
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{Coordinator: c, TokenURL: tokenURL,
		HTTPClient: &http.Client{Transport: base}, Getenv: func(string) string { return "" }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(src.Close)
	rt, err := transport.New(base, transport.Options{Credential: transport.ChatGPT(src), BaseURL: srvURL,
		AgentIdentity: featureflag.New(false)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(base.CloseIdleConnections)
	return &sourceReplica{coord: c, src: src, srv: srvURL, http: &http.Client{Transport: rt}}
}

// do sends one request to a protected resource, each bounded by its own
// 5 s deadline, and counts it.
func (r *sourceReplica) do() {
	r.requests.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.srv+identitytest.ResponsesPath, strings.NewReader("{}"))
	resp, err := r.http.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	if err != nil {
		r.failed.Add(1)
		r.mu.Lock()
		if len(r.errs) < 5 {
			r.errs = append(r.errs, err.Error())
		}
		r.mu.Unlock()
	}
}

// run sends a request every 10 ms until stop is closed; wg tracks it.
func (r *sourceReplica) run(wg *sync.WaitGroup, stop <-chan struct{}) {
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			r.do()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
}

func (r *sourceReplica) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "; ")
}

// TestChildSourceReplica is one replica process of
// TestFleetRefreshingSourceOncePerExpiry. It prints "ready", waits for a
// line on stdin (the start barrier), sends a request every 10 ms for
// DURATION, then prints "stats <requests> <failed> <token requests>".
func TestChildSourceReplica(t *testing.T) {
	if os.Getenv(envSourceReplica) != "1" {
		t.Skip("helper process of TestFleetRefreshingSourceOncePerExpiry")
	}
	d, err := time.ParseDuration(os.Getenv(envDuration))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, os.Getenv(envRedis), sourceStoreOptions(os.Getenv(envLoginPrefix), time.Second))
	seed := &credentials.TokenSet{AccessToken: os.Getenv(envSeedAccess), RefreshToken: os.Getenv(envSeedRefresh),
		IDToken: os.Getenv(envSeedID), AccountID: sourceAccount}
	r := newSourceReplica(t, s, seed, 10*time.Second, os.Getenv(envTokenURL), os.Getenv(envServer))
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("start barrier: %v", err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	r.run(&wg, stop)
	time.Sleep(d) // the run's length, not a synchronisation
	close(stop)
	wg.Wait()
	if f := r.failures(); f != "" {
		fmt.Fprintln(os.Stderr, f)
	}
	fmt.Printf("stats %d %d %d\n", r.requests.Load(), r.failed.Load(), r.src.TokenRequests())
}

package redisstore

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

// The tests of this file run the refreshing token source of package
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
	rt, err := transport.New(base, transport.Config{TokenSource: src, ChatGPTBaseURL: srvURL, AuthAPIBaseURL: srvURL,
		AllowInsecureHTTP: true})
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

// Acceptance 1 with the real refreshing token source: four replica
// processes on one ChatGPT login, access tokens living 2 s, for 30 s (6 s
// with -short): exactly one token request per expiry fleet-wide, no
// refresh_token_reused, zero failed requests.
func TestFleetRefreshingSourceOncePerExpiry(t *testing.T) {
	const replicas, life = 4, 2 * time.Second
	duration := 30 * time.Second
	if testing.Short() {
		duration = 6 * time.Second
	}
	addr := redisAddr(t)
	srv, err := identitytest.NewServer(identitytest.Options{TokenLifetime: life})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	login, err := srv.IssueLogin(identitytest.Login{AccountID: sourceAccount, UserID: "user-source"})
	if err != nil {
		t.Fatal(err)
	}
	env := []string{envSourceReplica + "=1", envServer + "=" + srv.URL(), envTokenURL + "=" + srv.TokenURL(), envRedis + "=" + addr,
		envLoginPrefix + "=" + uniquePrefix(t), envSeedAccess + "=" + login.AccessToken, envSeedRefresh + "=" + login.RefreshToken,
		envSeedID + "=" + login.IDToken, envDuration + "=" + duration.String(),
		SealingKeyEnv + "=" + base64.StdEncoding.EncodeToString(newKey(t))}
	children := make([]*child, replicas)
	for i := range children {
		children[i] = startChildRun(t, "TestChildSourceReplica", env...)
	}
	for _, c := range children {
		c.expect(t, "ready", 30*time.Second)
	}
	start := time.Now()
	for _, c := range children {
		io.WriteString(c.stdin, "go\n")
	}
	var requests, failed, tokenRequests int
	for i, c := range children {
		c.finish(t, fmt.Sprintf("replica %d", i))
		for _, l := range c.out {
			if f := strings.Fields(l); len(f) == 4 && f[0] == "stats" {
				n := make([]int, 3)
				for j := range n {
					n[j], _ = strconv.Atoi(f[j+1])
				}
				requests, failed, tokenRequests = requests+n[0], failed+n[1], tokenRequests+n[2]
			}
		}
	}
	took := time.Since(start)
	st := srv.Stats()
	reused := st.RejectionsByReason[identitytest.CodeRefreshTokenReused]
	t.Logf("%d replicas, %v tokens, %v: %d token refreshes at the server (%d token requests by the replicas), %d reused, %d requests, %d failed, %d rejections %v",
		replicas, life, took.Round(time.Millisecond), st.TokenRefreshes, tokenRequests, reused, requests, failed, st.Rejections, st.RejectionsByReason)
	if requests < replicas || reused != 0 || failed != 0 {
		t.Fatalf("%d requests: %d refresh_token_reused, %d failed", requests, reused, failed)
	}
	// A second token request for one generation would present a used
	// refresh token, so no reuse and every request a refresh means one
	// token request per generation. The rate bounds catch refreshing far
	// ahead of expiry (a fixed 5-minute window made every request start
	// one) and not refreshing at all: a generation lives at least its
	// lifetime minus a second (exp is in whole seconds) minus the window.
	if tokenRequests != st.TokenRefreshes {
		t.Fatalf("the replicas sent %d token requests, the server counted %d refreshes", tokenRequests, st.TokenRefreshes)
	}
	minGeneration := life - time.Second - credentials.RefreshWindowFor(start, start.Add(life))
	if lo, hi := int(duration/life)-1, int(took/minGeneration)+2; st.TokenRefreshes < lo || st.TokenRefreshes > hi {
		t.Fatalf("%d token refreshes in %v with %v tokens; want one per expiry (%d to %d)", st.TokenRefreshes, took, life, lo, hi)
	}
}

// tokenGate fronts identitytest: while armed, the next token request is
// swallowed (it never reaches the endpoint, so nothing rotates) and hangs
// until its client goes away or quit is closed, and hit is closed. It records when each
// token request the endpoint answered 200 was answered.
type tokenGate struct {
	next  http.Handler
	armed atomic.Bool
	hit   chan struct{}
	quit  chan struct{}

	mu        sync.Mutex
	rotations []time.Time
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

func (g *tokenGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != identitytest.TokenPath {
		g.next.ServeHTTP(w, r)
		return
	}
	if g.armed.CompareAndSwap(true, false) {
		// Reading the body to its end lets the server notice the client
		// going away, which cancels r's context.
		io.Copy(io.Discard, r.Body)
		close(g.hit)
		select {
		case <-r.Context().Done():
		case <-g.quit:
		}
		panic(http.ErrAbortHandler)
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	g.next.ServeHTTP(sw, r)
	if sw.status == http.StatusOK {
		g.mu.Lock()
		g.rotations = append(g.rotations, time.Now())
		g.mu.Unlock()
	}
}

// holderCoordinator is the coordinator of a replica that dies after
// storing its rotation and before releasing the fleet lock: its release
// never returns.
type holderCoordinator struct{ *Coordinator }

func (h holderCoordinator) Lock(ctx context.Context) (func(), error) {
	if _, err := h.Coordinator.Lock(ctx); err != nil {
		return nil, err
	}
	return func() { select {} }, nil
}

func (h holderCoordinator) CompareAndSwap(ctx context.Context, prev, next *credentials.TokenSet) error {
	err := h.Coordinator.CompareAndSwap(ctx, prev, next)
	if err == nil {
		fmt.Println("swapped")
	}
	return err
}

// TestChildSourceHolder is the replica of
// TestFleetRefreshingSourceHolderKilled that dies mid-refresh. It prints
// "ready", reads "<access> <refresh> <id>" (the login's tokens) from
// stdin and refreshes them as after a 401. With "request" its token
// request hangs (the test's gate holds it); with "release" it stores the
// rotation, prints "swapped" and never releases the lock. Either way it is
// killed there, holding the fleet lock.
func TestChildSourceHolder(t *testing.T) {
	mode := os.Getenv(envSourceHolder)
	if mode == "" {
		t.Skip("helper process of TestFleetRefreshingSourceHolderKilled")
	}
	lockTimeout, err := time.ParseDuration(os.Getenv(envLockTimeout))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, os.Getenv(envRedis), sourceStoreOptions(os.Getenv(envLoginPrefix), lockTimeout/3))
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 {
		t.Fatalf("want the login's tokens on stdin: %v", err)
	}
	seed := &credentials.TokenSet{AccessToken: f[0], RefreshToken: f[1], IDToken: f[2], AccountID: sourceAccount}
	var coord credentials.RefreshCoordinator = coordinator(t, s, credentials.Login{AccountID: sourceAccount}, CoordinatorOptions{Initial: seed, LockTimeout: lockTimeout})
	if mode == "release" {
		coord = holderCoordinator{coord.(*Coordinator)}
	}
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{Coordinator: coord, TokenURL: os.Getenv(envTokenURL),
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Refresh(context.Background(), nil) // blocks: killed meanwhile
	t.Fatalf("the holder's refresh returned (%v); it should have been killed", err)
}

// Acceptance 3 with the real refreshing token source: a replica process
// holding the fleet's refresh lock is SIGKILLed mid-refresh, with its
// token request in flight ("request") or after storing the rotation but
// before releasing the lock ("release"). Two replicas serving requests
// meanwhile take over once the lock times out: with the request lost
// they refresh from the set the fleet still has; with the rotation stored
// they adopt it with no token request. No rotation is lost (nothing is
// ever refresh_token_reused) and no request fails, through the login's
// expiry.
func TestFleetRefreshingSourceHolderKilled(t *testing.T) {
	for _, mode := range []string{"request", "release"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			const life, lockTimeout = 4 * time.Second, 1500 * time.Millisecond
			addr := redisAddr(t)
			srv, err := identitytest.NewServer(identitytest.Options{TokenLifetime: life})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			gate := &tokenGate{next: srv.Handler(), hit: make(chan struct{}), quit: make(chan struct{})}
			front := httptest.NewServer(gate)
			t.Cleanup(front.Close)
			t.Cleanup(func() { close(gate.quit) }) // runs first: Close waits for the hung request
			tokenURL := front.URL + identitytest.TokenPath
			key := newKey(t)
			loginPrefix := uniquePrefix(t)

			holder := startChildRun(t, "TestChildSourceHolder", envSourceHolder+"="+mode, envRedis+"="+addr,
				envLoginPrefix+"="+loginPrefix, envLockTimeout+"="+lockTimeout.String(), envTokenURL+"="+tokenURL,
				SealingKeyEnv+"="+base64.StdEncoding.EncodeToString(key))
			holder.expect(t, "ready", 30*time.Second)

			login, err := srv.IssueLogin(identitytest.Login{AccountID: sourceAccount, UserID: "user-source"})
			if err != nil {
				t.Fatal(err)
			}
			seed := &credentials.TokenSet{AccessToken: login.AccessToken, RefreshToken: login.RefreshToken, IDToken: login.IDToken, AccountID: sourceAccount}
			sealer := newSealer(t, key)
			survivors := make([]*sourceReplica, 2)
			for i := range survivors {
				s := newSealedStore(t, addr, sealer, sourceStoreOptions(loginPrefix, 500*time.Millisecond))
				survivors[i] = newSourceReplica(t, s, seed, 10*time.Second, tokenURL, front.URL)
				survivors[i].do() // loads (and seeds) the login
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			stopped := false
			halt := func() {
				if !stopped {
					stopped = true
					close(stop)
					wg.Wait()
				}
			}
			defer halt()
			for _, r := range survivors {
				r.run(&wg, stop)
			}

			if mode == "request" {
				gate.armed.Store(true)
			}
			if _, err := io.WriteString(holder.stdin, login.AccessToken+" "+login.RefreshToken+" "+login.IDToken+"\n"); err != nil {
				t.Fatal(err)
			}
			switch mode {
			case "request":
				select {
				case <-gate.hit:
				case <-time.After(30 * time.Second):
					t.Fatal("the holder sent no token request")
				}
			case "release":
				holder.expect(t, "swapped", 30*time.Second)
			}
			locked := time.Now() // the holder took the lock just before
			holder.cmd.Process.Kill()
			holder.wait()

			// A 401 on the login's first token makes a survivor refresh now,
			// while the dead holder's lock still stands.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tok, err := survivors[0].src.Refresh(ctx, &credentials.Token{AccessToken: identity.Secret(login.AccessToken)})
			took := time.Since(locked)
			if err != nil {
				t.Fatalf("the survivor's refresh failed: %v", err)
			}
			if tok.AccessToken == identity.Secret(login.AccessToken) {
				t.Fatal("the survivor's refresh returned the rejected token")
			}
			switch mode {
			case "request":
				// Only after the lock timed out, and with one token request
				// from the set the dead holder left unchanged.
				if took < lockTimeout-250*time.Millisecond || took > lockTimeout+5*time.Second {
					t.Fatalf("took over %v after the holder locked; lock timeout %v", took, lockTimeout)
				}
				// One token request from the fleet: the survivor asked, or
				// (the takeover waits out the lock and a lapsed holder's
				// grace, by which time the token is due) the other survivor
				// refreshed ahead under the lock and this one adopted it.
				if n := survivors[0].src.TokenRequests() + survivors[1].src.TokenRequests(); n != 1 {
					t.Fatalf("the survivors sent %d token requests, want 1", n)
				}
			case "release":
				// The dead holder's rotation is in the fleet: adopted as is.
				if n := survivors[0].src.TokenRequests(); n != 0 || srv.Stats().TokenRefreshes != 1 {
					t.Fatalf("the survivor sent %d token requests (server: %d refreshes); the holder's rotation was not adopted", n, srv.Stats().TokenRefreshes)
				}
			}

			// Serve past the login's first expiry.
			select {
			case <-time.After(time.Until(login.Expiry.Add(time.Second))):
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			halt()
			st := srv.Stats()
			var requests, failed, tokenRequests int64
			for i, r := range survivors {
				requests += r.requests.Load()
				failed += r.failed.Load()
				tokenRequests += r.src.TokenRequests()
				if f := r.failures(); f != "" {
					t.Errorf("survivor %d: %s", i, f)
				}
			}
			holderRotations := map[string]int64{"request": 0, "release": 1}[mode]
			reused := st.RejectionsByReason[identitytest.CodeRefreshTokenReused]
			t.Logf("%s: survivor refreshed %v after the holder locked; %d requests, %d failed; %d token refreshes (%d by the survivors), %d reused",
				mode, took.Round(time.Millisecond), requests, failed, st.TokenRefreshes, tokenRequests, reused)
			if failed != 0 || reused != 0 {
				t.Fatalf("%d failed requests, %d refresh_token_reused", failed, reused)
			}
			if int64(st.TokenRefreshes) != tokenRequests+holderRotations {
				t.Fatalf("%d token refreshes at the server, %d by the survivors and %d by the holder", st.TokenRefreshes, tokenRequests, holderRotations)
			}
		})
	}
}

// warnSignal records a Store's log and closes warned at its first
// warning (a Coordinator logs one per outage).
type warnSignal struct {
	*logRecorder
	once   sync.Once
	warned chan struct{}
}

func (w *warnSignal) Handle(ctx context.Context, r slog.Record) error {
	err := w.logRecorder.Handle(ctx, r)
	if r.Level == slog.LevelWarn {
		w.once.Do(func() { close(w.warned) })
	}
	return err
}
func (w *warnSignal) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnSignal) WithGroup(string) slog.Handler      { return w }

// Acceptance 4 with the real refreshing token source: Redis stops (frozen,
// or killed and its data lost) before the login's token is due, and stays
// down until each replica's refresh ahead has failed on it. No request
// fails meanwhile: the still-valid token stays in use, and no replica
// refreshes on its own. Once Redis answers again, the next attempt is
// coordinated again: one token request fleet-wide (after a kill, from the
// set the replicas re-seed), none reused.
func TestFleetRefreshingSourceRedisOutage(t *testing.T) {
	for _, mode := range []string{"paused", "killed"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			// 8 s tokens are due 2 s before they expire: the first retry
			// after the failed refresh ahead (0.5 to 1 s later) finds Redis
			// back, and even a second one (1 to 2 s after that) would
			// mostly come before the expiry.
			const replicas, life = 2, 8 * time.Second
			r := startRedis(t, 0)
			srv, err := identitytest.NewServer(identitytest.Options{TokenLifetime: life})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			login, err := srv.IssueLogin(identitytest.Login{AccountID: sourceAccount, UserID: "user-source"})
			if err != nil {
				t.Fatal(err)
			}
			seed := &credentials.TokenSet{AccessToken: login.AccessToken, RefreshToken: login.RefreshToken, IDToken: login.IDToken, AccountID: sourceAccount}
			sealer := newSealer(t, newKey(t))
			loginPrefix := uniquePrefix(t)
			nodes := make([]*sourceReplica, replicas)
			logs := make([]*warnSignal, replicas)
			for i := range nodes {
				logs[i] = &warnSignal{logRecorder: &logRecorder{}, warned: make(chan struct{})}
				opts := sourceStoreOptions(loginPrefix, 300*time.Millisecond)
				opts.Logger = slog.New(logs[i])
				nodes[i] = newSourceReplica(t, newSealedStore(t, r.addr, sealer, opts), seed, 5*time.Second, srv.TokenURL(), srv.URL())
				nodes[i].do() // loads (and seeds) the login
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			stopped := false
			halt := func() {
				if !stopped {
					stopped = true
					close(stop)
					wg.Wait()
				}
			}
			defer halt()
			for _, n := range nodes {
				n.run(&wg, stop)
			}

			switch mode {
			case "paused":
				r.pause()
			case "killed":
				r.kill()
			}
			down := time.Now()
			due := login.Expiry.Add(-credentials.RefreshWindowFor(login.Expiry.Add(-life), login.Expiry)) // when the refresh ahead starts
			for i, l := range logs {
				select {
				case <-l.warned:
				case <-time.After(time.Until(login.Expiry)):
					t.Fatalf("replica %d did not meet the outage before its token expired", i)
				}
			}
			warned := time.Now()
			before := nodes[0].requests.Load() + nodes[1].requests.Load()
			if tr := srv.Stats().TokenRefreshes; tr != 0 {
				t.Fatalf("%d token refreshes during the outage; want none without the fleet lock", tr)
			}
			switch mode {
			case "paused":
				r.resume()
			case "killed":
				r.restart()
			}
			outage, back := time.Since(down), time.Since(warned)

			time.Sleep(time.Until(login.Expiry.Add(time.Second))) // serve past the expiry: the run's length
			halt()
			st := srv.Stats()
			var requests, failed, tokenRequests int64
			for i, n := range nodes {
				requests += n.requests.Load()
				failed += n.failed.Load()
				tokenRequests += n.src.TokenRequests()
				if f := n.failures(); f != "" {
					t.Errorf("replica %d: %s", i, f)
				}
				if cs := n.coord.Stats(); cs.Outages != 1 || cs.Down || cs.Uncoordinated != 0 {
					t.Errorf("replica %d: coordinator %+v; want one outage, over, no uncoordinated refresh", i, cs)
				}
				if logs[i].count("WARN") != 1 || logs[i].count("INFO") != 1 {
					t.Errorf("replica %d: want one outage warning and one recovery record:\n%s", i, logs[i].all())
				}
			}
			reused := st.RejectionsByReason[identitytest.CodeRefreshTokenReused]
			t.Logf("%s: Redis down %v (back %v after the replicas met the outage; token due about %v after it went down, expired %v after); %d requests (%d before it returned), %d failed; %d token refreshes, %d reused",
				mode, outage.Round(time.Millisecond), back.Round(time.Millisecond), due.Sub(down).Round(100*time.Millisecond), login.Expiry.Sub(down).Round(100*time.Millisecond),
				requests, before, failed, st.TokenRefreshes, reused)
			if failed != 0 || reused != 0 {
				t.Fatalf("%d failed requests, %d refresh_token_reused", failed, reused)
			}
			if st.TokenRefreshes != 1 || tokenRequests != 1 {
				t.Fatalf("%d token refreshes at the server (%d token requests); want exactly one for the expiry", st.TokenRefreshes, tokenRequests)
			}
		})
	}
}

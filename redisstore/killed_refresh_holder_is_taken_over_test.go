package redisstore

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

// The tests of this file run the refreshing token source of package
// credentials (the one a service uses) over this package's Coordinator,
// against identitytest's token endpoint, whose refresh tokens are single
// use: a second token request for one generation would be answered
// refresh_token_reused.

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

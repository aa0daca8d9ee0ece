package redisstore

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// The tests of this file run the refreshing token source of package
// credentials (the one a service uses) over this package's Coordinator,
// against identitytest's token endpoint, whose refresh tokens are single
// use: a second token request for one generation would be answered
// refresh_token_reused.

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

func (w *warnSignal) WithGroup(string) slog.Handler { return w }

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

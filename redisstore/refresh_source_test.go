//go:build agentauth_refreshing_source

package redisstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/transport"
)

// This file needs credentials.NewRefreshingTokenSource and identitytest's
// token endpoint: go test -tags agentauth_refreshing_source.

const (
	envSourceReplica = "AGENTAUTH_REDISSTORE_SOURCE_REPLICA" // "1": TestChildSourceReplica runs
	envSeedID        = "AGENTAUTH_REDISSTORE_SEED_ID"
	sourceAccount    = "acct-source-fleet"
)

// TestChildSourceReplica is one replica of TestFleetRefreshingSourceOncePerExpiry:
// a transport whose TokenSource is the lifecycle's refreshing source on this
// package's Coordinator. For DURATION it sends a request every 10 ms, then
// prints "stats <requests> <failed> <token requests>".
func TestChildSourceReplica(t *testing.T) {
	if os.Getenv(envSourceReplica) != "1" {
		t.Skip("helper process of TestFleetRefreshingSourceOncePerExpiry")
	}
	d, err := time.ParseDuration(os.Getenv(envDuration))
	if err != nil {
		t.Fatal(err)
	}
	srvURL := os.Getenv(envServer)
	s := newStore(t, os.Getenv(envRedis), Options{LoginPrefix: os.Getenv(envLoginPrefix), OpTimeout: time.Second,
		PollInterval: 5 * time.Millisecond, MaxPollInterval: 20 * time.Millisecond})
	seed := &credentials.TokenSet{AccessToken: os.Getenv(envSeedAccess), RefreshToken: os.Getenv(envSeedRefresh),
		IDToken: os.Getenv(envSeedID), AccountID: sourceAccount}
	c := coordinator(t, s, credentials.Login{AccountID: sourceAccount}, CoordinatorOptions{Initial: seed, LockTimeout: 10 * time.Second})
	src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{Coordinator: c, TokenURL: os.Getenv(envTokenURL)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	rt, err := transport.New(base, transport.Config{TokenSource: src, ChatGPTBaseURL: srvURL, AuthAPIBaseURL: srvURL, AllowInsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: rt}
	fmt.Println("ready")
	var line [3]byte
	os.Stdin.Read(line[:])
	var requests, failed int
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		requests++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srvURL+identitytest.ResponsesPath, strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		cancel()
		if err != nil {
			failed++
			fmt.Fprintln(os.Stderr, err)
		}
	}
	fmt.Printf("stats %d %d %d\n", requests, failed, src.TokenRequests())
}

// Acceptance 1: four replica processes on one ChatGPT login, access tokens
// living 2 s, 30 s (6 s with -short): exactly one token request per expiry
// fleet-wide, no refresh_token_reused, zero failed requests.
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
	login, err := srv.IssueLogin(identitytest.LoginClaims{AccountID: sourceAccount, UserID: "user-source"})
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
	reused := st.RejectionsByReason["refresh_token_reused"]
	t.Logf("%d replicas, %v tokens, %v: %d token refreshes at the server (%d token requests by the replicas), %d reused, %d requests, %d failed",
		replicas, life, took.Round(time.Millisecond), st.TokenRefreshes, tokenRequests, reused, requests, failed)
	if reused != 0 || failed != 0 {
		t.Fatalf("%d refresh_token_reused, %d failed requests", reused, failed)
	}
	// A second token request for one generation would present a used
	// refresh token, so no reuse means one request per generation. The
	// rate bound catches refreshing far ahead of expiry: a generation
	// lives at least life minus a second (exp is in whole seconds) minus
	// the refresh window.
	if tokenRequests != st.TokenRefreshes {
		t.Fatalf("the replicas sent %d token requests, the server counted %d refreshes", tokenRequests, st.TokenRefreshes)
	}
	minGeneration := life - time.Second - credentials.RefreshWindow
	if minGeneration <= 0 {
		t.Fatalf("credentials.RefreshWindow %v leaves no room for a %v token: every request refreshes ahead", credentials.RefreshWindow, life)
	}
	if maxRotations := int(took/minGeneration) + 2; st.TokenRefreshes > maxRotations || st.TokenRefreshes < int(duration/life)-1 {
		t.Fatalf("%d token refreshes in %v with %v tokens; want one per expiry (%d to %d)", st.TokenRefreshes, took, life, int(duration/life)-1, maxRotations)
	}
}

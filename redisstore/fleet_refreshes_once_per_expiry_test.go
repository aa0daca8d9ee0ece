package redisstore

import (
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// This test runs the refreshing token source of package
// credentials (the one a service uses) over this package's Coordinator,
// against identitytest's token endpoint, whose refresh tokens are single
// use: a second token request for one generation would be answered
// refresh_token_reused.

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

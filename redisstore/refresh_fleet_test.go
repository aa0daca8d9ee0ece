package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// The refresh fleet test drives the Coordinator with a minimal model
// refresher in test code, against a model token endpoint with millisecond
// expiries, so the coordination protocol is proven on its own; the same
// acceptance with credentials' refreshing token source is
// TestFleetRefreshingSourceOncePerExpiry (refresh_source_test.go).
const (
	envRefreshReplica = "AGENTAUTH_REDISSTORE_REFRESH_REPLICA" // "1": TestChildRefreshReplica runs
	envTokenURL       = "AGENTAUTH_REDISSTORE_TOKEN_URL"
	envSeedAccess     = "AGENTAUTH_REDISSTORE_SEED_ACCESS"  // child only
	envSeedRefresh    = "AGENTAUTH_REDISSTORE_SEED_REFRESH" // child only
	envDuration       = "AGENTAUTH_REDISSTORE_DURATION"
	refreshAccount    = "acct-refresh-fleet"
	// refreshMargin is how long before expiry the model refresher renews.
	refreshMargin = 500 * time.Millisecond
)

// tokenServer is an OAuth token endpoint with single-use refresh tokens
// (presenting a used one is refresh_token_reused, as the real one answers)
// and a protected resource that accepts only unexpired access tokens.
type tokenServer struct {
	life time.Duration

	mu       sync.Mutex
	current  string               // the one refresh token that works
	used     map[string]bool      // refresh tokens already redeemed
	access   map[string]time.Time // issued access token → expiry
	requests int                  // token requests
	reused   int                  // refresh_token_reused answers
	served   int                  // accepted resource requests
	rejected int                  // resource requests with a bad or expired token
	times    []time.Time          // when each rotation was issued
}

func newTokenServer(life time.Duration) *tokenServer {
	return &tokenServer{life: life, used: map[string]bool{}, access: map[string]time.Time{}}
}

// issue mints a set; the access token is JWT-shaped with a millisecond exp.
func (s *tokenServer) issue() (access, refresh string) {
	b := make([]byte, 12)
	rand.Read(b)
	exp := time.Now().Add(s.life)
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"exp":%.3f}`, float64(exp.UnixMilli())/1000))
	access = "eyJhbGciOiJub25lIn0." + payload + "." + base64.RawURLEncoding.EncodeToString(b)
	refresh = "rt-fleet-" + base64.RawURLEncoding.EncodeToString(b)
	s.access[access] = exp
	s.current = refresh
	return access, refresh
}

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/oauth/token":
		var req struct {
			RefreshToken string `json:"refresh_token"`
		}
		json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests++
		if req.RefreshToken != s.current || s.used[req.RefreshToken] {
			s.reused++
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"refresh_token_reused"}`)
			return
		}
		s.used[req.RefreshToken] = true
		s.times = append(s.times, time.Now())
		access, refresh := s.issue()
		json.NewEncoder(w).Encode(map[string]string{"access_token": access, "refresh_token": refresh, "id_token": "idt-" + refresh})
	case "/resource":
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		exp, ok := s.access[tok]
		if ok && time.Now().Before(exp) {
			s.served++
		} else {
			s.rejected++
			ok = false
		}
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
		}
	default:
		http.NotFound(w, r)
	}
}

// modelRefresher is the protocol a refreshing token source follows on a
// RefreshCoordinator: renew shortly before expiry, under the lock, from
// the set just loaded, skipping the token request when another replica
// already rotated it, and publishing the rotation with CompareAndSwap.
type modelRefresher struct {
	c        *Coordinator
	client   *http.Client
	tokenURL string
	cur      *credentials.TokenSet
	adopted  int // rotations taken from the fleet instead of requested
	rotated  int // token requests made
}

func (m *modelRefresher) token(ctx context.Context) (string, error) {
	if exp, ok := accessTokenExpiry2(m.cur.AccessToken); ok && time.Until(exp) > refreshMargin {
		return m.cur.AccessToken, nil
	}
	release, err := m.c.Lock(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	cur, err := m.c.Load(ctx)
	if err != nil {
		return "", err
	}
	if exp, ok := accessTokenExpiry2(cur.AccessToken); ok && time.Until(exp) > refreshMargin {
		m.cur = cur
		m.adopted++
		return cur.AccessToken, nil
	}
	body, _ := json.Marshal(map[string]string{"grant_type": "refresh_token", "refresh_token": cur.RefreshToken})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.tokenURL, strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return "", fmt.Errorf("token endpoint: %d %s", resp.StatusCode, b)
	}
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	m.rotated++
	next := &credentials.TokenSet{AccessToken: out.AccessToken, RefreshToken: out.RefreshToken, IDToken: out.IDToken,
		AccountID: refreshAccount, LastRefresh: time.Now().UTC()}
	if err := m.c.CompareAndSwap(ctx, cur, next); err != nil {
		return "", err
	}
	m.cur = next
	return next.AccessToken, nil
}

// accessTokenExpiry2 reads a millisecond exp (the model server's tokens).
func accessTokenExpiry2(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(claims.Exp * 1000)), true
}

// TestChildRefreshReplica is one replica of TestFleetRefreshOncePerExpiry:
// for DURATION it sends a request every 10 ms with the model refresher's
// token, then prints "stats <requests> <failed> <token requests> <adopted>".
func TestChildRefreshReplica(t *testing.T) {
	if os.Getenv(envRefreshReplica) != "1" {
		t.Skip("helper process of TestFleetRefreshOncePerExpiry")
	}
	d, err := time.ParseDuration(os.Getenv(envDuration))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, os.Getenv(envRedis), Options{LoginPrefix: os.Getenv(envLoginPrefix), OpTimeout: time.Second,
		PollInterval: 5 * time.Millisecond, MaxPollInterval: 20 * time.Millisecond})
	seed := &credentials.TokenSet{AccessToken: os.Getenv(envSeedAccess), RefreshToken: os.Getenv(envSeedRefresh), AccountID: refreshAccount}
	c := coordinator(t, s, credentials.Login{AccountID: refreshAccount}, CoordinatorOptions{Initial: seed, LockTimeout: 10 * time.Second})
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: base, Timeout: 5 * time.Second}
	srvURL := os.Getenv(envServer)
	m := &modelRefresher{c: c, client: client, tokenURL: srvURL + "/oauth/token", cur: seed}
	fmt.Println("ready")
	var line [3]byte
	os.Stdin.Read(line[:])
	var requests, failed int
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		requests++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := func() error {
			tok, err := m.token(ctx)
			if err != nil {
				return err
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srvURL+"/resource", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("resource: %d", resp.StatusCode)
			}
			return nil
		}()
		cancel()
		if err != nil {
			failed++
			fmt.Fprintln(os.Stderr, err)
		}
	}
	fmt.Printf("stats %d %d %d %d\n", requests, failed, m.rotated, m.adopted)
}

// Acceptance 1 at the coordinator (with the model refresher): four replica
// processes on one login whose access tokens live 2 s make exactly one
// token request per expiry fleet-wide, never present a used refresh token,
// and fail no request.
func TestFleetRefreshOncePerExpiry(t *testing.T) {
	const replicas, life = 4, 2 * time.Second
	duration := 30 * time.Second
	if testing.Short() {
		duration = 6 * time.Second
	}
	addr := redisAddr(t)
	ts := newTokenServer(life)
	srv := httptest.NewServer(ts)
	t.Cleanup(srv.Close)
	ts.mu.Lock()
	seedAccess, seedRefresh := ts.issue()
	ts.mu.Unlock()
	key := newKey(t)
	env := []string{envRefreshReplica + "=1", envServer + "=" + srv.URL, envRedis + "=" + addr,
		envLoginPrefix + "=" + uniquePrefix(t), envSeedAccess + "=" + seedAccess, envSeedRefresh + "=" + seedRefresh,
		envDuration + "=" + duration.String(), SealingKeyEnv + "=" + base64.StdEncoding.EncodeToString(key)}
	children := make([]*child, replicas)
	for i := range children {
		children[i] = startChildRun(t, "TestChildRefreshReplica", env...)
	}
	for _, c := range children {
		c.expect(t, "ready", 30*time.Second)
	}
	start := time.Now()
	for _, c := range children {
		io.WriteString(c.stdin, "go\n")
	}
	var requests, failed, rotated, adopted int
	for i, c := range children {
		c.finish(t, fmt.Sprintf("replica %d", i))
		for _, l := range c.out {
			f := strings.Fields(l)
			if len(f) == 5 && f[0] == "stats" {
				n := make([]int, 4)
				for j := range n {
					n[j], _ = strconv.Atoi(f[j+1])
				}
				requests += n[0]
				failed += n[1]
				rotated += n[2]
				adopted += n[3]
			}
		}
	}
	took := time.Since(start)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	gaps := make([]string, len(ts.times))
	for i, at := range ts.times {
		gaps[i] = at.Sub(start).Round(10 * time.Millisecond).String()
	}
	t.Logf("rotations at %v after the start", gaps)
	// Each token lives life; renewing refreshMargin early, the fleet needs
	// one rotation per (life - refreshMargin), plus the seed's.
	maxRotations := int(took/(life-refreshMargin)) + 1
	minRotations := int(duration/life) - 1
	if ts.reused != 0 || failed != 0 || ts.rejected != 0 {
		t.Fatalf("%d refresh_token_reused, %d failed requests (%d rejected by the resource)", ts.reused, failed, ts.rejected)
	}
	if ts.requests != rotated || ts.requests > maxRotations || ts.requests < minRotations {
		t.Fatalf("%d token requests (%d by the replicas) in %v with %v tokens; want one per expiry, %d to %d",
			ts.requests, rotated, took.Round(time.Millisecond), life, minRotations, maxRotations)
	}
	if requests == 0 || ts.served != requests {
		t.Fatalf("%d requests sent, %d served", requests, ts.served)
	}
	t.Logf("%d replicas, %v tokens, %v: %d token requests fleet-wide (%d rotations adopted from the fleet), %d requests, 0 failed, 0 reused",
		replicas, life, took.Round(time.Millisecond), ts.requests, adopted, requests)
}

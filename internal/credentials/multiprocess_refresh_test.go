package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/agentauth/agentauth/identitytest"
)

// Environment of the refresher child processes of
// TestRefreshAcrossProcessesAndCodex.
const (
	mpEnvHome   = "AGENTAUTH_MP_HOME"
	mpEnvURL    = "AGENTAUTH_MP_TOKEN_URL"
	mpEnvID     = "AGENTAUTH_MP_ID"
	mpEnvRounds = "AGENTAUTH_MP_ROUNDS"
)

const mpRounds = 50

// mpClock is a clock shared by files: the parent writes the current round
// and time into CODEX_HOME/clock; every process reads it.
func mpReadClock(home string) (round int, now time.Time, ok bool) {
	data, err := os.ReadFile(filepath.Join(home, "clock"))
	if err != nil {
		return 0, time.Time{}, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, time.Time{}, false
	}
	r, err1 := strconv.Atoi(f[0])
	ns, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, time.Time{}, false
	}
	return r, time.Unix(0, ns), true
}

func mpWriteFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// TestMultiProcessRefreshHelper is not a test: it is a refresher child
// process of TestRefreshAcrossProcessesAndCodex. Each round it waits for
// the parent's clock to move past the token's expiry, asks its refreshing
// source for a token, checks it is not expired, and reports the round.
func TestMultiProcessRefreshHelper(t *testing.T) {
	home := os.Getenv(mpEnvHome)
	if home == "" {
		t.Skip("helper process for TestRefreshAcrossProcessesAndCodex")
	}
	id := os.Getenv(mpEnvID)
	rounds, _ := strconv.Atoi(os.Getenv(mpEnvRounds))
	now := func() time.Time { _, n, _ := mpReadClock(home); return n }
	src, err := NewRefreshingTokenSource(RefreshOptions{
		Coordinator: NewAuthFileCoordinator(home), TokenURL: os.Getenv(mpEnvURL), Getenv: fltNoEnv, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	deadline := time.Now().Add(15 * time.Second)
	for r := 1; r <= rounds; r++ {
		for {
			if cr, _, ok := mpReadClock(home); ok && cr >= r {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d never came", r)
			}
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tok, err := src.Token(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		if exp := accessTokenClaims(tok.AccessToken.Reveal()).Expiry; !now().Before(exp) {
			t.Fatalf("round %d: got an expired token", r)
		}
		if err := mpWriteFile(filepath.Join(home, "done-"+id), strconv.Itoa(r)); err != nil {
			t.Fatal(err)
		}
	}
}

// codexStyleRefresh is a third, minimal refresher that follows agentauth's
// rule (the Codex CLI takes no lock; codexCLIWriter models it): under
// agentauth's lock, re-read auth.json, refresh when the access token
// expired, write the file by atomic rename. It reports whether it sent a token request.
func codexStyleRefresh(t *testing.T, home, tokenURL string, now time.Time) bool {
	lock := flock.New(filepath.Join(home, AuthStorageLockFileName))
	if err := lock.Lock(); err != nil {
		t.Error(err)
		return false
	}
	defer lock.Unlock()
	path := filepath.Join(home, AuthFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return false
	}
	af, err := ParseAuthFile(data)
	if err != nil {
		t.Error(err)
		return false
	}
	if now.Before(accessTokenClaims(af.Tokens.AccessToken).Expiry) {
		return false
	}
	body, _ := json.Marshal(map[string]string{"client_id": DefaultClientID, "grant_type": "refresh_token", "refresh_token": af.Tokens.RefreshToken})
	resp, err := http.Post(tokenURL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return true
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tr) != nil {
		t.Errorf("Codex-style refresh: HTTP %d", resp.StatusCode)
		return true
	}
	af.Tokens.IDToken, af.Tokens.AccessToken, af.Tokens.RefreshToken = tr.IDToken, tr.AccessToken, tr.RefreshToken
	lr := now.UTC()
	af.LastRefresh = &lr
	out, _ := af.Marshal()
	if err := mpWriteFile(path, string(out)); err != nil {
		t.Error(err)
	}
	return true
}

// Two processes with refreshing sources and a third locked refresher (same
// lock file, atomic rename) refresh one login through 50 expiries: one
// token request per expiry, no refresh_token_reused, no rotation lost,
// and auth.json always parses.
func TestRefreshAcrossProcessesAndCodex(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	clock := newFakeClock()
	srv, err := identitytest.NewServer(identitytest.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-mp", UserID: "user-mp"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := login.WriteAuthJSON(home, clock.Now()); err != nil {
		t.Fatal(err)
	}
	setClock := func(round int) {
		if err := mpWriteFile(filepath.Join(home, "clock"), fmt.Sprintf("%d %d", round, clock.Now().UnixNano())); err != nil {
			t.Fatal(err)
		}
	}
	setClock(0)

	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Second)
	defer cancel()
	var children []*exec.Cmd
	outputs := make([]*bytes.Buffer, 2)
	for i := range 2 {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMultiProcessRefreshHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), mpEnvHome+"="+home, mpEnvURL+"="+srv.TokenURL(), mpEnvID+"="+strconv.Itoa(i), mpEnvRounds+"="+strconv.Itoa(mpRounds))
		outputs[i] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outputs[i], outputs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, cmd)
	}

	// Watch the file: it must parse at every moment.
	var torn atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			data, err := os.ReadFile(filepath.Join(home, AuthFileName))
			if err == nil {
				if _, err := ParseAuthFile(data); err != nil {
					torn.Add(1)
				}
			}
		}
	}()

	codexRequests := 0
	for r := 1; r <= mpRounds; r++ {
		clock.Advance(time.Hour) // every token issued so far has expired
		setClock(r)
		if codexStyleRefresh(t, home, srv.TokenURL(), clock.Now()) {
			codexRequests++
		}
		for i := range children {
			for {
				data, _ := os.ReadFile(filepath.Join(home, "done-"+strconv.Itoa(i)))
				if n, _ := strconv.Atoi(string(data)); n >= r {
					break
				}
				if ctx.Err() != nil {
					stop.Store(true)
					wg.Wait()
					t.Fatalf("round %d: child %d did not finish:\n%s", r, i, outputs[i])
				}
				time.Sleep(time.Millisecond)
			}
		}
		if got := srv.Stats().TokenRefreshes; got != r {
			t.Fatalf("after round %d: %d token refreshes, want exactly one per expiry", r, got)
		}
	}
	stop.Store(true)
	wg.Wait()
	for i, cmd := range children {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outputs[i])
		}
	}
	st := srv.Stats()
	if st.RejectionsByReason[identitytest.CodeRefreshTokenReused] != 0 || st.Rejections != 0 {
		t.Fatalf("rejections: %v", st.RejectionsByReason)
	}
	if torn.Load() != 0 {
		t.Fatalf("auth.json failed to parse %d times", torn.Load())
	}
	// No rotation lost: the stored refresh token is the live one.
	af, err := NewFileStore(filepath.Join(home, AuthFileName)).Load()
	if err != nil {
		t.Fatal(err)
	}
	useRefreshToken(t, srv, af.Tokens.RefreshToken)
	t.Logf("%d expiries: %d token requests (%d by the Codex-style writer)", mpRounds, st.TokenRefreshes, codexRequests)
}

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/redisstore"
	"github.com/redis/go-redis/v9"
)

// testRedis is $AGENTAUTH_REDIS_ADDR, or a redis-server this test starts.
func testRedis(t *testing.T) string {
	t.Helper()
	if addr := os.Getenv("AGENTAUTH_REDIS_ADDR"); addr != "" {
		return addr
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not on PATH and AGENTAUTH_REDIS_ADDR is unset")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer c.Close()
	for i := 0; ; i++ { // until it answers, at most 10 s
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return addr
		}
		if i == 200 {
			t.Fatalf("redis-server on %s does not answer: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func jwt(claims string) string {
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig"
}

// reset, given the Codex home of a login, deletes the fleet's token set of
// that login (named as the replicas name it) and nothing else; bad input
// exits 2 and no output carries a token.
func TestResetCommand(t *testing.T) {
	addr := testRedis(t)
	prefix := fmt.Sprintf("agentauth:cmdtest:%d:", time.Now().UnixNano())
	home := t.TempDir()
	exp := time.Now().Add(time.Hour).Unix()
	auth := `{"claims":{"chatgpt_account_id":"acct-cli","chatgpt_user_id":"user-cli"}}`
	idTok := jwt(`{"https://api.openai.com/auth":` + strings.TrimSuffix(strings.TrimPrefix(auth, `{"claims":`), `}`) + `}`)
	access := jwt(fmt.Sprintf(`{"exp":%d,"iat":%d}`, exp, exp-3600))
	file := fmt.Sprintf(`{"auth_mode":"chatgpt","tokens":{"id_token":%q,"access_token":%q,"refresh_token":"rt-cli-secret","account_id":"acct-cli"}}`, idTok, access)
	if err := os.WriteFile(filepath.Join(home, "auth.json"), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, redisstore.SealingKeySize)
	sealer, err := redisstore.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{LoginPrefix: prefix, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	login := credentials.Login{AccountID: "acct-cli", UserID: "user-cli"}
	seed := &credentials.TokenSet{IDToken: idTok, AccessToken: access, RefreshToken: "rt-cli-secret", AccountID: "acct-cli"}
	newCoord := store.Coordinators(redisstore.CoordinatorOptions{})
	coord, err := newCoord(login, seed)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := coord.Load(ctx); err != nil {
		t.Fatal(err)
	}
	other, err := newCoord(credentials.Login{AccountID: "acct-cli", UserID: "user-other"},
		&credentials.TokenSet{AccessToken: access, RefreshToken: "rt-other", AccountID: "acct-cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		keys, err := client.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d keys before the reset, want 2", n)
	}
	var out, errOut bytes.Buffer
	env := func(string) string { return "" }
	if code := run([]string{"reset", "-addr", addr, "-codex-home", home, "-login-prefix", prefix}, &out, &errOut, env); code != exitOK {
		t.Fatalf("reset: exit %d: %s", code, errOut.String())
	}
	if n := count(); n != 1 {
		t.Fatalf("%d keys after the reset, want the other login's 1", n)
	}
	if code := run([]string{"reset", "-addr", addr, "-account", "acct-cli", "-user", "user-other", "-login-prefix", prefix}, &out, &errOut, env); code != exitOK {
		t.Fatalf("reset by ids: exit %d: %s", code, errOut.String())
	}
	if n := count(); n != 0 {
		t.Fatalf("%d keys after resetting both logins", n)
	}
	for _, args := range [][]string{{}, {"rest"}, {"reset", "extra"}, {"reset", "-user", "u"}, {"reset", "-codex-home", t.TempDir()}} {
		if code := run(args, &out, &errOut, env); code != exitUsage {
			t.Fatalf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if strings.Contains(out.String()+errOut.String(), "rt-cli-secret") || strings.Contains(out.String()+errOut.String(), access) {
		t.Fatal("the output carries a token")
	}
}

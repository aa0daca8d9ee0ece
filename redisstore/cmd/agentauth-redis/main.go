// Command agentauth-redis administers the Redis fleet state of agentauth's
// redisstore package. It lives in the redisstore module because the core
// module's agentauth command does not depend on Redis.
//
//	agentauth-redis reset [-addr HOST:PORT] [-codex-home DIR] [-login-prefix PREFIX]
//	agentauth-redis reset -account ID [-user ID] [-addr ...] [-login-prefix ...]
//
// reset deletes the fleet's token set of one ChatGPT login, its refresh
// lock and the marks of its lock holders (redisstore.Store.ResetLogin), so
// that the next replica to start seeds the fleet with its own auth.json:
// the way out of a revoked login whose new auth.json is not newer than the
// fleet's dead set. The login is read from DIR/auth.json (default
// $CODEX_HOME, else ~/.codex), named as the replicas name it, or given
// with -account and -user. The agent identity is kept. The Redis address
// defaults to $AGENTAUTH_REDIS_ADDR, else 127.0.0.1:6379. Bad input exits
// 2, a failure 1; no output carries a token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/redisstore"
	"github.com/redis/go-redis/v9"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv)) }

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] != "reset" {
		fmt.Fprintln(stderr, "usage: agentauth-redis reset [-addr HOST:PORT] [-codex-home DIR | -account ID [-user ID]] [-login-prefix PREFIX]")
		return exitUsage
	}
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "Redis address (default $AGENTAUTH_REDIS_ADDR, else 127.0.0.1:6379)")
	home := fs.String("codex-home", "", "directory of the login's auth.json (default $CODEX_HOME, else ~/.codex)")
	account := fs.String("account", "", "ChatGPT account id of the login, instead of reading auth.json")
	user := fs.String("user", "", "ChatGPT user id of the login (with -account)")
	prefix := fs.String("login-prefix", "", "redisstore Options.LoginPrefix of the fleet (default "+redisstore.DefaultLoginPrefix+")")
	timeout := fs.Duration("timeout", 5*time.Second, "bound of the Redis call")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 || (*account == "" && *user != "") || (*account != "" && *home != "") || *timeout <= 0 {
		fmt.Fprintln(stderr, "agentauth-redis reset: give either -codex-home or -account (and -user), no arguments, and a positive -timeout")
		return exitUsage
	}
	login, tokens, err := loginOf(*home, *account, *user, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "agentauth-redis reset:", err)
		return exitUsage
	}
	if *addr == "" {
		*addr = getenv("AGENTAUTH_REDIS_ADDR")
	}
	if *addr == "" {
		*addr = "127.0.0.1:6379"
	}
	client := redis.NewClient(&redis.Options{Addr: *addr, ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{LoginPrefix: *prefix, OpTimeout: *timeout, LockTimeout: *timeout + time.Second,
		Getenv: func(string) string { return "" }})
	if err != nil {
		fmt.Fprintln(stderr, "agentauth-redis reset:", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := store.ResetLogin(ctx, login, tokens); err != nil {
		fmt.Fprintln(stderr, "agentauth-redis reset:", err)
		return exitFailure
	}
	fmt.Fprintln(stdout, "reset: the fleet's token set of the login is deleted; the next replica seeds it from its auth.json")
	return exitOK
}

// loginOf names the login as agentauth's Coordinators do: from auth.json
// (its ChatGPT login and token set), or from the ids given.
func loginOf(home, account, user string, getenv func(string) string) (credentials.Login, *credentials.TokenSet, error) {
	if account != "" {
		return credentials.Login{AccountID: account, UserID: user}, nil, nil
	}
	if home == "" {
		var err error
		if home, err = credentials.DefaultCodexHome(getenv); err != nil {
			return credentials.Login{}, nil, err
		}
	}
	// Only auth.json: the environment's credentials are not the fleet's.
	creds, err := credentials.Load(credentials.LoadOptions{CodexHome: home, Getenv: func(string) string { return "" }})
	if err != nil {
		return credentials.Login{}, nil, err
	}
	if creds.Kind != credentials.KindChatGPT || creds.ChatGPT == nil || creds.PersonalAccessToken {
		return credentials.Login{}, nil, errors.New("auth.json holds no ChatGPT login")
	}
	l := creds.ChatGPT
	return credentials.Login{AccountID: l.AccountID, UserID: l.UserID},
		&credentials.TokenSet{IDToken: l.IDToken, AccessToken: l.AccessToken, RefreshToken: l.RefreshToken,
			AccountID: l.AccountID, LastRefresh: l.LastRefresh}, nil
}

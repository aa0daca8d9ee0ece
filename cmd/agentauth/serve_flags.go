// serve's command line: its flags, their checks, and the tokens, keys and
// runtimes the server is to accept.

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// serveArgs holds serve's flag values as the flag package fills them, and
// the names of the flags the command line gave.
type serveArgs struct {
	addr, issueLogin, accountID, userID, email, planType string
	accessTokens, apiKeys, trusted                       stringsFlag
	accessTokenStdin, apiKeyStdin, encrypt               bool
	tokenLifetime, maxSkew                               time.Duration
	set                                                  map[string]bool
}

// defineServeFlags defines serve's flags on fs and returns where their
// values go.
func defineServeFlags(fs *flag.FlagSet) *serveArgs {
	a := &serveArgs{}
	fs.StringVar(&a.addr, "addr", "127.0.0.1:8787", "address to listen on")
	fs.Var(&a.accessTokens, "access-token", "ChatGPT access `token` accepted as Bearer at agent registration and resources (repeatable; default $"+envDoAccessToken+" when set; without any, agent registration accepts every Bearer token; visible to ps, prefer --access-token-stdin)")
	fs.BoolVar(&a.accessTokenStdin, "access-token-stdin", false, "read access tokens from standard input, one a line")
	fs.Var(&a.apiKeys, "api-key", "API `key` accepted as Bearer at resources (repeatable; default $"+envDoAPIKey+" when set; visible to ps, prefer --api-key-stdin)")
	fs.BoolVar(&a.apiKeyStdin, "api-key-stdin", false, "read API keys from standard input, one a line")
	fs.Var(&a.trusted, "trust-record", "keygen JSON or Agent Identity record `file` whose runtime id and public key the server knows from the start (repeatable; - reads stdin); only the public key is kept")
	fs.StringVar(&a.issueLogin, "issue-login", "", "issue a ChatGPT login and write it as `DIR`/auth.json in the shape codex login leaves (DIR is created; an existing auth.json is not overwritten); its refresh token works at this server's /oauth/token while it runs")
	fs.StringVar(&a.accountID, "account-id", serveDefaultAccountID, "chatgpt_account_id of the --issue-login login")
	fs.StringVar(&a.userID, "user-id", serveDefaultUserID, "chatgpt_user_id of the --issue-login login")
	fs.StringVar(&a.email, "email", "", "email of the --issue-login login")
	fs.StringVar(&a.planType, "plan-type", "plus", "chatgpt_plan_type of the --issue-login login")
	fs.DurationVar(&a.tokenLifetime, "token-lifetime", identitytest.DefaultTokenLifetime, "lifetime of the access tokens the server issues (--issue-login and /oauth/token); a token is due for a refresh in the last quarter of its lifetime (at most 5m)")
	fs.BoolVar(&a.encrypt, "encrypt-task-ids", false, "answer task registrations with encrypted_task_id (a sealed box) instead of task_id")
	fs.DurationVar(&a.maxSkew, "max-skew", identitytest.DefaultMaxSkew, "largest accepted distance between a signed timestamp and the server clock")
	return a
}

// servePlan is what serve's checked command line asks for beyond the flag
// values: the login to issue, where it listens, and the trusted runtimes.
type servePlan struct {
	claims           identitytest.Login
	wildcard, public bool // see listenScope
	runtimes         []trustedRuntime
}

// check refuses bad flags, reads the tokens and keys (flags, else
// standard input, else the variables do reads) into a, and loads the
// --trust-record files. Errors name flags, never values.
func (a *serveArgs) check(stdin io.Reader) (*servePlan, error) {
	if a.maxSkew <= 0 {
		return nil, errors.New("--max-skew must be positive")
	}
	if a.tokenLifetime <= 0 {
		return nil, errors.New("--token-lifetime must be positive")
	}
	p := &servePlan{claims: identitytest.Login{AccountID: a.accountID, UserID: a.userID, Email: a.email, PlanType: a.planType}}
	if err := checkIssueLogin(a.set, a.issueLogin, p.claims); err != nil { // serve_login.go
		return nil, err
	}
	var err error
	if p.wildcard, p.public, err = listenScope(a.addr); err != nil {
		return nil, err
	}
	claim := &stdinClaim{}
	if err := a.readSecrets(stdin, claim); err != nil {
		return nil, err
	}
	if p.runtimes, err = loadTrustRecords(a.trusted, stdin, claim); err != nil { // serve_trust.go
		return nil, err
	}
	return p, nil
}

// readSecrets fills the access tokens and API keys from their flags, else
// standard input, else the variables do reads, so one exported token
// serves both sides of a local test; each must fit in a header.
func (a *serveArgs) readSecrets(stdin io.Reader, claim *stdinClaim) error {
	for _, sec := range []struct {
		name     string
		fromFlag bool
		stdin    bool
		env      string
		dst      *stringsFlag
	}{
		{"--access-token", a.set["access-token"], a.accessTokenStdin, envDoAccessToken, &a.accessTokens},
		{"--api-key", a.set["api-key"], a.apiKeyStdin, envDoAPIKey, &a.apiKeys},
	} {
		switch {
		case sec.fromFlag && sec.stdin:
			return fmt.Errorf("%s and %s-stdin are exclusive", sec.name, sec.name)
		case sec.stdin:
			if err := claim.take(sec.name + "-stdin"); err != nil {
				return err
			}
			vs, err := readSecretLines(stdin)
			if err != nil {
				return fmt.Errorf("%s-stdin: %w", sec.name, err)
			}
			*sec.dst = vs
		case !sec.fromFlag:
			if v := os.Getenv(sec.env); v != "" {
				*sec.dst = stringsFlag{v}
			}
		}
		for _, v := range *sec.dst {
			if err := validateSecret(sec.name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// listenScope reports whether addr is a wildcard address (every
// interface) and whether it reaches beyond loopback at all.
func listenScope(addr string) (wildcard, public bool, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, false, fmt.Errorf("--addr %q is not HOST:PORT", truncate(addr))
	}
	if host == "" {
		return true, true, nil
	}
	if host == "localhost" {
		return false, false, nil
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return false, true, nil // a name: whatever it resolves to
	case ip.IsUnspecified():
		return true, true, nil
	default:
		return false, !ip.IsLoopback(), nil
	}
}

// portOf returns the port of an http://host:port URL.
func portOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Port()
}

// readSecretLines reads one secret per non-empty line of r (surrounding
// space trimmed), for serve's repeatable tokens and keys.
func readSecretLines(r io.Reader) ([]string, error) {
	if r == nil {
		return nil, errors.New("no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(r, doMaxSecret+1))
	if err != nil {
		return nil, errors.New("reading standard input failed")
	}
	if len(b) > doMaxSecret {
		return nil, fmt.Errorf("standard input is larger than %d bytes", doMaxSecret)
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if v := strings.TrimSpace(line); v != "" {
			out = append(out, v)
		}
	}
	switch {
	case len(out) == 0:
		return nil, errors.New("standard input is empty")
	case len(out) > serveMaxSecrets:
		return nil, fmt.Errorf("more than %d lines", serveMaxSecrets)
	}
	return out, nil
}

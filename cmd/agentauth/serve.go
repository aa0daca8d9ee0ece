package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

const serveSynopsis = "agentauth serve [--addr 127.0.0.1:8787] [--access-token TOKEN... | --access-token-stdin] [--api-key KEY... | --api-key-stdin] [--trust-record FILE]... [--issue-login DIR [--account-id ID] [--user-id ID] [--email E] [--plan-type P]] [--token-lifetime 1h] [--encrypt-task-ids] [--max-skew 5m]"

// Defaults of the login serve --issue-login writes.
const (
	serveDefaultAccountID = "acct-local"
	serveDefaultUserID    = "user-local"
)

// serveMaxSecrets bounds the tokens or keys read from standard input.
const serveMaxSecrets = 1000

func init() {
	register(command{
		name:    "serve",
		summary: "run the reference Agent Identity server until interrupted",
		run:     runServe,
	})
}

// flusher is implemented by buffered writers; the URL line must reach a
// reading process at once.
type flusher interface{ Flush() error }

// serveMaxRegistrations bounds the runtimes plus tasks `agentauth serve`
// holds (a few hundred bytes each).
const serveMaxRegistrations = 1_000_000

// runServe runs identitytest until ctx ends (SIGINT or SIGTERM from main).
// The first stdout line is a base URL a client on this machine can use
// (127.0.0.1 when listening on a wildcard address); with --issue-login the
// second is the CODEX_REFRESH_TOKEN_URL_OVERRIDE=... line a client needs
// to refresh the login written to DIR/auth.json at this server's token
// endpoint. Logs go to stderr and never carry a token. Runtimes named with
// --trust-record are known from the start, so a keygen record can sign
// without agent registration. Tokens and keys the server accepts come
// from flags, standard input or the variables do reads them from, so they
// need not be on the command line.
func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve")
	addr := fs.String("addr", "127.0.0.1:8787", "address to listen on")
	var accessTokens, apiKeys stringsFlag
	fs.Var(&accessTokens, "access-token", "ChatGPT access `token` accepted as Bearer at agent registration and resources (repeatable; default $"+envDoAccessToken+" when set; without any, agent registration accepts every Bearer token; visible to ps, prefer --access-token-stdin)")
	accessTokenStdin := fs.Bool("access-token-stdin", false, "read access tokens from standard input, one a line")
	fs.Var(&apiKeys, "api-key", "API `key` accepted as Bearer at resources (repeatable; default $"+envDoAPIKey+" when set; visible to ps, prefer --api-key-stdin)")
	apiKeyStdin := fs.Bool("api-key-stdin", false, "read API keys from standard input, one a line")
	var trusted stringsFlag
	fs.Var(&trusted, "trust-record", "keygen JSON or Agent Identity record `file` whose runtime id and public key the server knows from the start (repeatable; - reads stdin); only the public key is kept")
	issueLogin := fs.String("issue-login", "", "issue a ChatGPT login and write it as `DIR`/auth.json in the shape codex login leaves (DIR is created; an existing auth.json is not overwritten); its refresh token works at this server's /oauth/token while it runs")
	accountID := fs.String("account-id", serveDefaultAccountID, "chatgpt_account_id of the --issue-login login")
	userID := fs.String("user-id", serveDefaultUserID, "chatgpt_user_id of the --issue-login login")
	email := fs.String("email", "", "email of the --issue-login login")
	planType := fs.String("plan-type", "plus", "chatgpt_plan_type of the --issue-login login")
	tokenLifetime := fs.Duration("token-lifetime", identitytest.DefaultTokenLifetime, "lifetime of the access tokens the server issues (--issue-login and /oauth/token); a token is due for a refresh in the last quarter of its lifetime (at most 5m)")
	encrypt := fs.Bool("encrypt-task-ids", false, "answer task registrations with encrypted_task_id (a sealed box) instead of task_id")
	maxSkew := fs.Duration("max-skew", identitytest.DefaultMaxSkew, "largest accepted distance between a signed timestamp and the server clock")
	if code, done := parseFlags(fs, serveSynopsis, args, stdout, stderr); done {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *maxSkew <= 0 {
		return usageError(stderr, fs.Name(), errors.New("--max-skew must be positive"))
	}
	if *tokenLifetime <= 0 {
		return usageError(stderr, fs.Name(), errors.New("--token-lifetime must be positive"))
	}
	claims := identitytest.Login{AccountID: *accountID, UserID: *userID, Email: *email, PlanType: *planType}
	if err := checkIssueLogin(set, *issueLogin, claims); err != nil {
		return usageError(stderr, fs.Name(), err)
	}
	wildcard, public, err := listenScope(*addr)
	if err != nil {
		return usageError(stderr, fs.Name(), err)
	}
	stdinUse := ""
	takeStdin := func(by string) error {
		if stdinUse != "" {
			return fmt.Errorf("%s and %s cannot both read standard input", stdinUse, by)
		}
		stdinUse = by
		return nil
	}
	// Secrets: flags, else standard input, else the variables do reads,
	// so one exported token serves both sides of a local test.
	for _, sec := range []struct {
		name     string
		fromFlag bool
		stdin    bool
		env      string
		dst      *stringsFlag
	}{
		{"--access-token", set["access-token"], *accessTokenStdin, envDoAccessToken, &accessTokens},
		{"--api-key", set["api-key"], *apiKeyStdin, envDoAPIKey, &apiKeys},
	} {
		switch {
		case sec.fromFlag && sec.stdin:
			return usageError(stderr, fs.Name(), fmt.Errorf("%s and %s-stdin are exclusive", sec.name, sec.name))
		case sec.stdin:
			if err := takeStdin(sec.name + "-stdin"); err != nil {
				return usageError(stderr, fs.Name(), err)
			}
			vs, err := readSecretLines(stdin)
			if err != nil {
				return usageError(stderr, fs.Name(), fmt.Errorf("%s-stdin: %w", sec.name, err))
			}
			*sec.dst = vs
		case !sec.fromFlag:
			if v := os.Getenv(sec.env); v != "" {
				*sec.dst = stringsFlag{v}
			}
		}
		for _, v := range *sec.dst {
			if err := validateSecret(sec.name, v); err != nil {
				return usageError(stderr, fs.Name(), err)
			}
		}
	}
	var runtimes []trustedRuntime
	for _, path := range trusted {
		if path == "-" {
			if err := takeStdin("--trust-record -"); err != nil {
				return usageError(stderr, fs.Name(), err)
			}
		}
		rt, err := loadTrustRecord(path, stdin)
		if err != nil {
			return usageError(stderr, fs.Name(), fmt.Errorf("--trust-record %s: %w", truncate(path), err))
		}
		runtimes = append(runtimes, rt)
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := identitytest.NewServer(identitytest.Options{
		Addr:         *addr,
		AccessTokens: accessTokens,
		APIKeys:      apiKeys,
		// `agentauth demo --server URL` provisions with whatever login it
		// has, so an open registration is the useful default; naming
		// tokens closes it.
		AcceptAnyBearerForAgentRegistration: len(accessTokens) == 0,
		EncryptTaskIDs:                      *encrypt,
		MaxSkew:                             *maxSkew,
		Logger:                              logger,
		// Nothing reads the request log here, and a long-running server
		// must not be grown without bound by whoever can reach it.
		RequestLog:       -1,
		MaxRegistrations: serveMaxRegistrations,
		TokenLifetime:    *tokenLifetime,
	})
	if err != nil {
		return failure(stderr, fs.Name(), err)
	}
	defer srv.Close()
	for _, rt := range runtimes {
		if err := srv.RegisterRuntimeKey(rt.id, rt.publicKey); err != nil {
			return usageError(stderr, fs.Name(), fmt.Errorf("--trust-record: %w", err))
		}
	}

	baseURL := srv.URL()
	if wildcard {
		// The server reports the loopback address of the wildcard's
		// family (http://[::1]:PORT for a dual-stack socket); 127.0.0.1
		// reaches every wildcard listener and is what people type.
		baseURL = "http://" + net.JoinHostPort("127.0.0.1", portOf(srv.URL()))
	}
	var authPath string
	if *issueLogin != "" {
		if authPath, err = writeIssuedLogin(srv, *issueLogin, claims); err != nil {
			return failure(stderr, fs.Name(), err)
		}
	}
	out := baseURL + "\n"
	if authPath != "" {
		// The line a client needs to refresh the issued login here; it
		// holds no secret.
		out += credentials.EnvRefreshTokenURL + "=" + baseURL + identitytest.TokenPath + "\n"
	}
	if _, err := io.WriteString(stdout, out); err != nil {
		return failure(stderr, fs.Name(), errors.New("writing the URL failed"))
	}
	if f, ok := stdout.(flusher); ok {
		if err := f.Flush(); err != nil {
			return failure(stderr, fs.Name(), errors.New("writing the URL failed"))
		}
	}
	if public {
		where := "on " + *addr + ", beyond loopback"
		if wildcard {
			where = "on every interface (port " + portOf(baseURL) + ")"
		}
		msg := "agentauth serve: listening " + where + "; anyone who can reach it can use this server"
		if len(accessTokens) == 0 {
			msg += ", and agent registration is open (every Bearer token is accepted); name tokens with --access-token to close it"
		}
		logger.Warn(msg)
	}
	logger.Info("agentauth serve: listening", "url", baseURL, "trusted_runtimes", len(runtimes),
		"access_tokens", len(accessTokens), "api_keys", len(apiKeys),
		"open_agent_registration", len(accessTokens) == 0,
		"encrypt_task_ids", *encrypt, "max_skew", maxSkew.String(), "token_lifetime", tokenLifetime.String())
	if authPath != "" {
		logger.Info("agentauth serve: issued a ChatGPT login", "auth_json", authPath, "account_id", claims.AccountID,
			"user_id", claims.UserID, "token_url", baseURL+identitytest.TokenPath,
			"use", "agentauth do --codex-home "+*issueLogin+" URL, with "+credentials.EnvRefreshTokenURL+" set as printed; the refresh token works at this server only while it runs")
	}

	<-ctx.Done()
	start := time.Now()
	srv.Close()
	st := srv.Stats()
	logger.Info("agentauth serve: stopped", "took", time.Since(start).Round(time.Millisecond).String(),
		"agent_registrations", st.AgentRegistrations, "task_registrations", st.TaskRegistrations,
		"token_refreshes", st.TokenRefreshes, "rejections", st.Rejections)
	return exitOK
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

// trustedRuntime is a runtime serve knows from --trust-record.
type trustedRuntime struct {
	id        string
	publicKey string // "ssh-ed25519 ..."
}

// loadTrustRecord reads a keygen JSON or an Agent Identity record and
// returns its runtime id and public key. A record with a private key has
// its public key derived (and checked against public_key_ssh when both are
// present); a record with only agent_runtime_id and public_key_ssh is
// enough. Errors name fields, never values.
func loadTrustRecord(path string, stdin io.Reader) (trustedRuntime, error) {
	data, err := readRecord(path, stdin)
	if err != nil {
		return trustedRuntime{}, err
	}
	var rec struct {
		AgentRuntimeID  string `json:"agent_runtime_id"`
		AgentPrivateKey string `json:"agent_private_key"`
		PublicKeySSH    string `json:"public_key_ssh"`
	}
	if json.Unmarshal(data, &rec) != nil {
		return trustedRuntime{}, errors.New("record is not a JSON object with string fields agent_runtime_id and public_key_ssh or agent_private_key")
	}
	if rec.AgentPrivateKey != "" {
		id, key, err := parseRecord(data)
		if err != nil {
			return trustedRuntime{}, err
		}
		return trustedRuntime{id: id, publicKey: key.SSHPublicKey()}, nil
	}
	switch {
	case rec.AgentRuntimeID == "":
		return trustedRuntime{}, errors.New("record has no agent_runtime_id")
	case rec.PublicKeySSH == "":
		return trustedRuntime{}, errors.New("record has neither public_key_ssh nor agent_private_key")
	}
	if err := validateID("agent_runtime_id", rec.AgentRuntimeID); err != nil {
		return trustedRuntime{}, fmt.Errorf("record: %w", err)
	}
	return trustedRuntime{id: rec.AgentRuntimeID, publicKey: rec.PublicKeySSH}, nil
}

// checkIssueLogin rejects login flags without --issue-login and login
// fields that cannot go into a token.
func checkIssueLogin(set map[string]bool, dir string, c identitytest.Login) error {
	if !set["issue-login"] {
		for _, n := range []string{"account-id", "user-id", "email", "plan-type"} {
			if set[n] {
				return fmt.Errorf("--%s goes with --issue-login", n)
			}
		}
		return nil
	}
	if dir == "" {
		return errors.New("--issue-login needs a directory")
	}
	for _, f := range []struct{ name, v string }{{"--account-id", c.AccountID}, {"--user-id", c.UserID}, {"--plan-type", c.PlanType}} {
		if err := validateID(f.name, f.v); err != nil {
			return err
		}
	}
	if c.Email != "" {
		return validateID("--email", c.Email)
	}
	return nil
}

// writeIssuedLogin issues a login at srv and writes it to dir/auth.json,
// refusing to replace an auth.json that is already there: dir may be a
// real Codex home, and its login is not ours to destroy.
func writeIssuedLogin(srv *identitytest.Server, dir string, c identitytest.Login) (string, error) {
	path := filepath.Join(dir, credentials.AuthFileName)
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("--issue-login: %s already exists; remove it or choose another directory (serve does not overwrite a login)", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--issue-login: %w", err)
	}
	l, err := srv.IssueLogin(c)
	if err != nil {
		return "", fmt.Errorf("--issue-login: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("--issue-login: %w", err)
	}
	// O_EXCL: a file that appeared since the check is not replaced either.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("--issue-login: %w", err)
	}
	_, werr := f.Write(l.AuthJSON(time.Now()))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return "", fmt.Errorf("--issue-login: writing %s failed", path)
	}
	return path, nil
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

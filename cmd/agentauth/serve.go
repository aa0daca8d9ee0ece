// The serve command: it runs the reference server until interrupted and says where it listens.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	a := defineServeFlags(fs) // serve_flags.go
	if code, done := parseFlags(fs, serveSynopsis, args, stdout, stderr); done {
		return code
	}
	a.set = givenFlags(fs)
	plan, err := a.check(stdin)
	if err != nil {
		return usageError(stderr, fs.Name(), err)
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := newServeServer(a, logger)
	if err != nil {
		return failure(stderr, fs.Name(), err)
	}
	defer srv.Close()
	for _, rt := range plan.runtimes {
		if err := srv.RegisterRuntimeKey(rt.id, rt.publicKey); err != nil {
			return usageError(stderr, fs.Name(), fmt.Errorf("--trust-record: %w", err))
		}
	}

	baseURL := srv.URL()
	if plan.wildcard {
		// The server reports the loopback address of the wildcard's
		// family (http://[::1]:PORT for a dual-stack socket); 127.0.0.1
		// reaches every wildcard listener and is what people type.
		baseURL = "http://" + net.JoinHostPort("127.0.0.1", portOf(srv.URL()))
	}
	var authPath string
	if a.issueLogin != "" {
		if authPath, err = writeIssuedLogin(srv, a.issueLogin, plan.claims); err != nil { // serve_login.go
			return failure(stderr, fs.Name(), err)
		}
	}
	if err := announceServe(stdout, baseURL, authPath); err != nil {
		return failure(stderr, fs.Name(), err)
	}
	logServeStart(logger, a, plan, baseURL, authPath)

	<-ctx.Done()
	start := time.Now()
	srv.Close()
	st := srv.Stats()
	logger.Info("agentauth serve: stopped", "took", time.Since(start).Round(time.Millisecond).String(),
		"agent_registrations", st.AgentRegistrations, "task_registrations", st.TaskRegistrations,
		"token_refreshes", st.TokenRefreshes, "rejections", st.Rejections)
	return exitOK
}

// newServeServer starts the reference server of a's flags, logging to logger.
func newServeServer(a *serveArgs, logger *slog.Logger) (*identitytest.Server, error) {
	return identitytest.NewServer(identitytest.Options{
		Addr:         a.addr,
		AccessTokens: a.accessTokens,
		APIKeys:      a.apiKeys,
		// `agentauth demo --server URL` provisions with whatever login it
		// has, so an open registration is the useful default; naming
		// tokens closes it.
		AcceptAnyBearerForAgentRegistration: len(a.accessTokens) == 0,
		EncryptTaskIDs:                      a.encrypt,
		MaxSkew:                             a.maxSkew,
		Logger:                              logger,
		// Nothing reads the request log here, and a long-running server
		// must not be grown without bound by whoever can reach it.
		RequestLog:       -1,
		MaxRegistrations: serveMaxRegistrations,
		TokenLifetime:    a.tokenLifetime,
	})
}

// announceServe writes the base URL line, and with an issued login the
// token endpoint line a client needs to refresh it here, flushing stdout
// so a reading process gets them at once.
func announceServe(stdout io.Writer, baseURL, authPath string) error {
	out := baseURL + "\n"
	if authPath != "" {
		// The line a client needs to refresh the issued login here; it
		// holds no secret.
		out += credentials.EnvRefreshTokenURL + "=" + baseURL + identitytest.TokenPath + "\n"
	}
	if _, err := io.WriteString(stdout, out); err != nil {
		return errors.New("writing the URL failed")
	}
	if f, ok := stdout.(flusher); ok {
		if err := f.Flush(); err != nil {
			return errors.New("writing the URL failed")
		}
	}
	return nil
}

// logServeStart logs where the server listens (with a warning when beyond
// loopback), what it accepts, and the login it issued; never a token.
func logServeStart(logger *slog.Logger, a *serveArgs, plan *servePlan, baseURL, authPath string) {
	if plan.public {
		where := "on " + a.addr + ", beyond loopback"
		if plan.wildcard {
			where = "on every interface (port " + portOf(baseURL) + ")"
		}
		msg := "agentauth serve: listening " + where + "; anyone who can reach it can use this server"
		if len(a.accessTokens) == 0 {
			msg += ", and agent registration is open (every Bearer token is accepted); name tokens with --access-token to close it"
		}
		logger.Warn(msg)
	}
	logger.Info("agentauth serve: listening", "url", baseURL, "trusted_runtimes", len(plan.runtimes),
		"access_tokens", len(a.accessTokens), "api_keys", len(a.apiKeys),
		"open_agent_registration", len(a.accessTokens) == 0,
		"encrypt_task_ids", a.encrypt, "max_skew", a.maxSkew.String(), "token_lifetime", a.tokenLifetime.String())
	if authPath != "" {
		logger.Info("agentauth serve: issued a ChatGPT login", "auth_json", authPath, "account_id", plan.claims.AccountID,
			"user_id", plan.claims.UserID, "token_url", baseURL+identitytest.TokenPath,
			"use", "agentauth do --codex-home "+a.issueLogin+" URL, with "+credentials.EnvRefreshTokenURL+" set as printed; the refresh token works at this server only while it runs")
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

const serveSynopsis = "agentauth serve [--addr 127.0.0.1:8787] [--access-token TOKEN]... [--api-key KEY]... [--encrypt-task-ids] [--max-skew 5m]"

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

// runServe runs identitytest until ctx ends (SIGINT or SIGTERM from main).
// The first stdout line is the base URL; logs go to stderr and never carry
// a token.
// serveMaxRegistrations bounds the runtimes plus tasks `agentauth serve`
// holds (a few hundred bytes each).
const serveMaxRegistrations = 1_000_000

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve")
	addr := fs.String("addr", "127.0.0.1:8787", "address to listen on")
	var accessTokens, apiKeys stringsFlag
	fs.Var(&accessTokens, "access-token", "ChatGPT access token accepted as Bearer at agent registration and resources (repeatable; without any, agent registration accepts every Bearer token)")
	fs.Var(&apiKeys, "api-key", "API key accepted as Bearer at resources (repeatable)")
	encrypt := fs.Bool("encrypt-task-ids", false, "answer task registrations with encrypted_task_id (a sealed box) instead of task_id")
	maxSkew := fs.Duration("max-skew", identitytest.DefaultMaxSkew, "largest accepted distance between a signed timestamp and the server clock")
	if code, done := parseFlags(fs, serveSynopsis, args, stdout, stderr); done {
		return code
	}
	if *maxSkew <= 0 {
		return usageError(stderr, fs.Name(), errors.New("--max-skew must be positive"))
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
	})
	if err != nil {
		return failure(stderr, fs.Name(), err)
	}
	defer srv.Close()

	if _, err := fmt.Fprintln(stdout, srv.URL()); err != nil {
		return failure(stderr, fs.Name(), errors.New("writing the URL failed"))
	}
	if f, ok := stdout.(flusher); ok {
		if err := f.Flush(); err != nil {
			return failure(stderr, fs.Name(), errors.New("writing the URL failed"))
		}
	}
	logger.Info("agentauth serve: listening", "url", srv.URL(),
		"access_tokens", len(accessTokens), "api_keys", len(apiKeys),
		"open_agent_registration", len(accessTokens) == 0,
		"encrypt_task_ids", *encrypt, "max_skew", maxSkew.String())

	<-ctx.Done()
	start := time.Now()
	srv.Close()
	st := srv.Stats()
	logger.Info("agentauth serve: stopped", "took", time.Since(start).Round(time.Millisecond).String(),
		"agent_registrations", st.AgentRegistrations, "task_registrations", st.TaskRegistrations,
		"rejections", st.Rejections)
	return exitOK
}

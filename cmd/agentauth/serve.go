package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

const serveSynopsis = "agentauth serve [--addr 127.0.0.1:8787] [--access-token TOKEN]... [--api-key KEY]... [--trust-record FILE]... [--encrypt-task-ids] [--max-skew 5m]"

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
// (127.0.0.1 when listening on a wildcard address); logs go to stderr and
// never carry a token. Runtimes named with --trust-record are known from
// the start, so a keygen record can sign without agent registration.

func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve")
	addr := fs.String("addr", "127.0.0.1:8787", "address to listen on")
	var accessTokens, apiKeys stringsFlag
	fs.Var(&accessTokens, "access-token", "ChatGPT access `token` accepted as Bearer at agent registration and resources (repeatable; without any, agent registration accepts every Bearer token)")
	fs.Var(&apiKeys, "api-key", "API `key` accepted as Bearer at resources (repeatable)")
	var trusted stringsFlag
	fs.Var(&trusted, "trust-record", "keygen JSON or Agent Identity record `file` whose runtime id and public key the server knows from the start (repeatable; - reads stdin); only the public key is kept")
	encrypt := fs.Bool("encrypt-task-ids", false, "answer task registrations with encrypted_task_id (a sealed box) instead of task_id")
	maxSkew := fs.Duration("max-skew", identitytest.DefaultMaxSkew, "largest accepted distance between a signed timestamp and the server clock")
	if code, done := parseFlags(fs, serveSynopsis, args, stdout, stderr); done {
		return code
	}
	if *maxSkew <= 0 {
		return usageError(stderr, fs.Name(), errors.New("--max-skew must be positive"))
	}
	wildcard, public, err := listenScope(*addr)
	if err != nil {
		return usageError(stderr, fs.Name(), err)
	}
	var runtimes []trustedRuntime
	stdinUsed := false
	for _, path := range trusted {
		if path == "-" {
			if stdinUsed {
				return usageError(stderr, fs.Name(), errors.New("--trust-record - can read standard input only once"))
			}
			stdinUsed = true
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
	if _, err := fmt.Fprintln(stdout, baseURL); err != nil {
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

package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/oauthwire"
)

// The defaults and environment variables the flows share with the Codex CLI.
const (
	// defaultIssuer is the OAuth issuer the Codex CLI signs in with.
	defaultIssuer = "https://auth.openai.com"
	// defaultClientID is the Codex CLI's OAuth client id.
	defaultClientID = "app_EMoamEEZ73f0CkXaXp7hrann"
	// defaultPort is the loopback port of the browser flow's callback
	// server; Codex's redirect URI allow-list also holds fallbackPort.
	defaultPort = 1455

	envClientID       = "CODEX_APP_SERVER_LOGIN_CLIENT_ID"
	envRevokeURL      = "CODEX_REVOKE_TOKEN_URL_OVERRIDE"
	envRefreshURL     = credentials.EnvRefreshTokenURL
	envOriginator     = "CODEX_INTERNAL_ORIGINATOR_OVERRIDE"
	defaultRevokeURL  = "https://auth.openai.com/oauth/revoke"
	fallbackPort      = 1457
	httpTimeout       = 30 * time.Second
	revokeTimeout     = 10 * time.Second
	maxErrorTextBytes = oauthwire.MaxErrorTextBytes
)

// Options configure every flow. The zero value signs in to OpenAI with the
// Codex CLI's client id and writes $CODEX_HOME/auth.json (~/.codex when
// CODEX_HOME is unset).
type Options struct {
	// CodexHome is the directory holding auth.json. Empty: CODEX_HOME,
	// else ~/.codex.
	CodexHome string
	// Issuer is the OAuth issuer base URL (Codex's --experimental_issuer).
	// Empty: https://auth.openai.com, the Codex CLI's.
	Issuer string
	// ClientID is the OAuth client id (Codex's --experimental_client-id).
	// Empty: CODEX_APP_SERVER_LOGIN_CLIENT_ID, else the Codex CLI's.
	ClientID string
	// HTTPClient sends every request. Nil: a client with a 30 s timeout.
	// Redirects are never followed either way.
	HTTPClient *http.Client
	// Out receives what the user must see: the device code and its URL,
	// or the authorize URL. Nil: os.Stderr. Nothing secret is written.
	Out io.Writer
	// OpenBrowser opens the authorize URL of [Browser]. Nil: the URL is
	// only printed to Out.
	OpenBrowser func(url string) error
	// Port is the browser flow's loopback callback port. Zero:
	// 1455, falling back to 1457 as Codex does when it stays busy.
	Port int
	// Getenv reads the environment. Nil: os.Getenv.
	Getenv func(string) string
}

// Errors the flows return; match them with errors.Is. A login that was
// cancelled (its context, or the callback server's /cancel) wraps
// context.Canceled; one the user did not finish in time (the context's
// deadline, the device code's 15 minutes or its expiry) wraps
// context.DeadlineExceeded.
var (
	// ErrRevokeFailed is returned by [Logout] when the login was removed
	// locally but revoking its token at the issuer failed.
	ErrRevokeFailed = errors.New("login: revoking the token failed")
	// ErrNotLoggedIn is returned by [Logout] when auth.json holds no
	// ChatGPT login.
	ErrNotLoggedIn = errors.New("login: not logged in")
	// ErrLoginReplaced is returned by [Logout] when auth.json came to
	// hold another login while the previous one was being revoked; the
	// new login is left in place.
	ErrLoginReplaced = errors.New("login: auth.json now holds another login, which was left in place")
	// ErrPortInUse is returned by [Browser] when the callback port is
	// taken by another program.
	ErrPortInUse = errors.New("login: the callback port is in use")
	// ErrNoWorkloadIdentity is returned by [WorkloadIdentity] when neither
	// OPENAI_FEDERATION_RULE_ID nor OPENAI_IDENTITY_TOKEN_FILE is set.
	ErrNoWorkloadIdentity = errors.New("login: workload identity is not configured (OPENAI_FEDERATION_RULE_ID and OPENAI_IDENTITY_TOKEN_FILE are unset)")
)

// errCancelled ends a login that was cancelled.
var errCancelled = fmt.Errorf("login: cancelled: %w", context.Canceled)

// resolved is Options with its defaults applied.
type resolved struct {
	home     string
	issuer   string
	clientID string
	client   *http.Client
	out      io.Writer
	open     func(string) error
	port     int
	getenv   func(string) string
}

func (o Options) resolve() (*resolved, error) {
	r := &resolved{getenv: o.Getenv, out: o.Out, open: o.OpenBrowser, port: o.Port}
	if r.getenv == nil {
		r.getenv = os.Getenv
	}
	if r.out == nil {
		r.out = os.Stderr
	}
	r.home = o.CodexHome
	if r.home == "" {
		h, err := credentials.DefaultCodexHome(r.getenv)
		if err != nil {
			return nil, err
		}
		r.home = h
	}
	r.issuer = strings.TrimRight(strings.TrimSpace(o.Issuer), "/")
	if r.issuer == "" {
		r.issuer = defaultIssuer
	}
	if err := checkBaseURL(r.issuer); err != nil {
		return nil, err
	}
	r.clientID = strings.TrimSpace(o.ClientID)
	if r.clientID == "" {
		r.clientID = strings.TrimSpace(r.getenv(envClientID))
	}
	if r.clientID == "" {
		r.clientID = defaultClientID
	}
	if r.port < 0 || r.port > 65535 {
		return nil, errors.New("login: Options.Port must be between 0 and 65535")
	}
	base := o.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: httpTimeout}
	}
	c := *base
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r.client = &c
	return r, nil
}

func (r *resolved) authFile() string { return filepath.Join(r.home, credentials.AuthFileName) }

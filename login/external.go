package login

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/jwtclaims"
	"github.com/agentauth/agentauth/transport"
)

// Codex's defaults for a provider auth command.
const (
	defaultCommandTimeout         = 5 * time.Second
	defaultCommandRefreshInterval = 5 * time.Minute
	maxCommandOutput              = 64 << 10
	commandExpirySkew             = 30 * time.Second
)

// CommandTokenSource returns a token source backed by a command, as
// Codex's provider auth command (model_providers.<id>.auth): argv[0] runs
// with argv[1:] in dir (empty: the current directory), no stdin, bounded
// by timeout (0: 5 s); its standard output, trimmed, is the Bearer token.
// The token is reused for refreshInterval (0: 5 minutes; negative: until
// it is rejected) and, when it is a JWT with an exp claim, never past 30
// seconds before that expiry; its ChatGPT account and user come from the
// https://api.openai.com/auth claim when present. One command runs at a
// time however many callers ask; Refresh reruns it for a rejected token.
// A failing command's error names the command and its exit status, never
// its output.
func CommandTokenSource(argv []string, dir string, timeout, refreshInterval time.Duration) (transport.TokenSource, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("login: CommandTokenSource needs a command")
	}
	if timeout <= 0 {
		timeout = defaultCommandTimeout
	}
	if refreshInterval == 0 {
		refreshInterval = defaultCommandRefreshInterval
	}
	return &commandSource{argv: append([]string(nil), argv...), dir: dir, timeout: timeout, interval: refreshInterval, now: time.Now, sem: make(chan struct{}, 1)}, nil
}

type commandSource struct {
	argv     []string
	dir      string
	timeout  time.Duration
	interval time.Duration // < 0: no proactive refresh
	now      func() time.Time
	sem      chan struct{} // one run at a time

	mu      sync.Mutex
	cur     *credentials.Token
	validTo time.Time // zero: until rejected
}

func (s *commandSource) cached() *credentials.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && (s.validTo.IsZero() || s.now().Before(s.validTo)) {
		return s.cur
	}
	return nil
}

func (s *commandSource) Token(ctx context.Context) (*credentials.Token, error) {
	if t := s.cached(); t != nil {
		return t, nil
	}
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-s.sem }()
	if t := s.cached(); t != nil {
		return t, nil
	}
	return s.run(ctx)
}

func (s *commandSource) Refresh(ctx context.Context, rejected *credentials.Token) (*credentials.Token, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-s.sem }()
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil && rejected != nil && cur.AccessToken != rejected.AccessToken {
		return cur, nil
	}
	t, err := s.run(ctx)
	if err == nil && rejected != nil && t.AccessToken == rejected.AccessToken {
		return nil, credentials.ErrTokenUnchanged
	}
	return t, err
}

func (s *commandSource) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *commandSource) run(ctx context.Context) (*credentials.Token, error) {
	name := s.argv[0]
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, s.argv[1:]...)
	cmd.Dir = s.dir
	cmd.Stdin = nil
	var stdout limitedBuffer
	stdout.max = maxCommandOutput
	cmd.Stdout = &stdout
	cmd.Stderr = io.Discard
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case err != nil && parent.Err() != nil:
		// The caller gave up (cancelled, or its own deadline passed): the
		// kill that followed is not the command's failure.
		return nil, fmt.Errorf("login: auth command %q: %w", name, parent.Err())
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("login: auth command %q timed out after %s", name, s.timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("login: auth command %q exited with status %d", name, ee.ExitCode())
		}
		return nil, fmt.Errorf("login: auth command %q failed to start: %w", name, errors.Unwrap(err))
	case stdout.over:
		return nil, fmt.Errorf("login: auth command %q wrote more than %d bytes", name, maxCommandOutput)
	}
	tok, exp, err := parseCommandToken(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("login: auth command %q: %w", name, err)
	}
	now := s.now()
	var validTo time.Time
	if s.interval > 0 {
		validTo = now.Add(s.interval)
	}
	if !exp.IsZero() {
		e := exp.Add(-commandExpirySkew)
		if !e.After(now) {
			return nil, fmt.Errorf("login: auth command %q printed a token that has expired", name)
		}
		if validTo.IsZero() || e.Before(validTo) {
			validTo = e
		}
	}
	s.mu.Lock()
	s.cur, s.validTo = tok, validTo
	s.mu.Unlock()
	return tok, nil
}

// parseCommandToken reads a command's output: one token, surrounding
// whitespace ignored, sendable in an Authorization header. A JWT yields
// its exp and ChatGPT routing claims (read, not verified: the backend
// verifies it).
func parseCommandToken(out []byte) (*credentials.Token, time.Time, error) {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return nil, time.Time{}, errors.New("produced an empty token")
	}
	if !printableToken(s) {
		return nil, time.Time{}, errors.New("produced a token with spaces or control characters")
	}
	tok := &credentials.Token{AccessToken: identity.Secret(s)}
	var exp time.Time
	if payload, err := jwtclaims.Payload(s); err == nil {
		var c struct {
			Exp  json.Number    `json:"exp"`
			Auth map[string]any `json:"https://api.openai.com/auth"`
		}
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		if dec.Decode(&c) == nil {
			if n, err := c.Exp.Int64(); err == nil && n > 0 && n < 1<<40 {
				exp = time.Unix(n, 0)
			}
			tok.AccountID = claimString(c.Auth, "chatgpt_account_id")
			tok.UserID = claimString(c.Auth, "chatgpt_user_id")
			tok.FedRAMP, _ = c.Auth["chatgpt_account_is_fedramp"].(bool)
		}
	}
	if err := tok.Routing().Validate(); err != nil {
		return nil, time.Time{}, errors.New("produced a token whose account claim cannot be sent")
	}
	return tok, exp, nil
}

// limitedBuffer keeps up to max bytes and notes overflow.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.over = true
		p = p[:max(0, b.max-b.Len())]
	}
	b.Buffer.Write(p)
	return len(p), nil // keep draining so the command is not blocked
}

// CallerHeaders returns a RoundTripper that sends h on every request
// through base (nil: http.DefaultTransport), for auth a caller supplies
// as headers, as Codex's caller-provided auth does: the caller owns
// validation and rotation. They are not sent on a redirect to another
// origin (scheme and host) than the first request's. Names must be valid
// header names and values free of control characters; Host and hop-by-hop
// headers are refused.
// The values are not printed by the returned RoundTripper or its errors.
func CallerHeaders(base http.RoundTripper, h http.Header) (http.RoundTripper, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	clean := http.Header{}
	for name, vals := range h {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("login: CallerHeaders: %q is not a header name", truncateName(name))
		}
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Connection", "Content-Length", "Transfer-Encoding", "Upgrade", "Te", "Trailer", "Keep-Alive", "Proxy-Connection":
			return nil, fmt.Errorf("login: CallerHeaders: %s cannot be set", http.CanonicalHeaderKey(name))
		}
		for _, v := range vals {
			if err := headers.ValidateValue(name, v); err != nil {
				return nil, fmt.Errorf("login: CallerHeaders: the value of %s has control characters", http.CanonicalHeaderKey(name))
			}
			clean.Add(name, v)
		}
	}
	return &headerTransport{base: base, h: clean}, nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func truncateName(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

type headerTransport struct {
	base http.RoundTripper
	h    http.Header
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOriginAsFirst(req) {
		// An http.Client following a redirect to another origin calls
		// RoundTrip again: the caller's auth stays with the first origin.
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	for k, v := range t.h {
		r.Header[k] = append([]string(nil), v...)
	}
	return t.base.RoundTrip(r)
}

// sameOriginAsFirst reports whether req, when an http.Client made it to
// follow redirects, has the scheme and host of the request the chain
// started with (bounded: a client stops after 10 redirects).
func sameOriginAsFirst(req *http.Request) bool {
	first := req
	for i := 0; i < 64 && first.Response != nil && first.Response.Request != nil; i++ {
		first = first.Response.Request
	}
	return strings.EqualFold(first.URL.Scheme, req.URL.Scheme) && strings.EqualFold(first.URL.Host, req.URL.Host)
}

// String keeps the header values out of fmt output.
func (t *headerTransport) String() string {
	names := make([]string, 0, len(t.h))
	for k := range t.h {
		names = append(names, k)
	}
	return "login.CallerHeaders{" + strings.Join(names, ",") + ": [REDACTED]}"
}

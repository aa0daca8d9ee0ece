// Package federation is workload identity federation as Codex's
// codex-workload-identity does it: a platform OIDC token exchanged with a
// federation rule for a ChatGPT access token, by JWT-bearer grant. The
// public login.WorkloadIdentity and transport's detection both build their
// source here. Its errors keep the "login:" prefix users have always seen.
package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/agentauth/agentauth/internal/backoff"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/oauthwire"
)

// Workload identity federation, as Codex's codex-workload-identity does it.
const (
	envFederationRuleID = "OPENAI_FEDERATION_RULE_ID"
	envIdentityFile     = "OPENAI_IDENTITY_TOKEN_FILE"
	envWIFTokenURL      = "CODEX_WIF_TOKEN_URL_OVERRIDE"
	jwtBearerGrant      = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	maxAssertionBytes   = 16 << 10
	maxWIFLifetime      = time.Hour
	wifAdvisoryMargin   = 2 * time.Minute
	wifMandatoryMargin  = 30 * time.Second
	wifRetryLimit       = 2
	wifRetryBase        = 100 * time.Millisecond
	wifExchangeTimeout  = 30 * time.Second
	wifFallbackRetry    = 30 * time.Second
	defaultIssuer       = "https://auth.openai.com"
	httpTimeout         = 30 * time.Second
)

// Config is what the exchange needs from its caller.
type Config struct {
	// Issuer is the OAuth issuer base URL, already checked. Empty:
	// https://auth.openai.com.
	Issuer string
	// Getenv reads the environment. Nil: os.Getenv.
	Getenv func(string) string
	// Client sends the exchange. Nil: a client with a 30 s timeout. A copy
	// that never follows a redirect is used either way.
	Client *http.Client
}

// ErrNotConfigured is returned by [New] when neither
// OPENAI_FEDERATION_RULE_ID nor OPENAI_IDENTITY_TOKEN_FILE is set.
var ErrNotConfigured = errors.New("federation: workload identity is not configured (OPENAI_FEDERATION_RULE_ID and OPENAI_IDENTITY_TOKEN_FILE are unset)")

// New returns a token source that exchanges the platform OIDC token in the
// file OPENAI_IDENTITY_TOKEN_FILE names (an absolute path, re-read for
// every exchange because platforms rotate it) with the federation rule
// OPENAI_FEDERATION_RULE_ID for a ChatGPT access token at
// {issuer}/oauth/token (CODEX_WIF_TOKEN_URL_OVERRIDE, a loopback URL,
// wins). Either variable selects workload identity, and then both are
// required: a partial configuration is an error. With neither set it
// returns [ErrNotConfigured].
//
// The source keeps the token in memory only. It re-exchanges ahead of
// expiry (2 minutes, or half the lifetime if shorter, before it), one
// exchange at a time (single flight), keeps serving the current token
// when a refresh-ahead exchange fails until 30 seconds (or a quarter of
// the lifetime) before expiry, and refuses an answer that maps to another
// principal than the first one did. Its Refresh method forces a new
// exchange for a rejected token.
func New(cfg Config) (*Source, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	rule := strings.TrimSpace(getenv(envFederationRuleID))
	file := getenv(envIdentityFile)
	if rule == "" && file == "" {
		return nil, ErrNotConfigured
	}
	if rule == "" {
		return nil, fmt.Errorf("login: workload identity requires %s", envFederationRuleID)
	}
	if file == "" {
		return nil, fmt.Errorf("login: workload identity requires %s", envIdentityFile)
	}
	if !filepath.IsAbs(file) {
		return nil, fmt.Errorf("login: %s must be an absolute path", envIdentityFile)
	}
	issuer := cfg.Issuer
	if issuer == "" {
		issuer = defaultIssuer
	}
	tokenURL := issuer + "/oauth/token"
	if v := getenv(envWIFTokenURL); v != "" {
		if err := checkLoopbackURL(v); err != nil {
			return nil, fmt.Errorf("login: %s: %w", envWIFTokenURL, err)
		}
		tokenURL = v
	}
	base := cfg.Client
	if base == nil {
		base = &http.Client{Timeout: httpTimeout}
	}
	client := *base
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Source{client: &client, rule: rule, file: file, tokenURL: tokenURL, now: time.Now}, nil
}

// checkLoopbackURL accepts an http(s) URL on localhost or a loopback
// address, without user info, query or fragment, as Codex does.
func checkLoopbackURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be a loopback http(s) URL without credentials, query or fragment")
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback()) {
		return errors.New("must be a loopback http(s) URL without credentials, query or fragment")
	}
	return nil
}

// Source is the token source [New] returns; it is a
// credentials.TokenSource and a credentials.Refresher.
type Source struct {
	client   *http.Client
	rule     string
	file     string
	tokenURL string
	now      func() time.Time // a test's clock
	flight   singleflight.Group

	mu        sync.Mutex
	cur       *credentials.Token
	refreshAt time.Time
	mustAt    time.Time
	principal [2]string // user id, account id of the first exchange
}

// Token returns the cached token, exchanging first when it is due.
func (s *Source) Token(ctx context.Context) (*credentials.Token, error) {
	s.mu.Lock()
	cur, now := s.cur, s.now()
	if cur != nil && now.Before(s.refreshAt) {
		s.mu.Unlock()
		return cur, nil
	}
	s.mu.Unlock()
	t, err := s.exchangeShared(ctx)
	if err == nil {
		return t, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.now().Before(s.mustAt) {
		// refresh ahead failed: keep the current token a while longer
		s.refreshAt = minTime(s.now().Add(wifFallbackRetry), s.mustAt)
		return s.cur, nil
	}
	return nil, err
}

// Refresh exchanges again for a token the backend rejected, unless
// another caller already replaced it.
func (s *Source) Refresh(ctx context.Context, rejected *credentials.Token) (*credentials.Token, error) {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil && rejected != nil && cur.AccessToken != rejected.AccessToken {
		return cur, nil
	}
	t, err := s.exchangeShared(ctx)
	if err != nil {
		return nil, err
	}
	if rejected != nil && t.AccessToken == rejected.AccessToken {
		return nil, credentials.ErrTokenUnchanged
	}
	return t, nil
}

// exchangeShared runs one exchange for every concurrent caller. The
// exchange runs detached from a caller's cancellation (bounded by its own
// timeout), so one caller giving up does not fail the others.
func (s *Source) exchangeShared(ctx context.Context) (*credentials.Token, error) {
	ch := s.flight.DoChan("exchange", func() (any, error) {
		xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wifExchangeTimeout)
		defer cancel()
		return s.exchange(xctx)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*credentials.Token), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Source) exchange(ctx context.Context) (*credentials.Token, error) {
	assertion, err := readAssertion(s.file)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}, "federation_rule_id": {s.rule}}
	var status int
	var body []byte
	for attempt := 0; ; attempt++ {
		status, body, err = oauthwire.PostForm(ctx, s.client, s.tokenURL, form)
		retry := err != nil || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
		if !retry || attempt >= wifRetryLimit || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(backoff.Policy{Initial: wifRetryBase, Max: wifRetryBase << wifRetryLimit}.Delay(attempt + 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if err != nil {
		return nil, fmt.Errorf("login: the workload identity token exchange is unavailable: %w", err)
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("login: the workload identity token exchange was rejected with HTTP %d: %s", status, oauthwire.ErrorDetail(body))
	}
	w, err := parseWorkloadToken(body)
	if err != nil {
		return nil, err
	}
	claims := oauthwire.AuthClaims(w.AccessToken)
	fedramp, _ := claims["chatgpt_account_is_fedramp"].(bool)
	tok := &credentials.Token{AccessToken: identity.Secret(w.AccessToken), AccountID: w.AccountID, UserID: w.UserID, FedRAMP: fedramp}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.principal != ([2]string{}) && s.principal != [2]string{w.UserID, w.AccountID} {
		s.cur = nil
		return nil, errors.New("login: the workload identity token exchange changed the mapped principal")
	}
	s.principal = [2]string{w.UserID, w.AccountID}
	s.cur = tok
	s.refreshAt = now.Add(w.Lifetime - min(wifAdvisoryMargin, w.Lifetime/2))
	s.mustAt = now.Add(w.Lifetime - min(wifMandatoryMargin, w.Lifetime/4))
	return tok, nil
}

// readAssertion reads the platform token: a regular file of at most 16
// KiB, trimmed, non-empty, without NUL. Errors name the file, never its
// content.
func readAssertion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("login: could not read the workload identity token file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("login: the workload identity token file %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAssertionBytes+1))
	if err != nil {
		return "", fmt.Errorf("login: could not read the workload identity token file: %w", err)
	}
	if len(data) > maxAssertionBytes {
		return "", errors.New("login: the workload identity token exceeds 16 KiB")
	}
	a := strings.TrimSpace(string(data))
	if a == "" || strings.ContainsRune(a, 0) || !oauthwire.PrintableToken(a) {
		return "", errors.New("login: the workload identity token file holds no valid token")
	}
	return a, nil
}

// workloadToken is a validated answer of the JWT-bearer grant.
type workloadToken struct {
	AccessToken string
	AccountID   string
	UserID      string
	PlanType    string
	Lifetime    time.Duration
}

// parseWorkloadToken validates the exchange answer as Codex does: a
// Bearer token, a lifetime of 1 s to 1 h, a ChatGPT account and a user.
func parseWorkloadToken(body []byte) (*workloadToken, error) {
	var v struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		AccountID   string `json:"chatgpt_account_id"`
		PlanType    string `json:"chatgpt_plan_type"`
		UserID      string `json:"user_id"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, errors.New("login: the workload identity token exchange returned an invalid response")
	}
	lifetime := time.Duration(v.ExpiresIn) * time.Second
	switch {
	case !oauthwire.PrintableToken(v.AccessToken):
		return nil, errors.New("login: the workload identity token exchange returned an empty or unprintable access token")
	case !strings.EqualFold(v.TokenType, "bearer"):
		return nil, errors.New("login: the workload identity token exchange returned an unexpected token type")
	case v.ExpiresIn <= 0 || lifetime > maxWIFLifetime:
		return nil, errors.New("login: the workload identity token exchange returned a token with no usable lifetime")
	case strings.TrimSpace(v.AccountID) == "" || !oauthwire.PrintableToken(v.AccountID):
		return nil, errors.New("login: the workload identity token exchange returned no ChatGPT account id")
	case strings.TrimSpace(v.UserID) == "":
		return nil, errors.New("login: the workload identity token exchange returned no user id")
	}
	return &workloadToken{AccessToken: v.AccessToken, AccountID: v.AccountID, UserID: v.UserID, PlanType: v.PlanType, Lifetime: lifetime}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

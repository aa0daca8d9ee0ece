package identitytest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// codexClientID is the client id the token endpoint expects when
// Options.OAuthClientID is empty: the Codex CLI's.
const codexClientID = "app_EMoamEEZ73f0CkXaXp7hrann"

// The error codes of the token endpoint, as the real one sends them.
const (
	CodeRefreshTokenReused      = "refresh_token_reused"
	CodeRefreshTokenExpired     = "refresh_token_expired"
	CodeRefreshTokenInvalidated = "refresh_token_invalidated"
)

// Login is a ChatGPT login: the account it acts for and, once the server
// issued it, its tokens. A test fills in the account fields to ask for a
// login ([Server.IssueLogin], [Server.ApproveDeviceCode],
// [Server.SetAuthorizeLogin], [FederationRule], or the account of a personal
// access token in [Options]); they go into the https://api.openai.com/auth
// claim of every id and access token, and the token fields are ignored
// there. The tokens are secrets and are redacted in fmt, log/slog and JSON
// output.
type Login struct {
	AccountID string // chatgpt_account_id; required
	UserID    string // chatgpt_user_id
	Email     string
	PlanType  string // chatgpt_plan_type; default "plus" for an issued login
	FedRAMP   bool   // chatgpt_account_is_fedramp

	IDToken      string
	AccessToken  string
	RefreshToken string
	// Expiry is the access token's exp.
	Expiry time.Time
}

// account returns l without its tokens: what the server keeps of a login
// it was asked for.
func (l Login) account() Login {
	return Login{AccountID: l.AccountID, UserID: l.UserID, Email: l.Email, PlanType: l.PlanType, FedRAMP: l.FedRAMP}
}

// summary describes the login with its tokens redacted.
func (l Login) summary() string {
	return fmt.Sprintf("identitytest.Login{AccountID:%q Expiry:%s tokens:[REDACTED]}", l.AccountID, l.Expiry.UTC().Format(time.RFC3339))
}

// Format makes every fmt verb print the login's account and expiry, with
// its tokens redacted.
func (l Login) Format(f fmt.State, _ rune) { io.WriteString(f, l.summary()) }

// LogValue logs the login without its tokens.
func (l Login) LogValue() slog.Value {
	return slog.GroupValue(slog.String("account_id", l.AccountID), slog.Time("expiry", l.Expiry))
}

// MarshalJSON encodes the redacted summary.
func (l Login) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"account_id": l.AccountID, "expiry": l.Expiry})
}

type tokenState struct {
	once    sync.Once
	hmacKey []byte

	mu      sync.Mutex
	refresh map[string]*refreshEntry
	access  map[string]accessEntry
}

type refreshEntry struct {
	claims  Login
	issued  time.Time
	used    bool
	revoked bool
}

type accessEntry struct {
	exp     time.Time
	account string // chatgpt_account_id of its claims
}

func (s *Server) tokens() *tokenState {
	s.tok.once.Do(func() {
		s.tok.hmacKey = make([]byte, 32)
		_, _ = rand.Read(s.tok.hmacKey)
		s.tok.refresh = map[string]*refreshEntry{}
		s.tok.access = map[string]accessEntry{}
	})
	return &s.tok
}

// TokenURL returns the token endpoint URL.
func (s *Server) TokenURL() string { return s.url + TokenPath }

// IssueLogin creates a ChatGPT login for the account fields of c (AccountID
// required): it returns them with an id token, an access token (a JWT with
// exp and the https://api.openai.com/auth claims, accepted as Bearer at
// agent registration and protected resources until it expires by the
// server's clock) and a single-use refresh token.
func (s *Server) IssueLogin(c Login) (*Login, error) {
	if c.AccountID == "" {
		return nil, errors.New("identitytest: IssueLogin: AccountID is required")
	}
	if c.PlanType == "" {
		c.PlanType = "plus"
	}
	return s.issue(c)
}

func (s *Server) issue(c Login) (*Login, error) {
	c = c.account()
	ts := s.tokens()
	now := s.now()
	exp := now.Add(s.tokenLifetime).Truncate(time.Second)
	auth := map[string]any{
		"chatgpt_account_id":         c.AccountID,
		"chatgpt_user_id":            c.UserID,
		"chatgpt_plan_type":          c.PlanType,
		"chatgpt_account_is_fedramp": c.FedRAMP,
	}
	nonce := randomToken(8)
	access, err := ts.sign(map[string]any{
		"exp": exp.Unix(), "iat": now.Unix(), "jti": nonce,
		"https://api.openai.com/auth": auth,
	})
	if err != nil {
		return nil, err
	}
	id, err := ts.sign(map[string]any{
		"exp": exp.Unix(), "iat": now.Unix(), "email": c.Email, "jti": nonce,
		"https://api.openai.com/auth": auth,
	})
	if err != nil {
		return nil, err
	}
	rt := "rt-" + randomToken(24)
	ts.mu.Lock()
	for k, a := range ts.access { // keep the set bounded: forget expired tokens
		if !now.Before(a.exp) {
			delete(ts.access, k)
		}
	}
	ts.access[access] = accessEntry{exp: exp, account: c.AccountID}
	ts.refresh[rt] = &refreshEntry{claims: c, issued: now}
	ts.mu.Unlock()
	l := c
	l.IDToken, l.AccessToken, l.RefreshToken, l.Expiry = id, access, rt, exp
	return &l, nil
}

func (ts *tokenState) sign(claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: ts.hmacKey}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("identitytest: creating signer: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("identitytest: signing token: %w", err)
	}
	return tok, nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// knownAccessToken reports whether tok is a configured access token or
// one the server issued that has not expired.
func (s *Server) knownAccessToken(tok string) bool {
	if s.accessTokens[tok] {
		return true
	}
	ts := s.tokens()
	ts.mu.Lock()
	a, ok := ts.access[tok]
	ts.mu.Unlock()
	return ok && s.now().Before(a.exp)
}

// tokenAccountID returns the account an access token belongs to: the
// account claim of a token the token endpoint issued, or the account
// Options.AccessTokenAccounts gives a configured token. ok is false when
// the server does not know the token's account.
func (s *Server) tokenAccountID(tok string) (account string, ok bool) {
	if a := s.tokenAccount[tok]; a != "" {
		return a, true
	}
	ts := s.tokens()
	ts.mu.Lock()
	a, found := ts.access[tok]
	ts.mu.Unlock()
	return a.account, found && a.account != ""
}

// RevokeRefreshToken makes a refresh token fail with
// refresh_token_invalidated. It reports whether the token was known.
func (s *Server) RevokeRefreshToken(tok string) bool {
	ts := s.tokens()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	e, ok := ts.refresh[tok]
	if ok {
		e.revoked = true
	}
	return ok
}

type tokenRequest struct {
	ClientID     string `json:"client_id"`
	GrantType    string `json:"grant_type"`
	RefreshToken string `json:"refresh_token"`
}

type tokenError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

// serveToken implements POST /oauth/token: refresh-token grants only, as
// the Codex CLI uses the endpoint. Refresh tokens are single use: a
// successful exchange answers new id, access and refresh tokens and the
// old refresh token then fails with refresh_token_reused. A revoked one
// fails with refresh_token_invalidated, one older than
// Options.RefreshTokenLifetime with refresh_token_expired (all 401, with
// {"error": {"code", "message", "type"}}); an unknown token is 400
// {"error": "invalid_grant"}, a wrong client id 401 invalid_client.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	const route = RouteToken
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.reject(w, r, route, http.StatusMethodNotAllowed, "method_not_allowed")
		return
	}
	var req tokenRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil {
		s.reject(w, r, route, http.StatusBadRequest, "invalid_request")
		return
	}
	if req.GrantType != "refresh_token" {
		s.reject(w, r, route, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	if req.ClientID != s.oauthClientID {
		s.tokenReject(w, r, http.StatusUnauthorized, "invalid_client", "unknown client id")
		return
	}
	ts := s.tokens()
	now := s.now()
	ts.mu.Lock()
	e, ok := ts.refresh[req.RefreshToken]
	var code string
	switch {
	case !ok || req.RefreshToken == "":
	case e.revoked:
		code = CodeRefreshTokenInvalidated
	case e.used:
		code = CodeRefreshTokenReused
	case s.refreshLifetime > 0 && now.Sub(e.issued) >= s.refreshLifetime:
		code = CodeRefreshTokenExpired
	default:
		e.used = true
	}
	ts.mu.Unlock()
	switch {
	case !ok:
		s.reject(w, r, route, http.StatusBadRequest, "invalid_grant")
		return
	case code != "":
		s.tokenReject(w, r, http.StatusUnauthorized, code, "Your refresh token cannot be used. Please sign in again.")
		return
	}
	l, err := s.issue(e.claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal"})
		return
	}
	s.mu.Lock()
	s.stats.TokenRefreshes++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"id_token": l.IDToken, "access_token": l.AccessToken, "refresh_token": l.RefreshToken,
		"token_type": "Bearer", "expires_in": int(s.tokenLifetime / time.Second),
	})
}

func (s *Server) tokenReject(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.mu.Lock()
	s.stats.Rejections++
	s.stats.RejectionsByReason[code]++
	s.mu.Unlock()
	s.log.Debug("identitytest: rejected", "route", string(RouteToken), "method", r.Method, "status", status, "reason", code)
	var body tokenError
	body.Error.Code, body.Error.Message, body.Error.Type = code, msg, "invalid_request_error"
	writeJSON(w, status, body)
}

// AuthJSON renders an auth.json for l in the shape the current Codex CLI
// writes after `codex login`: OPENAI_API_KEY null, the tokens object
// (id_token, access_token, refresh_token, account_id) and last_refresh.
func (l Login) AuthJSON(lastRefresh time.Time) []byte {
	doc := struct {
		APIKey *string `json:"OPENAI_API_KEY"`
		Tokens struct {
			IDToken      string `json:"id_token"`
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			AccountID    string `json:"account_id"`
		} `json:"tokens"`
		LastRefresh string `json:"last_refresh"`
	}{}
	doc.Tokens.IDToken, doc.Tokens.AccessToken, doc.Tokens.RefreshToken, doc.Tokens.AccountID =
		l.IDToken, l.AccessToken, l.RefreshToken, l.AccountID
	doc.LastRefresh = lastRefresh.UTC().Format(time.RFC3339Nano)
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}

// WriteAuthJSON writes [Login.AuthJSON] to codexHome/auth.json (mode 0600,
// creating codexHome with mode 0700).
func (l Login) WriteAuthJSON(codexHome string, lastRefresh time.Time) error {
	if err := os.MkdirAll(codexHome, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(codexHome, "auth.json"), l.AuthJSON(lastRefresh), 0o600)
}

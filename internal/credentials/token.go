package credentials

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

// ErrTokenUnchanged is returned by [Refresher.Refresh] when the source can
// only offer the token the server just rejected.
var ErrTokenUnchanged = errors.New("credentials: no fresh token: the source still has the rejected token")

// ErrNoChatGPTLogin is returned by the auth.json token source when the file
// holds no ChatGPT login (no tokens, or an auth_mode of another kind).
var ErrNoChatGPTLogin = errors.New("credentials: auth.json holds no ChatGPT login")

// Token is the Bearer token of a ChatGPT login with its account routing.
// AccessToken is an [identity.Secret], so a Token prints, logs and
// marshals with it redacted.
type Token struct {
	AccessToken identity.Secret
	AccountID   string
	// UserID is the ChatGPT user (claim https://api.openai.com/auth →
	// chatgpt_user_id) when known. Together with AccountID it names the
	// login an agent identity is bound to; "" means the user cannot be
	// established, and then no identity is shared beyond the source.
	UserID  string
	FedRAMP bool
}

// Login names the token's login for agent identity binding.
func (t Token) Login() Login { return Login{AccountID: t.AccountID, UserID: t.UserID} }

// Routing returns the token's routing headers.
func (t Token) Routing() headers.Routing {
	return headers.Routing{AccountID: t.AccountID, FedRAMP: t.FedRAMP}
}

// tokenFields is a Token without methods, for [Token.Format].
type tokenFields Token

// Format prints the token's fields under verb, the access token redacted
// by its [identity.Secret]. Without it fmt would print a *Token nested in a
// slice, map or struct under a verb such as %s as a bad verb, a path that
// skips the Secret's own Format.
func (t Token) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), tokenFields(t))
}

// validateToken checks that a token can be sent: a non-empty access token
// and routing values without control characters.
func validateToken(t *Token) error {
	if t.AccessToken == "" {
		return errors.New("credentials: empty access token")
	}
	if err := headers.ValidateValue(headers.Authorization, t.AccessToken.Reveal()); err != nil {
		return fmt.Errorf("credentials: access token: %w", err)
	}
	return t.Routing().Validate()
}

// TokenSource supplies the current Bearer token of a ChatGPT login.
// Implementations are safe for concurrent use. The returned token is
// shared and read-only: callers must not modify it. Returning the same
// *Token until the token changes lets a transport reuse the header it built
// from it instead of rebuilding it per request.
type TokenSource interface {
	Token(ctx context.Context) (*Token, error)
}

// Refresher is implemented by a [TokenSource] that can look for a fresh
// token after the server rejected one with 401. The transport asks once
// per rejected request: Refresh returns a token whose AccessToken differs
// from rejected.AccessToken, or an error (for example
// [ErrTokenUnchanged]); it never returns rejected again.
type Refresher interface {
	Refresh(ctx context.Context, rejected *Token) (*Token, error)
}

// StaticTokenSource returns a source that always yields t. It is not a
// [Refresher]: a fixed token cannot be refreshed. A token that cannot be
// sent (empty, or with control characters) is an error on every call.
//
// The token is validated once and every call returns the same *Token, so a
// transport can cache what it derives from it; callers must not modify it.
func StaticTokenSource(t Token) TokenSource {
	s := &staticSource{tok: t}
	s.err = validateToken(&s.tok)
	return s
}

type staticSource struct {
	tok Token
	err error
}

func (s *staticSource) Token(ctx context.Context) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	return &s.tok, nil
}

// NewFileTokenSource returns a source that reads the ChatGPT login from the
// auth.json at path (which the Codex CLI rewrites when it refreshes the
// login) and re-reads it only when the file changed: each call stats the
// file and compares file identity, size and modification time with the
// version it last read. A read that fails to parse (the file caught while
// another process rewrites it) is retried, and after that the last token
// read is kept. The returned source also implements [Refresher]:
// Refresh re-reads the file unconditionally and fails with
// [ErrTokenUnchanged] if it still holds the rejected token. Errors are
// *[LoadError] (a missing file wraps fs.ErrNotExist; a file without a
// ChatGPT login wraps [ErrNoChatGPTLogin]).
func NewFileTokenSource(path string) TokenSource { return &fileTokenSource{path: path} }

type fileTokenSource struct {
	path string
	mu   sync.Mutex                   // one reload at a time
	cur  atomic.Pointer[fileSnapshot] // immutable once stored
}

type fileSnapshot struct {
	tok Token
	fi  os.FileInfo // of the open file the token was read from
}

func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func (s *fileTokenSource) Token(ctx context.Context) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t, ok := s.current(); ok {
		return t, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.current(); ok { // another caller reloaded meanwhile
		return t, nil
	}
	snap, err := s.reload()
	if err != nil {
		return nil, err
	}
	return &snap.tok, nil
}

// current returns the cached token when the file has not changed since it
// was read.
func (s *fileTokenSource) current() (*Token, bool) {
	snap := s.cur.Load()
	if snap == nil {
		return nil, false
	}
	fi, err := os.Stat(s.path)
	if err != nil || !sameVersion(snap.fi, fi) {
		return nil, false
	}
	return &snap.tok, true
}

func (s *fileTokenSource) Refresh(ctx context.Context, rejected *Token) (*Token, error) {
	tok, _, err := s.RefreshWithOrigin(ctx, rejected)
	return tok, err
}

// RefreshWithOrigin is Refresh; the file source only ever re-reads the
// file, so its tokens come from the store.
func (s *fileTokenSource) RefreshWithOrigin(ctx context.Context, rejected *Token) (*Token, RefreshOrigin, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.reload()
	if err != nil {
		return nil, 0, err
	}
	if rejected != nil && snap.tok.AccessToken == rejected.AccessToken {
		return nil, 0, &LoadError{Path: s.path, Err: ErrTokenUnchanged}
	}
	return &snap.tok, RefreshFromStore, nil
}

// reload reads the file and caches its token; s.mu must be held.
func (s *fileTokenSource) reload() (*fileSnapshot, error) {
	af, fi, err := readAuthFileRetrying(s.path)
	if err != nil {
		// A file caught mid-rewrite must not turn a working login into a
		// credential error: keep serving the last token read.
		if last := s.cur.Load(); last != nil && errors.Is(err, ErrInvalidAuthFile) {
			return last, nil
		}
		return nil, withPath(err, s.path)
	}
	switch af.AuthMode {
	case "", AuthModeChatGPT, AuthModeChatGPTAuthTokens:
	default:
		return nil, &LoadError{Path: s.path, Field: keyAuthMode, Err: ErrNoChatGPTLogin}
	}
	if af.Tokens == nil {
		return nil, &LoadError{Path: s.path, Field: keyTokens, Err: ErrNoChatGPTLogin}
	}
	login, err := chatGPTLogin(af)
	if err != nil {
		return nil, withPath(err, s.path)
	}
	snap := &fileSnapshot{
		tok: Token{AccessToken: identity.Secret(login.AccessToken), AccountID: login.AccountID, UserID: login.UserID, FedRAMP: login.FedRAMP},
		fi:  fi,
	}
	s.cur.Store(snap)
	return snap, nil
}

// FromOAuth2 adapts a golang.org/x/oauth2 token source. Every token gets
// accountID and fedRAMP as its routing; when accountID is "" and the
// access token is a ChatGPT JWT, its https://api.openai.com/auth
// chatgpt_account_id claim is the account. The user (the login an agent
// identity is bound to) is that claim's chatgpt_user_id, "" for an opaque
// token. A token whose type is not Bearer, or that is empty, is an error. The result implements [Refresher] only by
// asking ts for a token again: that helps when ts fetches a new token on
// every call, but a caching source (oauth2.ReuseTokenSource) returns the
// rejected token until it expires, and Refresh then fails with
// [ErrTokenUnchanged]. Errors from ts are wrapped with their text cut to
// 512 characters, because token endpoints echo response bodies.
func FromOAuth2(ts oauth2.TokenSource, accountID string, fedRAMP bool) TokenSource {
	return &oauth2Source{ts: ts, accountID: accountID, fedRAMP: fedRAMP}
}

type oauth2Source struct {
	ts        oauth2.TokenSource
	accountID string
	fedRAMP   bool
	last      atomic.Pointer[oauth2Claims] // claims of the last access token seen
}

// oauth2Claims caches what an access token's claims say, so a source
// handing out the same token does not parse it per request.
type oauth2Claims struct {
	access          string
	account, userID string
}

// claims returns the account and user claims of access.
func (s *oauth2Source) claims(access string) *oauth2Claims {
	if c := s.last.Load(); c != nil && c.access == access {
		return c
	}
	at := accessTokenClaims(access)
	c := &oauth2Claims{access: access, account: at.AccountID, userID: at.UserID}
	s.last.Store(c)
	return c
}

func (s *oauth2Source) Token(ctx context.Context) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.ts == nil {
		return nil, errors.New("credentials: FromOAuth2: nil oauth2.TokenSource")
	}
	ot, err := s.ts.Token()
	if err != nil {
		return nil, &sourceError{err: err}
	}
	if ot == nil {
		return nil, errors.New("credentials: oauth2 token source returned no token")
	}
	if typ := ot.Type(); typ != headers.SchemeBearer {
		return nil, fmt.Errorf("credentials: oauth2 token type %q is not Bearer", truncate(typ, 64))
	}
	claims := s.claims(ot.AccessToken)
	t := &Token{AccessToken: identity.Secret(ot.AccessToken), AccountID: s.accountID, UserID: claims.userID, FedRAMP: s.fedRAMP}
	if t.AccountID == "" {
		t.AccountID = claims.account
	}
	if err := validateToken(t); err != nil {
		return nil, err
	}
	return t, nil
}

func (s *oauth2Source) Refresh(ctx context.Context, rejected *Token) (*Token, error) {
	t, err := s.Token(ctx)
	if err != nil {
		return nil, err
	}
	if rejected != nil && t.AccessToken == rejected.AccessToken {
		return nil, ErrTokenUnchanged
	}
	return t, nil
}

// sourceError wraps an error from a foreign token source, shortening its
// text; errors.Is/As still reach the original.
type sourceError struct{ err error }

func (e *sourceError) Error() string {
	return "credentials: oauth2 token source: " + truncate(e.err.Error(), maxQuotedError)
}

func (e *sourceError) Unwrap() error { return e.err }

// maxQuotedError is how many characters of a foreign error text are kept.
const maxQuotedError = 512

// truncate keeps the first n characters (runes) of s, then "...".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for k := range s {
		if i == n {
			return s[:k] + "..."
		}
		i++
	}
	return s
}

var (
	_ OriginRefresher = (*fileTokenSource)(nil)
	_ Refresher       = (*oauth2Source)(nil)
)

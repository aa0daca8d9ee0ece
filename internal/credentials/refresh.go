package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/useragent"
)

// The ChatGPT token endpoint, as the Codex CLI uses it.
const (
	// DefaultTokenURL is where a ChatGPT refresh token is exchanged.
	DefaultTokenURL = "https://auth.openai.com/oauth/token"
	// DefaultClientID is the OAuth client id of the Codex CLI.
	DefaultClientID = "app_EMoamEEZ73f0CkXaXp7hrann"
	// EnvRefreshTokenURL overrides DefaultTokenURL.
	EnvRefreshTokenURL = "CODEX_REFRESH_TOKEN_URL_OVERRIDE"
	// EnvClientID overrides DefaultClientID.
	EnvClientID = "CODEX_APP_SERVER_LOGIN_CLIENT_ID"
)

// When a ChatGPT access token is refreshed.
const (
	// RefreshWindow: a token whose JWT exp is this close is refreshed,
	// as the Codex CLI does. A short-lived token uses a smaller window,
	// a quarter of its lifetime (see [RefreshWindowFor]), so that it is
	// not due from the moment it is issued.
	RefreshWindow = 5 * time.Minute
	// StaleAfter: a token without a readable exp is refreshed when
	// last_refresh is this old (or absent).
	StaleAfter = 8 * 24 * time.Hour
	// DefaultRefreshTimeout bounds one refresh: waiting for the lock,
	// reading the store and the token request.
	DefaultRefreshTimeout = 30 * time.Second
)

// RefreshWindowFor returns how long before exp a token issued at iat is
// due: [RefreshWindow], or a quarter of the token's lifetime (exp − iat)
// when that is shorter. Real ChatGPT access tokens live for days, so they
// are due 5 minutes ahead as in the Codex CLI; a token living 2 s (a test
// server, a short-lived deployment) is due in its last 500 ms instead of
// always, which would make every request start a token request. When iat
// is unknown (zero) or not before exp, the lifetime is unknown and the
// window is RefreshWindow.
func RefreshWindowFor(iat, exp time.Time) time.Duration {
	if iat.IsZero() || exp.IsZero() || !iat.Before(exp) {
		return RefreshWindow
	}
	return min(RefreshWindow, exp.Sub(iat)/4)
}

// Backoff after a temporary refresh failure: full jitter in [d/2, d], d
// doubling from refreshBackoffBase to refreshBackoffMax.
const (
	refreshBackoffBase = time.Second
	refreshBackoffMax  = time.Minute
)

// freshRejectionHold is how long a token this source got from the token
// endpoint is not refreshed again when a server refuses it. A token the
// endpoint has just issued and a server refuses at once says the server,
// not the token, is refusing (a path the login may not use, an account
// header a proxy rejects): another refresh would spend the single-use
// refresh token, and risk the login, on every request for nothing. The
// hold only stops refreshes asked for after a 401; a token that becomes
// due is still refreshed ahead of its expiry.
const freshRejectionHold = 5 * time.Minute

// maxTokenResponse bounds how much of a token endpoint response is read.
const maxTokenResponse = 1 << 20

// ErrInsecureTokenURL is returned by [NewRefreshingTokenSource] when the
// token endpoint URL is not https (plain http is accepted only on a
// loopback host, for a local test server): the refresh request carries
// the login's refresh token, which must never cross a network in clear.
var ErrInsecureTokenURL = errors.New("credentials: the token endpoint must be an https URL (plain http only on a loopback host)")

// ErrLoginExpired is matched (errors.Is) by every permanent refresh
// failure: the login cannot be refreshed any more and the user must log in
// again. The *[RefreshError] says why.
var ErrLoginExpired = errors.New("credentials: the ChatGPT login can no longer be refreshed; log in again (codex login)")

// Reasons of a permanent [RefreshError].
const (
	ReasonRefreshTokenExpired     = "refresh_token_expired"
	ReasonRefreshTokenReused      = "refresh_token_reused"
	ReasonRefreshTokenInvalidated = "refresh_token_invalidated"
	// ReasonAppSessionTerminated: the ChatGPT session the login belongs
	// to was ended (a sign-out elsewhere, a revoked app session).
	ReasonAppSessionTerminated = "app_session_terminated"
	// ReasonInvalidRefreshToken: the endpoint does not accept the refresh
	// token at all.
	ReasonInvalidRefreshToken = "invalid_refresh_token"
	ReasonUnauthorized        = "unauthorized"     // 401 with another or no code
	ReasonInvalidGrant        = "invalid_grant"    // 400 invalid_grant (RFC 6749)
	ReasonAccountChanged      = "account_changed"  // the store or the token answer names another account or user
	ReasonNoRefreshToken      = "no_refresh_token" // the login has no refresh token
	ReasonNoLogin             = "no_login"         // the store holds no ChatGPT login
)

// RefreshError is a failed ChatGPT token refresh. It never holds a token or
// the response body, only the status and the error code the endpoint gave.
type RefreshError struct {
	// Permanent is set when refreshing again cannot help (see
	// [ErrLoginExpired]); otherwise the failure is temporary and the
	// source retries after a jittered backoff.
	Permanent bool
	// Reason is one of the Reason constants for a permanent failure, or
	// the lower-cased error code of the response ("" when none).
	Reason string
	// Status is the HTTP status of the token endpoint, 0 when there was no
	// response.
	Status int
	// Err is the cause (a network error, for example), or nil.
	Err error
}

// Error explains the failure; a permanent one tells the user to log in
// again and names the cause.
func (e *RefreshError) Error() string {
	if e.Permanent {
		why := map[string]string{
			ReasonRefreshTokenExpired:     "the refresh token has expired",
			ReasonRefreshTokenReused:      "the refresh token was already used",
			ReasonRefreshTokenInvalidated: "the refresh token was revoked",
			ReasonAppSessionTerminated:    "the ChatGPT session of this login was ended",
			ReasonInvalidRefreshToken:     "the token endpoint does not accept the refresh token",
			ReasonUnauthorized:            "the token endpoint rejected the refresh token",
			ReasonInvalidGrant:            "the token endpoint rejected the refresh token (invalid_grant)",
			ReasonAccountChanged:          "the login now belongs to another ChatGPT account or user (auth.json holds another login, or the token endpoint answered with another one's tokens)",
			ReasonNoRefreshToken:          "the login has no refresh token",
			ReasonNoLogin:                 "there is no ChatGPT login any more",
		}[e.Reason]
		if why == "" {
			why = "the token endpoint answered " + strconv.Quote(e.Reason)
		}
		return "credentials: the ChatGPT login can no longer be refreshed: " + why + "; log in again (codex login)"
	}
	var b strings.Builder
	b.WriteString("credentials: refreshing the ChatGPT token failed")
	if e.Status != 0 {
		b.WriteString(" (HTTP " + strconv.Itoa(e.Status))
		if e.Reason != "" {
			b.WriteString(", " + strconv.Quote(e.Reason))
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": " + truncate(e.Err.Error(), maxQuotedError))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *RefreshError) Unwrap() error { return e.Err }

// Is matches [ErrLoginExpired] for a permanent failure.
func (e *RefreshError) Is(target error) bool { return e.Permanent && target == ErrLoginExpired }

// Temporary reports whether a later refresh may succeed.
func (e *RefreshError) Temporary() bool { return !e.Permanent }

// RefreshOrigin says where a token returned after a 401 came from.
type RefreshOrigin uint8

// The origins of an [OriginRefresher] token.
const (
	// RefreshFromStore: the store (auth.json, a shared coordinator) already
	// held another token, written by whoever refreshed last; no token was
	// exchanged at the endpoint.
	RefreshFromStore RefreshOrigin = iota + 1
	// RefreshFromEndpoint: the token endpoint issued the token, for this
	// rejection or for a refresh already in flight that the call joined.
	RefreshFromEndpoint
)

// String returns "store", "endpoint" or "unknown".
func (o RefreshOrigin) String() string {
	switch o {
	case RefreshFromStore:
		return "store"
	case RefreshFromEndpoint:
		return "endpoint"
	}
	return "unknown"
}

// OriginRefresher is a [Refresher] that also says where the token came
// from. A transport uses it to decide whether asking again after the
// fresh token is rejected too can help: after a store reload another
// token may still be had from the endpoint; after the endpoint itself
// answered, asking again would only spend another refresh token. A
// Refresher that does not implement it is asked once per rejected request.
type OriginRefresher interface {
	Refresher
	// RefreshWithOrigin is Refresh, with the origin of the token (zero
	// when err is not nil).
	RefreshWithOrigin(ctx context.Context, rejected *Token) (*Token, RefreshOrigin, error)
}

// RefreshOptions configures [NewRefreshingTokenSource]. Only Coordinator
// is required.
type RefreshOptions struct {
	// Coordinator stores the login and serialises its refreshes: the
	// auth.json one of [NewAuthFileCoordinator], or a shared store.
	Coordinator RefreshCoordinator
	// TokenURL is the token endpoint. Default: env
	// CODEX_REFRESH_TOKEN_URL_OVERRIDE (read through Getenv), else
	// [DefaultTokenURL]. It must be https, or http on a loopback host
	// ([ErrInsecureTokenURL] otherwise).
	TokenURL string
	// ClientID is the OAuth client id sent with every refresh. Default:
	// env CODEX_APP_SERVER_LOGIN_CLIENT_ID, else [DefaultClientID].
	ClientID string
	// HTTPClient sends the token requests. Default: a client on
	// http.DefaultTransport. Each request is bounded by Timeout anyway.
	// The source uses a copy that never follows a redirect, whatever
	// CheckRedirect says: a redirect would carry the refresh token to
	// another URL (307/308 re-send the body) or turn the refresh into a
	// GET whose answer would be taken for tokens (302/303). A 3xx answer
	// is a temporary failure.
	HTTPClient *http.Client
	// Getenv reads the environment overrides. Default: os.Getenv.
	Getenv func(string) string
	// Timeout bounds one refresh (lock wait, store read, token request).
	// Default: [DefaultRefreshTimeout].
	Timeout time.Duration
	// Logger receives debug records of refreshes (never a token).
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock deciding when a token is due, and when a
	// remembered permanent failure looks at the store again (at most once
	// a second). Default: time.Now.
	Now func() time.Time

	// jitter maps a backoff to the wait actually used; tests replace it.
	jitter func(time.Duration) time.Duration
}

// RefreshingTokenSource is a [TokenSource] and [Refresher] that keeps a
// ChatGPT login alive by refreshing its access token as the Codex CLI
// does, and better where the CLI is weak:
//
//   - A token is due when its JWT exp is within [RefreshWindow] (5
//     minutes, or a quarter of the token's lifetime exp − iat when that
//     is shorter: [RefreshWindowFor]), or, when exp cannot be read, when
//     last_refresh is older than [StaleAfter].
//   - A due token that is still valid is refreshed ahead in the
//     background, in one flight, while every request keeps using it. Only
//     an expired token (or one whose expiry is unknown and that is stale)
//     makes requests wait, each bounded by its own context; a token known
//     to be expired is never returned.
//   - One refresh per login at a time, across every source of the
//     process, other processes and the Codex CLI: under the
//     coordinator's lock the store is read first, and when it already
//     holds a newer token for the same account that token is used with no
//     network call. The answer is checked before anything is stored:
//     only the fields the endpoint returned are stored, with the account
//     re-derived from a new id token and last_refresh set, and an answer
//     whose access token cannot be used stores only its rotated refresh
//     token (the old one is spent) and is a temporary failure.
//   - A permanent failure (401, or error code refresh_token_expired,
//     refresh_token_reused, refresh_token_invalidated,
//     app_session_terminated or invalid_refresh_token, or 400
//     invalid_grant) is a *[RefreshError] matching [ErrLoginExpired],
//     remembered until the store changes, with no network call meanwhile;
//     the store is looked at again at most once a second, on the
//     caller's context, one read shared by concurrent callers.
//     Anything else is temporary and retried after a jittered backoff.
//   - A token the endpoint has just issued to the source and a server
//     refuses at once is not refreshed again after a 401 for five
//     minutes: the server, not the token, is refusing, and each refresh
//     spends the single-use refresh token. [RefreshingTokenSource.RefreshWithOrigin]
//     says whether a token came from the store or the endpoint.
//
// A source is bound to the login (account and user) it first loaded; a
// store that later holds another login, or a token answer whose id token
// or access token names another account or user, is a permanent "account
// changed" failure. Such an answer is not stored at all: its tokens
// belong to a login nobody chose, and since the endpoint spent the old
// refresh token the user must log in again. Create
// it with [NewRefreshingTokenSource]; Close stops a refresh in flight.
type RefreshingTokenSource struct {
	coord    RefreshCoordinator
	tokenURL string
	clientID string
	client   *http.Client
	timeout  time.Duration
	log      *slog.Logger
	now      func() time.Time
	jitter   func(time.Duration) time.Duration

	cache atomic.Pointer[refreshSnap]

	ctx    context.Context // parent of every flight; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	loadMu  sync.Mutex // one initial load at a time
	adoptMu sync.Mutex // one adopt at a time

	// spent remembers the refresh tokens of this login that must never
	// be sent again (see refresh_spent.go).
	spent spentTokens
	// unsaved is set while the newest rotation this source holds has not
	// reached the store (a failed write, a full disk): it is written on
	// the next Token call, in the background, and at Close (see
	// refresh_unsaved.go).
	unsaved atomic.Bool
	// skew is the local clock minus the token endpoint's, in
	// nanoseconds, 0 when they agree (see refresh_clock.go).
	skew atomic.Int64

	mu      sync.Mutex
	flight  *refreshFlight
	fresh   freshToken // the last token the endpoint issued to this source
	perm    *permanentFailure
	retryAt time.Time
	backoff time.Duration
	lastErr error // the last temporary failure, served during the backoff

	saving      bool      // a background write of the unsaved rotation runs
	saveRetryAt time.Time // no background write before this (local clock)
	saveBackoff time.Duration

	// requests counts token requests sent (for tests and diagnostics).
	requests atomic.Int64
}

type refreshSnap struct {
	set TokenSet
	tok *Token
	exp time.Time // the access token's exp; zero when unknown
	iat time.Time // the access token's iat; zero when unknown
	// window is how long before exp the token is due.
	window time.Duration
	// heldUntil (local clock) is set on a token the endpoint has just
	// issued to this source: until then it is neither due nor expired,
	// whatever the clocks say (see refresh_clock.go).
	heldUntil time.Time
}

type refreshFlight struct {
	done chan struct{}
	snap *refreshSnap
	err  error
	// exchanged is set when snap came from the token endpoint (not from
	// a newer token found in the store).
	exchanged bool
}

// freshToken is the access token the endpoint last issued to the source
// and when: see [freshRejectionHold].
type freshToken struct {
	access string
	issued time.Time
}

type permanentFailure struct {
	err *RefreshError
	fp  string // the store's tokens when it happened

	// The store re-read that may end the failure (see recheck); guarded
	// by s.mu.
	checked time.Time     // when the last re-read started; zero: none yet
	reading chan struct{} // closed when the re-read in progress ends; nil: none
	changed *TokenSet     // the changed set a re-read found; nil: none
}

// NewRefreshingTokenSource returns a refreshing source over
// opts.Coordinator. Nothing is read until the first Token call.
func NewRefreshingTokenSource(opts RefreshOptions) (*RefreshingTokenSource, error) {
	if opts.Coordinator == nil {
		return nil, errors.New("credentials: NewRefreshingTokenSource: RefreshOptions.Coordinator is required")
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	s := &RefreshingTokenSource{
		coord:    opts.Coordinator,
		tokenURL: strings.TrimSpace(opts.TokenURL),
		clientID: strings.TrimSpace(opts.ClientID),
		client:   opts.HTTPClient,
		timeout:  opts.Timeout,
		log:      opts.Logger,
		now:      opts.Now,
		jitter:   opts.jitter,
	}
	if s.tokenURL == "" {
		s.tokenURL = strings.TrimSpace(getenv(EnvRefreshTokenURL))
	}
	if s.tokenURL == "" {
		s.tokenURL = DefaultTokenURL
	}
	if s.clientID == "" {
		s.clientID = strings.TrimSpace(getenv(EnvClientID))
	}
	if s.clientID == "" {
		s.clientID = DefaultClientID
	}
	if err := checkTokenURL(s.tokenURL); err != nil {
		return nil, err
	}
	s.client = withoutRedirects(s.client)
	if s.timeout <= 0 {
		s.timeout = DefaultRefreshTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.jitter == nil {
		s.jitter = func(d time.Duration) time.Duration { return d/2 + time.Duration(rand.Int64N(int64(d/2)+1)) }
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// checkTokenURL accepts an absolute https URL, or http on a loopback host.
// The error names the scheme and host only: a URL may carry credentials.
func checkTokenURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: the token endpoint URL (RefreshOptions.TokenURL or %s) is not an absolute http(s) URL", ErrInsecureTokenURL, EnvRefreshTokenURL)
	}
	if u.Scheme == "http" && !identity.IsLoopbackBase("http://"+u.Host) {
		return fmt.Errorf("%w: the token endpoint http://%s is plain http on a non-loopback host and would receive the refresh token in clear", ErrInsecureTokenURL, u.Host)
	}
	return nil
}

// withoutRedirects returns a copy of c (nil: a default client) that hands
// a redirect back as the response instead of following it.
func withoutRedirects(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// Close stops a refresh in flight, waits for it to end and closes the
// HTTP client's idle connections. A refresh whose token request was
// already sent is not cut short: its answer is read and stored (within the
// refresh timeout), because the endpoint has spent the old refresh token.
// A rotation the store could not take earlier (a full disk) is written
// once more, within the refresh timeout and at most five seconds.
// The source keeps serving its current token afterwards but refreshes no
// more.
func (s *RefreshingTokenSource) Close() {
	s.cancel()
	s.wg.Wait()
	s.saveAtClose()
	s.client.CloseIdleConnections()
}

// TokenRequests returns how many token requests the source has sent.
func (s *RefreshingTokenSource) TokenRequests() int64 { return s.requests.Load() }

// Token returns the current token, refreshing it as the type doc says.
func (s *RefreshingTokenSource) Token(ctx context.Context) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap := s.cache.Load()
	if snap == nil {
		var err error
		if snap, err = s.initial(ctx); err != nil {
			return nil, err
		}
	}
	if s.unsaved.Load() {
		s.kickSave()
	}
	now := s.clock()
	if !snap.due(now) {
		return snap.tok, nil
	}
	if !snap.mustWait(now) {
		// Refresh ahead; a failure here is retried after the backoff and
		// the valid token is used meanwhile.
		_, _ = s.start(ctx, snap, nil, false)
		return snap.tok, nil
	}
	f, err := s.start(ctx, snap, nil, false)
	if err == nil {
		select {
		case <-f.done:
			err = f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err == nil {
			return f.snap.tok, nil
		}
	}
	if !snap.expired(now) && !isPermanent(err) {
		// Stale by last_refresh but not known to be expired: still usable.
		return snap.tok, nil
	}
	return nil, err
}

// Refresh implements [Refresher] for a token the server rejected with 401;
// it is [RefreshingTokenSource.RefreshWithOrigin] without the origin.
func (s *RefreshingTokenSource) Refresh(ctx context.Context, rejected *Token) (*Token, error) {
	tok, _, err := s.RefreshWithOrigin(ctx, rejected)
	return tok, err
}

// RefreshWithOrigin implements [OriginRefresher] for a token the server
// rejected with 401: it reads the store first and returns a different
// token found there for the same login (no network call,
// [RefreshFromStore]); only when the store still holds the rejected token
// does it refresh over the network ([RefreshFromEndpoint], also when it
// joined a refresh already in flight). A store holding another account is
// a permanent "account changed" error.
//
// A rejected token that this source got from the token endpoint less than
// five minutes ago is not refreshed again: the error matches
// [ErrTokenUnchanged]. The endpoint has just issued it, so the server that
// refuses it would most likely refuse the next one too, and each refresh
// spends the login's single-use refresh token. Tokens that become due are
// refreshed as usual; only refreshes asked for after a 401 wait.
func (s *RefreshingTokenSource) RefreshWithOrigin(ctx context.Context, rejected *Token) (*Token, RefreshOrigin, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	snap := s.cache.Load()
	if snap == nil {
		var err error
		if snap, err = s.initial(ctx); err != nil {
			return nil, 0, err
		}
	}
	if rejected == nil {
		rejected = snap.tok
	}
	set, err := s.coord.Load(ctx)
	switch {
	case err != nil && !isTornRead(err):
		return nil, 0, err
	case err == nil && set == nil:
		return nil, 0, &RefreshError{Permanent: true, Reason: ReasonNoLogin}
	case err == nil && !s.behind(set):
		// A file still being written is skipped here (the flight reads
		// it again), and so is one behind the newest set this source
		// holds: a stale copy must not replace it (the flight writes the
		// newest one back).
		cur := newRefreshSnap(*set)
		if !sameLogin(snap, cur) {
			return nil, 0, s.remember(&RefreshError{Permanent: true, Reason: ReasonAccountChanged}, set)
		}
		if cur.tok.AccessToken != rejected.AccessToken && !cur.expired(s.clock()) && s.adopt(cur) {
			return cur.tok, RefreshFromStore, nil
		}
	}
	now := s.now()
	if s.heldFresh(rejected.AccessToken.Reveal(), now) {
		return nil, 0, errFreshRejected
	}
	f, err := s.start(ctx, snap, rejected, true)
	if err != nil {
		return nil, 0, err
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if f.err != nil {
		return nil, 0, f.err
	}
	if f.snap.tok.AccessToken == rejected.AccessToken {
		return nil, 0, ErrTokenUnchanged
	}
	origin := RefreshFromStore
	if f.exchanged {
		origin = RefreshFromEndpoint
	}
	return f.snap.tok, origin, nil
}

// errFreshRejected is RefreshWithOrigin's answer for a token held by
// [freshRejectionHold].
var errFreshRejected = fmt.Errorf("%w (the token endpoint issued it moments ago and the server refused it at once; it is not refreshed again for %s)",
	ErrTokenUnchanged, freshRejectionHold)

// heldFresh reports whether access is the token the endpoint issued to
// this source less than freshRejectionHold before now.
func (s *RefreshingTokenSource) heldFresh(access string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fresh.access != "" && s.fresh.access == access && now.Before(s.fresh.issued.Add(freshRejectionHold))
}

// initial loads the login the source is bound to.
func (s *RefreshingTokenSource) initial(ctx context.Context) (*refreshSnap, error) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if snap := s.cache.Load(); snap != nil {
		return snap, nil
	}
	set, err := s.coord.Load(ctx)
	if err != nil {
		return nil, err
	}
	if set == nil {
		return nil, &LoadError{Err: ErrNoChatGPTLogin}
	}
	snap := newRefreshSnap(*set)
	if err := validateToken(snap.tok); err != nil {
		return nil, err
	}
	s.cache.Store(snap)
	return snap, nil
}

// adopt makes snap current unless its token cannot be sent or its set is
// behind the one held (see [RefreshingTokenSource.behind]), and reports
// whether it did. The refresh token of the set it replaces is remembered
// as spent: a newer set of the login was issued in exchange for it.
func (s *RefreshingTokenSource) adopt(snap *refreshSnap) bool {
	if validateToken(snap.tok) != nil || s.behind(&snap.set) {
		return false
	}
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	if old := s.cache.Load(); old != nil && old.set.RefreshToken != snap.set.RefreshToken {
		if s.behind(&snap.set) { // a newer one came meanwhile
			return false
		}
		s.spent.add(old.set.RefreshToken)
	}
	s.cache.Store(snap)
	return true
}

// start joins the refresh in flight or starts one. held is the snapshot the
// caller saw; rejected, when set, is a token the server refused (the
// refresh then ignores the due rules). It fails at once, without a
// flight, with a remembered permanent failure (unless the store changed
// since: see [RefreshingTokenSource.recheck]) or, unless forced, with the
// last temporary failure during its backoff.
func (s *RefreshingTokenSource) start(ctx context.Context, held *refreshSnap, rejected *Token, force bool) (*refreshFlight, error) {
	s.mu.Lock()
	f, p := s.flight, s.perm
	closed := s.ctx.Err() != nil
	s.mu.Unlock()
	switch {
	case f != nil:
		return f, nil
	case closed:
		return nil, &RefreshError{Err: errors.New("token source closed")}
	case p != nil:
		set, err := s.recheck(ctx, p)
		if err != nil {
			return nil, err
		}
		// The store changed (a new login, a refresh by someone else):
		// forget the failure and look again.
		s.mu.Lock()
		if s.perm == p {
			s.perm = nil
			s.retryAt, s.backoff, s.lastErr = time.Time{}, 0, nil
		}
		s.mu.Unlock()
		cur := newRefreshSnap(*set)
		if !sameLogin(held, cur) {
			return nil, s.remember(&RefreshError{Permanent: true, Reason: ReasonAccountChanged}, set)
		}
		if !cur.due(s.clock()) && s.adopt(cur) {
			f := &refreshFlight{done: make(chan struct{}), snap: cur}
			close(f.done)
			return f, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight != nil {
		return s.flight, nil
	}
	if s.ctx.Err() != nil {
		return nil, &RefreshError{Err: errors.New("token source closed")}
	}
	if s.perm != nil { // a failure that happened meanwhile
		return nil, s.perm.err
	}
	if !force && s.now().Before(s.retryAt) && s.lastErr != nil {
		return nil, s.lastErr
	}
	f = &refreshFlight{done: make(chan struct{})}
	s.flight = f
	s.wg.Add(1)
	go s.run(f, held, rejected)
	return f, nil
}

// permRecheckEvery is how often, at most, a remembered permanent failure
// re-reads the store to see whether it changed (by the source's clock).
const permRecheckEvery = time.Second

// recheck re-reads the store to see whether a remembered permanent failure
// p still holds: it returns the store's set when the store changed since
// the failure, and p's error otherwise (also when the read fails or ctx
// ends first: nothing was seen to end the failure). The read runs on the
// caller's ctx,
// outside s.mu, so a store that hangs holds up only callers whose context
// allows it; it happens at most once per [permRecheckEvery] (the failure
// is served in between) and concurrent callers share one read, each
// waiting for it no longer than its own ctx allows.
func (s *RefreshingTokenSource) recheck(ctx context.Context, p *permanentFailure) (*TokenSet, error) {
	s.mu.Lock()
	if p.changed != nil {
		set := p.changed
		s.mu.Unlock()
		return set, nil
	}
	if wait := p.reading; wait != nil {
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, p.err // nothing seen to change it
		}
		s.mu.Lock()
		set := p.changed
		s.mu.Unlock()
		if set == nil {
			return nil, p.err
		}
		return set, nil
	}
	now := s.now()
	if !p.checked.IsZero() && now.Sub(p.checked) < permRecheckEvery {
		s.mu.Unlock()
		return nil, p.err
	}
	p.checked = now
	done := make(chan struct{})
	p.reading = done
	s.mu.Unlock()

	set, err := s.coord.Load(ctx)
	s.mu.Lock()
	if err == nil && set != nil && fingerprint(set) != p.fp && !s.behind(set) {
		p.changed = set
	}
	p.reading = nil
	changed := p.changed
	s.mu.Unlock()
	close(done)
	if changed != nil {
		return changed, nil
	}
	return nil, p.err
}

// run is one refresh flight, on a context detached from every caller.
func (s *RefreshingTokenSource) run(f *refreshFlight, held *refreshSnap, rejected *Token) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	snap, set, exchanged, err := s.refreshLocked(ctx, held, rejected)

	s.mu.Lock()
	var re *RefreshError
	switch {
	case err == nil:
		s.retryAt, s.backoff, s.lastErr = time.Time{}, 0, nil
		s.adopt(snap)
		if exchanged {
			s.fresh = freshToken{access: snap.tok.AccessToken.Reveal(), issued: s.now()}
		}
	case errors.As(err, &re) && re.Permanent:
		s.perm = &permanentFailure{err: re, fp: fingerprint(set)}
	case isTornRead(err):
		// auth.json was being rewritten in place for longer than a read
		// retries: nothing is wrong with the login, so the next request
		// tries again at once instead of waiting out a backoff.
		err = &RefreshError{Err: err}
	default:
		if !errors.As(err, &re) {
			err = &RefreshError{Err: err}
		}
		s.backoff = min(max(s.backoff*2, refreshBackoffBase), refreshBackoffMax)
		s.retryAt = s.now().Add(s.jitter(s.backoff))
		s.lastErr = err
	}
	f.snap, f.err, f.exchanged = snap, err, exchanged
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
	if err != nil {
		s.log.Debug("credentials: ChatGPT token refresh failed", "error", err)
	}
}

// refreshLocked takes the lock, re-reads the store, and either adopts a
// newer token found there or refreshes over the network and stores the
// result. set is what the store held (for remembering a failure);
// exchanged is set when the token came from the endpoint.
func (s *RefreshingTokenSource) refreshLocked(ctx context.Context, held *refreshSnap, rejected *Token) (_ *refreshSnap, set *TokenSet, exchanged bool, _ error) {
	release, err := s.coord.Lock(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	defer release()
	set, err = s.coord.Load(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	if set == nil {
		return nil, nil, false, &RefreshError{Permanent: true, Reason: ReasonNoLogin}
	}
	if newest := s.cache.Load(); s.behind(set) {
		// The store went back to an older set of the login: a stale copy
		// the Codex CLI saved (it writes the auth it loaded earlier, with
		// no lock), or a rotation of ours that never reached the store.
		// Its refresh token is spent: keep the newest set and put it back.
		if err := s.coord.CompareAndSwap(ctx, set, &newest.set); err != nil {
			s.unsaved.Store(true)
			s.log.Warn("credentials: auth.json holds an older ChatGPT token set; writing the newest one back failed, will retry", "error", err)
		} else {
			s.unsaved.Store(false)
			s.log.Debug("credentials: auth.json held an older ChatGPT token set; the newest one was written back")
		}
		cp := newest.set
		set = &cp
	}
	cur := newRefreshSnap(*set)
	if !sameLogin(held, cur) {
		return nil, set, false, &RefreshError{Permanent: true, Reason: ReasonAccountChanged}
	}
	target := held.tok.AccessToken
	if rejected != nil {
		target = rejected.AccessToken
	}
	if cur.tok.AccessToken != target && !cur.due(s.clock()) {
		return cur, set, false, nil // someone else refreshed: no network call
	}
	if set.RefreshToken == "" {
		return nil, set, false, &RefreshError{Permanent: true, Reason: ReasonNoRefreshToken}
	}
	if s.spent.has(set.RefreshToken) {
		// Never sent twice: the endpoint would answer
		// refresh_token_reused and end the login for every reader. Only a
		// store that went back to it without being behind (no newer set
		// held) gets here; wait for a newer one.
		return nil, set, false, &RefreshError{Err: errors.New("the stored refresh token was already exchanged; waiting for the newer one to be stored")}
	}
	// Once the request is out, the endpoint may rotate the tokens: cutting
	// the answer or its storing short (Close, a process shutting down)
	// would keep only the spent refresh token and log the user out. From
	// here on only the refresh's own deadline bounds the work.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
		defer cancel()
	}
	resp, err := s.exchange(ctx, set.RefreshToken)
	if err != nil {
		return nil, set, false, err
	}
	if !answerIsLogin(resp, held, cur) {
		// The endpoint answered with another account's or user's tokens.
		// None of them is stored, not even the rotated refresh token:
		// writing another login into this login's place would switch
		// every reader of the store (the Codex CLI, other processes, the
		// agent identity bound to it) to a login nobody chose. The store
		// keeps this login, whose refresh token the endpoint has just
		// spent, so it cannot be refreshed any more: the failure is
		// permanent and the user logs in again, which is also what any
		// other reader will be told when it tries that refresh token.
		s.log.Warn("credentials: the token endpoint answered with tokens of another ChatGPT account or user; nothing was stored")
		return nil, set, false, &RefreshError{Permanent: true, Reason: ReasonAccountChanged}
	}
	next, unusable := s.nextSet(*set, resp)
	if unusable == nil {
		s.learnSkew(resp)
	}
	snap := newRefreshSnap(next)
	if next != *set {
		if err := s.coord.CompareAndSwap(ctx, set, &next); err != nil {
			// The endpoint already rotated the tokens; the new ones are
			// valid even though the store could not take them. They are
			// held and written on the next Token call, by a later
			// refresh (the store still holds the spent set, which is
			// behind) and at Close.
			s.unsaved.Store(true)
			s.log.Warn("credentials: storing refreshed ChatGPT tokens failed; keeping them to store later", "error", err)
		} else {
			s.unsaved.Store(false)
		}
	}
	if unusable != nil {
		// Only the rotated refresh token is new; hold it with the old
		// access token, so that it is the one written back and sent next.
		s.adopt(snap)
		return nil, &next, false, unusable
	}
	snap.heldUntil = s.holdUntil(snap, resp.received)
	return snap, &next, true, nil
}

// nextSet returns the set to store after a successful token answer: prev
// with the tokens the answer carries, the account re-derived from a new id
// token and last_refresh set to now. An answer that could not be used as
// a login (no access token, one that cannot be sent, an id token that
// cannot be read: stored, any of them would make auth.json unreadable or
// the login unusable for every reader) is not stored and yields a
// temporary error; only a rotated refresh token is kept from it, because
// the endpoint has spent the old one. The old access token, id token and
// last_refresh stay, so the login is still due and is refreshed again.
func (s *RefreshingTokenSource) nextSet(prev TokenSet, resp *tokenResponse) (TokenSet, error) {
	var bad error
	next := prev
	switch {
	case resp.AccessToken == "":
		bad = errors.New("the token response carried no access_token")
	case headers.ValidateValue(headers.Authorization, resp.AccessToken) != nil:
		bad = errors.New("the token response's access_token cannot be sent (it has control characters)")
	default:
		next.AccessToken = resp.AccessToken
		if resp.IDToken != "" {
			c, err := parseIDToken(resp.IDToken)
			if err != nil {
				bad = errors.New("the token response's id_token is not a readable JWT")
				break
			}
			next.IDToken = resp.IDToken
			if c.AccountID != "" {
				next.AccountID = c.AccountID
			}
		}
		if err := validateToken(newRefreshSnap(next).tok); err != nil {
			bad = fmt.Errorf("the token response is unusable: %w", err)
		}
	}
	if bad != nil {
		next = prev
		if resp.RefreshToken != "" {
			next.RefreshToken = resp.RefreshToken
		}
		return next, &RefreshError{Err: bad}
	}
	if resp.RefreshToken != "" {
		next.RefreshToken = resp.RefreshToken
	}
	next.LastRefresh = s.now().UTC().Truncate(time.Second)
	return next, nil
}

// answerIsLogin reports whether a token answer belongs to the login of
// bound (the snapshot the source holds and the store's current one): every
// account named by the bound snapshots, the answer's id token and its
// access token agree, and so does every user. A side that names no
// account (or user) is not compared: tokens without those claims cannot
// be told apart, and the stored account_id is kept for them.
func answerIsLogin(resp *tokenResponse, bound ...*refreshSnap) bool {
	var accounts, users []string
	for _, b := range bound {
		accounts, users = append(accounts, b.tok.AccountID), append(users, b.tok.UserID)
	}
	if resp.IDToken != "" {
		if c, err := parseIDToken(resp.IDToken); err == nil {
			accounts, users = append(accounts, c.AccountID), append(users, c.UserID)
		}
	}
	at := accessTokenClaims(resp.AccessToken)
	accounts, users = append(accounts, at.AccountID), append(users, at.UserID)
	return agree(accounts) && agree(users)
}

// agree reports whether the non-empty values are all equal.
func agree(vals []string) bool {
	known := ""
	for _, v := range vals {
		switch {
		case v == "":
		case known == "":
			known = v
		case v != known:
			return false
		}
	}
	return true
}

type tokenResponse struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`

	sent     time.Time // local clock when the request went out
	received time.Time // local clock when the answer came
	date     time.Time // its Date header; zero when absent or unreadable
}

// exchange sends one refresh request.
func (s *RefreshingTokenSource) exchange(ctx context.Context, refreshToken string) (*tokenResponse, error) {
	body, _ := json.Marshal(struct {
		ClientID     string `json:"client_id"`
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
	}{s.clientID, "refresh_token", refreshToken})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, &RefreshError{Err: errors.New("invalid token endpoint URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	useragent.Set(req.Header, useragent.Originator(useragent.FromContext(ctx), os.Getenv))
	s.requests.Add(1)
	sent := s.now()
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, &RefreshError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		// Never followed (see RefreshOptions.HTTPClient): the refresh
		// token stays with the configured endpoint.
		return nil, &RefreshError{Status: resp.StatusCode, Err: errors.New("the token endpoint answered with a redirect, which is not followed")}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, &RefreshError{Status: resp.StatusCode, Err: errors.New("reading the token response failed")}
	}
	if resp.StatusCode/100 == 2 {
		var tr tokenResponse
		if err := json.Unmarshal(data, &tr); err != nil {
			return nil, &RefreshError{Status: resp.StatusCode, Err: errors.New("the token response is not valid JSON")}
		}
		if tr.RefreshToken != "" && tr.RefreshToken != refreshToken {
			// Rotated: the one sent is spent and is never sent again.
			s.spent.add(refreshToken)
		}
		tr.sent, tr.received = sent, s.now()
		if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			tr.date = d
		}
		return &tr, nil
	}
	code := strings.ToLower(refreshErrorCode(data))
	e := &RefreshError{Status: resp.StatusCode, Reason: safeCode(code)}
	switch {
	case permanentRefreshCodes[code]:
		e.Permanent = true
	case resp.StatusCode == http.StatusBadRequest && code == ReasonInvalidGrant:
		e.Permanent = true
	case resp.StatusCode == http.StatusUnauthorized:
		e.Permanent = true
		if e.Reason == "" {
			e.Reason = ReasonUnauthorized
		}
	}
	return nil, e
}

// permanentRefreshCodes are the token endpoint error codes after which no
// refresh can succeed, whatever the status: the user must log in again.
var permanentRefreshCodes = map[string]bool{
	ReasonRefreshTokenExpired:     true,
	ReasonRefreshTokenReused:      true,
	ReasonRefreshTokenInvalidated: true,
	ReasonAppSessionTerminated:    true,
	ReasonInvalidRefreshToken:     true,
}

// refreshErrorCode finds the error code of a token endpoint error body:
// error.code, a string error, or a top-level code.
func refreshErrorCode(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if raw, ok := m["error"]; ok {
		var obj struct {
			Code *string `json:"code"`
		}
		var str string
		switch {
		case json.Unmarshal(raw, &str) == nil:
			return str
		case json.Unmarshal(raw, &obj) == nil && obj.Code != nil:
			return *obj.Code
		}
	}
	var code string
	if raw, ok := m["code"]; ok && json.Unmarshal(raw, &code) == nil {
		return code
	}
	return ""
}

// safeCode keeps an error code only when it looks like one: at most 64
// lower-case letters and underscores ("invalid_grant", "server_error").
// Anything else yields "": a server that echoes the request could put a
// token there, and tokens carry digits or other characters.
func safeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	for _, r := range code {
		if (r < 'a' || r > 'z') && r != '_' {
			return ""
		}
	}
	return code
}

func (s *RefreshingTokenSource) remember(err *RefreshError, set *TokenSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perm = &permanentFailure{err: err, fp: fingerprint(set)}
	return err
}

func isPermanent(err error) bool {
	var re *RefreshError
	return errors.As(err, &re) && re.Permanent
}

// fingerprint identifies a stored token set by its tokens, so a remembered
// failure ends when the store changes. It is kept in memory only.
func fingerprint(set *TokenSet) string {
	if set == nil {
		return ""
	}
	return set.AccessToken + "\x00" + set.RefreshToken + "\x00" + set.IDToken
}

// sameLogin reports whether two snapshots are one login: the same account
// and the same user, where both name one (see [answerIsLogin]).
func sameLogin(a, b *refreshSnap) bool {
	return agree([]string{a.tok.AccountID, b.tok.AccountID}) && agree([]string{a.tok.UserID, b.tok.UserID})
}

// newRefreshSnap derives the token, routing and expiry of a token set: the
// account is the stored account_id, else the id token's (then the access
// token's) chatgpt_account_id; user and FedRAMP come from the id token,
// the user falling back to the access token's claim.
func newRefreshSnap(set TokenSet) *refreshSnap {
	id, _ := parseIDToken(set.IDToken)
	at := accessTokenClaims(set.AccessToken)
	tok := &Token{AccessToken: identity.Secret(set.AccessToken), AccountID: set.AccountID, UserID: id.UserID, FedRAMP: id.FedRAMP}
	if tok.AccountID == "" {
		tok.AccountID = id.AccountID
	}
	if tok.AccountID == "" {
		tok.AccountID = at.AccountID
	}
	if tok.UserID == "" {
		tok.UserID = at.UserID
	}
	if set.IDToken == "" {
		tok.FedRAMP = at.FedRAMP
	}
	return &refreshSnap{set: set, tok: tok, exp: at.Expiry, iat: at.IssuedAt, window: RefreshWindowFor(at.IssuedAt, at.Expiry)}
}

// due reports whether the token should be refreshed at t: exp is judged
// by the endpoint's clock, last_refresh (which this library writes by
// the local clock) by the local one.
func (r *refreshSnap) due(t instant) bool {
	if t.local.Before(r.heldUntil) {
		return false
	}
	if !r.exp.IsZero() {
		return !t.server.Before(r.exp.Add(-r.window))
	}
	return r.set.LastRefresh.IsZero() || t.local.Sub(r.set.LastRefresh) >= StaleAfter
}

func (r *refreshSnap) expired(t instant) bool {
	return !r.exp.IsZero() && !t.local.Before(r.heldUntil) && !t.server.Before(r.exp)
}

// mustWait: the token cannot be used before the refresh ends (expired, or
// stale with an unknown expiry).
func (r *refreshSnap) mustWait(t instant) bool {
	return r.expired(t) || (r.exp.IsZero() && r.due(t))
}

// String describes the source without its tokens.
func (s *RefreshingTokenSource) String() string {
	return fmt.Sprintf("credentials.RefreshingTokenSource{TokenURL:%q}", s.tokenURL)
}

var (
	_ TokenSource     = (*RefreshingTokenSource)(nil)
	_ OriginRefresher = (*RefreshingTokenSource)(nil)
)

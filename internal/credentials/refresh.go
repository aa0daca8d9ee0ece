package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/backoff"
)

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
		s.jitter = func(d time.Duration) time.Duration { return backoff.Equal(d, rand.Float64()) }
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
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

// String describes the source without its tokens.
func (s *RefreshingTokenSource) String() string {
	return fmt.Sprintf("credentials.RefreshingTokenSource{TokenURL:%q}", s.tokenURL)
}

var (
	_ TokenSource     = (*RefreshingTokenSource)(nil)
	_ OriginRefresher = (*RefreshingTokenSource)(nil)
)

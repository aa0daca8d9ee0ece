package identitytest

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Server is a running reference server. All methods are safe for concurrent
// use.
type Server struct {
	now          func() time.Time
	maxSkew      time.Duration
	rand         io.Reader
	log          *slog.Logger
	accessTokens map[string]bool
	tokenAccount map[string]string // configured access token → its account
	apiKeys      map[string]bool
	whoami       *whoamiState
	acceptAny    bool
	anonymous    bool
	encrypt      bool
	requestLog   int
	maxRegs      int // runtimes + tasks; 0: unlimited
	webSocket    func(http.ResponseWriter, *http.Request, Echo)

	tokenLifetime   time.Duration
	refreshLifetime time.Duration
	oauthClientID   string
	tok             tokenState
	login           loginState // sign-in flows: login_routes.go

	issuerOnce sync.Once
	issuer     *JWTIssuer
	issuerErr  error

	ln        net.Listener
	srv       *http.Server
	url       string
	serveDone chan struct{}
	closing   chan struct{}
	closeOnce sync.Once
	inflight  sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	runtimes map[string]*runtimeEntry
	rtOrder  []string
	tasks    map[string]*Task
	tkOrder  []string
	faults   map[Route]*faultState
	stats    Stats
	requests []SeenRequest

	usage usageState // per-account usage headers and limits (usage.go)
}

type runtimeEntry struct {
	info Runtime
	pub  ed25519.PublicKey
}

// NewServer validates opts, starts listening on opts.Addr and serves in the
// background until [Server.Close]. Routes (a prefix before /v1/agent/... and
// before /agent-identities/jwks is tolerated, so an AuthAPI base such as
// URL+"/api/accounts" or a ChatGPT base such as URL+"/backend-api" works):
//
//   - POST /v1/agent/register (agent registration): needs "Bearer <token>" with a
//     token from Options.AccessTokens (or any token with
//     AcceptAnyBearerForAgentRegistration), else 401; a body of exactly
//     abom {agent_version, agent_harness_id, running_location},
//     agent_public_key (ssh-ed25519), capabilities (array of strings) and
//     an optional null-or-number ttl, else 400. Records the key and the
//     routing headers and answers {"agent_runtime_id": "rt-..."}.
//   - POST /v1/agent/{rid}/task/register (task registration): unknown rid 404; an
//     Authorization header, a body that is not one JSON object of string
//     timestamp, string signature and optional non-empty external_task_ref
//     (thread-key rules: valid UTF-8, no control characters, at most 512
//     bytes), or any other member: 400; a missing signature ("unsigned"),
//     a malformed timestamp, a signature that does not verify with the
//     runtime's key, or a timestamp more than MaxSkew from Now: 401.
//     Answers {"task_id": ...} or, with EncryptTaskIDs, {"encrypted_task_id": ...}.
//   - GET .../agent-identities/jwks (Agent Identity JWT keys): the JWKS of [Server.Issuer].
//   - POST .../oauth/token: the ChatGPT token endpoint for logins made with
//     [Server.IssueLogin] (see serveToken in token.go: single-use rotating
//     refresh tokens, Codex's error shapes); the access tokens it issues
//     are accepted like Options.AccessTokens until they expire.
//   - GET .../v1/user-auth-credential/whoami: the account of a personal
//     access token of Options.PersonalAccessTokens (see serveWhoami in
//     whoami.go); 401 for any other credential.
//   - any other path under /v1/, any method: a protected resource that
//     answers 200 with an [Echo] for a configured Bearer token or a
//     verified AgentAssertion (right runtime key, task of that runtime, not
//     revoked, timestamp within MaxSkew), and 401 otherwise; a FedRAMP
//     header other than "true" is 400. POST [ResponsesPath] and
//     [ChatCompletionsPath] answer with an OpenAI-shaped superset of the
//     Echo that SDKs parse; a verified WebSocket upgrade goes to
//     Options.WebSocket when set.
//
// Every 4xx body is {"error": "<reason>"}, where reason is a fixed
// identifier (see [Stats.RejectionsByReason]) and never request data.
func NewServer(opts Options) (*Server, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("identitytest: listen: %w", err)
	}
	s.ln = ln
	s.url = "http://" + displayAddr(ln.Addr())
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Connection-level noise (bad requests, aborted handlers) is not
		// the test's business; request outcomes are logged by the handler.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(s.serveDone)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func newServer(opts Options) (*Server, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		now:          opts.Now,
		maxSkew:      opts.MaxSkew,
		rand:         newLockedReader(opts.Rand),
		log:          opts.Logger,
		accessTokens: map[string]bool{},
		tokenAccount: map[string]string{},
		apiKeys:      map[string]bool{},
		acceptAny:    opts.AcceptAnyBearerForAgentRegistration,
		anonymous:    opts.AllowAnonymous,
		encrypt:      opts.EncryptTaskIDs,
		requestLog:   opts.RequestLog,
		maxRegs:      opts.MaxRegistrations,
		webSocket:    opts.WebSocket,

		tokenLifetime:   opts.TokenLifetime,
		refreshLifetime: opts.RefreshTokenLifetime,
		oauthClientID:   opts.OAuthClientID,
		serveDone:       make(chan struct{}),
		closing:         make(chan struct{}),
		runtimes:        map[string]*runtimeEntry{},
		tasks:           map[string]*Task{},
		faults:          map[Route]*faultState{},
		stats:           newStats(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxSkew == 0 {
		s.maxSkew = DefaultMaxSkew
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.tokenLifetime <= 0 {
		s.tokenLifetime = DefaultTokenLifetime
	}
	if s.oauthClientID == "" {
		s.oauthClientID = codexClientID
	}
	if s.requestLog == 0 {
		s.requestLog = defaultRequestLog
	}
	for _, t := range opts.AccessTokens {
		s.accessTokens[t] = true
	}
	for t, acct := range opts.AccessTokenAccounts {
		s.accessTokens[t] = true
		s.tokenAccount[t] = acct
	}
	for _, t := range opts.APIKeys {
		s.apiKeys[t] = true
	}
	s.initWhoami(opts.PersonalAccessTokens)
	return s, nil
}

// displayAddr turns an unspecified listen address (0.0.0.0, ::) into the
// loopback address a client on the same machine can dial.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

// summary describes the server by its URL; the tokens it holds never print.
func (s *Server) summary() string {
	if s == nil {
		return "identitytest.Server(nil)"
	}
	return "identitytest.Server(" + s.url + ")"
}

// Format makes every fmt verb print the server as its URL; the tokens it
// holds never print.
func (s *Server) Format(f fmt.State, _ rune) { io.WriteString(f, s.summary()) }

// LogValue logs the server's URL only.
func (s *Server) LogValue() slog.Value { return slog.StringValue(s.summary()) }

// URL returns the base URL, "http://127.0.0.1:PORT", with no trailing slash.
func (s *Server) URL() string { return s.url }

// Close stops the listener, ends every hung or delayed request, closes all
// connections and waits until no handler is running. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		// Connections close before hung handlers are released, so that
		// no released handler can still complete a response.
		if s.srv != nil {
			_ = s.srv.Close()
		}
		close(s.closing)
		if s.srv != nil {
			<-s.serveDone
		}
		s.inflight.Wait()
	})
}

// Handler returns the server's routes as an http.Handler, for mounting in
// another http.Server. Requests after Close get 503.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// enter registers a running handler unless the server is closed; Close
// waits for every handler that entered.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight.Add(1)
	return true
}

// withinSkew reports whether t is within the allowed skew of the clock.
func (s *Server) withinSkew(t time.Time) bool {
	d := s.now().Sub(t)
	return d <= s.maxSkew && d >= -s.maxSkew
}

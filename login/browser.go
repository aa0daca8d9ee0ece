package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Callback-server details, as Codex has them.
const (
	bindAttempts  = 10
	bindRetry     = 200 * time.Millisecond
	scope         = "openid profile email offline_access api.connectors.read api.connectors.invoke"
	originator    = "codex_cli_rs"
	callbackPath  = "/auth/callback"
	cancelPath    = "/cancel"
	serverTimeout = 10 * time.Second
)

// pkce is a PKCE pair: a 64-byte random verifier, base64url, and its S256
// challenge.
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	b := make([]byte, 64)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(v))
	return pkce{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

func newState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authorizeURL builds {issuer}/oauth/authorize with Codex's parameters,
// in Codex's order, spaces encoded as %20 as Codex encodes them.
func (r *resolved) authorizeURL(redirectURI string, p pkce, state string) string {
	params := [][2]string{
		{"response_type", "code"},
		{"client_id", r.clientID},
		{"redirect_uri", redirectURI},
		{"scope", scope},
		{"code_challenge", p.challenge},
		{"code_challenge_method", "S256"},
		{"id_token_add_organizations", "true"},
		{"codex_cli_simplified_flow", "true"},
		{"state", state},
		{"originator", r.originator()},
	}
	parts := make([]string, len(params))
	for i, kv := range params {
		parts[i] = kv[0] + "=" + strings.ReplaceAll(url.QueryEscape(kv[1]), "+", "%20")
	}
	return r.issuer + "/oauth/authorize?" + strings.Join(parts, "&")
}

// originator is CODEX_INTERNAL_ORIGINATOR_OVERRIDE when it can be sent in
// a header, else Codex's codex_cli_rs.
func (r *resolved) originator() string {
	if v := r.getenv(envOriginator); v != "" && printableToken(v) {
		return v
	}
	return originator
}

// Browser signs in with the browser flow, as `codex login` does: it
// listens on 127.0.0.1 at Options.Port (Codex's 1455 by default; when it
// is busy it first asks a previous login server there to cancel, as
// Codex does, and then falls back to 1457), opens (Options.OpenBrowser)
// and prints the authorize URL with a PKCE S256 challenge and a random
// state, waits for the redirect to http://localhost:PORT/auth/callback,
// refuses a callback whose state differs, exchanges the code with the
// verifier, obtains an API key best effort, and writes the login to
// auth.json. It ends with an error wrapping context.Canceled when ctx is
// cancelled or GET /cancel arrives, one wrapping context.DeadlineExceeded
// at ctx's deadline, [ErrPortInUse] when no port can be had, and the
// issuer's reason when the user declines.
func Browser(ctx context.Context, opts Options) error {
	r, err := opts.resolve()
	if err != nil {
		return err
	}
	ln, err := r.listen(ctx)
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	redirectURI := "http://localhost:" + strconv.Itoa(port) + callbackPath
	p, state := newPKCE(), newState()
	authURL := r.authorizeURL(redirectURI, p, state)

	result := make(chan error, 1)
	finish := func(err error) {
		select {
		case result <- err:
		default:
		}
	}
	// Handlers run on hctx, which ends when Browser returns, and Browser
	// waits for them (handlers), so none outlives it or writes auth.json
	// after it returned.
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	var handlers handlerGroup
	// The state is spent by the first callback carrying it: a replayed or
	// concurrent callback gets an error page and no second exchange.
	var stateUsed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc(callbackPath, func(w http.ResponseWriter, req *http.Request) {
		if !handlers.enter() {
			http.Error(w, "The login has ended", http.StatusServiceUnavailable)
			return
		}
		defer handlers.leave()
		ctx := hctx
		q := req.URL.Query()
		if q.Get("state") != state {
			http.Error(w, "State mismatch", http.StatusBadRequest)
			return // a stray or forged callback does not end the login
		}
		if !stateUsed.CompareAndSwap(false, true) {
			writePage(w, http.StatusBadRequest, "Sign-in could not be completed", "This sign-in link was already used.")
			return // the first callback decides the login
		}
		if e := q.Get("error"); e != "" {
			msg := "Sign-in failed: " + safeText(e)
			if d := safeText(q.Get("error_description")); d != "" {
				msg = "Sign-in failed: " + d
			}
			writePage(w, http.StatusOK, "Sign-in could not be completed", msg)
			finish(errors.New("login: " + msg))
			return
		}
		code := q.Get("code")
		if code == "" {
			writePage(w, http.StatusBadRequest, "Sign-in could not be completed", "Missing authorization code.")
			finish(errors.New("login: the callback carried no authorization code"))
			return
		}
		t, err := r.exchangeCode(ctx, code, p.verifier, redirectURI)
		if err != nil {
			writePage(w, http.StatusOK, "Sign-in could not be completed", "The token exchange failed.")
			finish(cancelled(ctx, fmt.Errorf("login: token exchange failed: %w", err)))
			return
		}
		apiKey, _ := r.obtainAPIKey(ctx, t.IDToken)
		if err := r.saveLogin(ctx, t, apiKey); err != nil {
			writePage(w, http.StatusOK, "Sign-in could not be completed", "Signed in, but the credentials could not be saved.")
			finish(cancelled(ctx, err))
			return
		}
		writePage(w, http.StatusOK, "Signed in", "You may close this window and return to the terminal.")
		finish(nil)
	})
	mux.HandleFunc(cancelPath, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = w.Write([]byte("Login cancelled"))
		finish(errCancelled)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: serverTimeout, ReadTimeout: serverTimeout}
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		_ = srv.Serve(ln)
	}()
	defer func() {
		handlers.close() // no handler starts any more
		hcancel()        // a running one stops its exchange
		shut, cancel := context.WithTimeout(context.Background(), serverTimeout)
		_ = srv.Shutdown(shut)
		cancel()
		_ = srv.Close()
		<-serveDone
		handlers.wait()
	}()

	fmt.Fprintf(r.out, "Open this link in a browser to sign in (listening on port %d):\n  %s\n", port, authURL)
	if r.open != nil {
		if err := r.open(authURL); err != nil {
			fmt.Fprintln(r.out, "Could not open a browser; open the link above by hand.")
		}
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return cancelled(ctx, ctx.Err())
	}
}

// listen binds 127.0.0.1 at the configured port as Codex does: on
// EADDRINUSE it asks the holder to cancel (a previous login server), retries
// up to 10 times 200 ms apart, then tries the fallback port when the port
// is the default.
func (r *resolved) listen(ctx context.Context) (net.Listener, error) {
	ports := []int{r.port}
	if r.port == 0 || r.port == defaultPort {
		ports = []int{defaultPort, fallbackPort}
	}
	var lc net.ListenConfig
	for i, port := range ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for attempt := range bindAttempts {
			ln, err := lc.Listen(ctx, "tcp", addr)
			if err == nil {
				return ln, nil
			}
			if !isAddrInUse(err) {
				return nil, fmt.Errorf("login: listening on %s: %w", addr, unwrapOpError(err))
			}
			if attempt == 0 && i == 0 {
				sendCancel(ctx, addr)
			}
			t := time.NewTimer(bindRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, cancelled(ctx, ctx.Err())
			case <-t.C:
			}
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrPortInUse, portList(ports))
}

func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return strings.Join(s, " and ") + " stay busy; close the program holding it or pass another port"
}

func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// sendCancel asks whatever listens on addr to cancel its login (GET
// /cancel, 2 s bound), as Codex does before retrying the port.
func sendCancel(ctx context.Context, addr string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+cancelPath, nil)
	if err != nil {
		return
	}
	req.Close = true
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	c.CloseIdleConnections()
}

func writePage(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><html><head><title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}

// handlerGroup tracks the callback handlers in flight: after close, enter
// refuses new ones, and wait returns once the running ones have left.
type handlerGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *handlerGroup) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *handlerGroup) leave() { g.wg.Done() }

func (g *handlerGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *handlerGroup) wait() { g.wg.Wait() }

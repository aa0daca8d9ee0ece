package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/headers"
	"github.com/agentauth/agentauth/identity"
	"github.com/agentauth/agentauth/transport"
)

const doSynopsis = "agentauth do [--codex-home DIR [--insecure-unverified-jwt] | --record FILE | --api-key KEY | --access-token TOKEN --account-id ID [--fedramp]] [--use-agent-identity] [--thread ID] [--authapi URL] [-X METHOD] [-d DATA] [-H 'K: V']... [-v] URL"

// Limits on what do reads from files or stdin for -d.
const doMaxData = 64 << 20

// doDefaultTimeout bounds one do run (registrations, redirects and the
// response body included).
const doDefaultTimeout = 2 * time.Minute

func init() {
	register(command{
		name:    "do",
		summary: "send one request through the transport, like curl, and print the response body",
		run:     runDo,
	})
}

// doRequest is the validated command line of do.
type doRequest struct {
	target   *url.URL
	method   string
	body     []byte // nil: no body
	header   http.Header
	host     string // -H 'Host: ...'
	thread   string
	hasThr   bool
	authAPI  string // "" means the transport's default
	verbose  bool
	timeout  time.Duration
	origins  []string
	insecure bool // some first-party origin is plain http (loopback only)
}

// runDo sends one request through the agentauth transport and copies the
// response body to stdout. With -v, every request the transport sends (the
// resource request, its redirects and any registration) and every
// response's status and headers go to stderr with credentials redacted.
// A transport error, or a response with status 400 or above (after its body
// is printed), exits 1 with one line on stderr that never holds a secret.
func runDo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("do")
	codexHome := fs.String("codex-home", "", "read credentials as the Codex CLI does from DIR/auth.json and the environment (the default source; DIR defaults to $CODEX_HOME, else ~/.codex); an identity provisioned from its ChatGPT login is persisted there")
	insecureJWT := fs.Bool("insecure-unverified-jwt", false, "accept an agent_identity JWT from --codex-home WITHOUT verifying it (default: verify it against the JWKS of the ChatGPT backend, or of $CODEX_AGENT_IDENTITY_JWKS_BASE_URL)")
	recordPath := fs.String("record", "", "Agent Identity record or keygen JSON (- reads stdin)")
	apiKey := fs.String("api-key", "", "API key, always sent as Bearer")
	accessToken := fs.String("access-token", "", "ChatGPT access token (with --account-id); an identity provisioned from it lives for this run only")
	accountID := fs.String("account-id", "", "ChatGPT account id sent as ChatGPT-Account-ID (with --access-token)")
	fedramp := fs.Bool("fedramp", false, "the --access-token account is a FedRAMP account (sends X-OpenAI-Fedramp: true)")
	useAgent := fs.Bool("use-agent-identity", false, "turn use_agent_identity on: a ChatGPT login is provisioned an Agent Identity and signs with AgentAssertion")
	thread := fs.String("thread", "", "tag the request with this thread key (its own task); without it the process task is used")
	authAPI := fs.String("authapi", "", "AuthAPI base URL where agents and tasks are registered (default: derived from the ChatGPT backend and $CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL); its origin is first-party")
	method := fs.String("X", "", "request method (default GET, or POST with -d)")
	data := fs.String("d", "", "request body; @FILE reads a file and @- stdin; sets Content-Type: application/json unless -H sets one")
	var hdrs stringsFlag
	fs.Var(&hdrs, "H", "extra request header 'Name: value' (repeatable)")
	verbose := fs.Bool("v", false, "print the requests as sent and the response status and headers to stderr, credentials redacted")
	timeout := fs.Duration("timeout", doDefaultTimeout, "give up after this long")

	positional, code, done := parseInterspersed(fs, doSynopsis, args, stdout, stderr)
	if done {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// Every value the user gave that is a credential; scrub removes them
	// from anything printed, as a second line of defence.
	secrets := []string{*apiKey, *accessToken}

	req, err := parseDoRequest(positional, set, doFlags{
		insecureJWT: *insecureJWT, useAgent: *useAgent, apiKey: *apiKey, accessToken: *accessToken,
		accountID: *accountID, recordPath: *recordPath, thread: *thread, authAPI: *authAPI,
		method: *method, data: *data, headers: hdrs, verbose: *verbose, timeout: *timeout,
	}, stdin)
	if err != nil {
		return usageError(stderr, fs.Name(), errors.New(scrub(err.Error(), secrets)))
	}

	ctx, cancel := context.WithTimeout(ctx, req.timeout)
	defer cancel()

	// Resolve the credential.
	var (
		creds *credentials.Credentials
		store credentials.IdentityStore
	)
	switch {
	case set["api-key"]:
		creds = &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: *apiKey, Source: "--api-key"}
	case set["access-token"]:
		creds = &credentials.Credentials{Kind: credentials.KindChatGPT, Source: "--access-token",
			ChatGPT: &credentials.ChatGPTLogin{AccessToken: *accessToken, AccountID: *accountID, FedRAMP: *fedramp}}
		store = credentials.NewMemoryStore()
	case set["record"]:
		rec, err := loadDoRecord(*recordPath, stdin)
		if err != nil {
			return failure(stderr, fs.Name(), err)
		}
		secrets = append(secrets, rec.AgentPrivateKey)
		creds = &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: rec, Source: "--record"}
	default:
		creds, store, err = loadCodexHome(ctx, *codexHome, *insecureJWT)
		if err != nil {
			return failure(stderr, fs.Name(), errors.New(scrub(err.Error(), secrets)))
		}
		secrets = append(secrets, credentialSecrets(creds)...)
		if creds.Kind == credentials.KindChatGPT && creds.ChatGPT.ExternallyManaged && *useAgent {
			return failure(stderr, fs.Name(), errors.New("auth.json holds externally managed ChatGPT tokens (auth_mode chatgptAuthTokens); no Agent Identity is provisioned from them"))
		}
	}

	var base http.RoundTripper = http.DefaultTransport
	if req.verbose {
		base = &verboseRoundTripper{next: base, w: stderr, secrets: secrets}
	}
	auth, err := transport.New(base, transport.Config{
		Credentials:       creds,
		Flag:              featureflag.New(*useAgent),
		IdentityStore:     store,
		AuthAPIBaseURL:    req.authAPI,
		AllowedOrigins:    req.origins,
		AllowInsecureHTTP: req.insecure,
	})
	if err != nil {
		return failure(stderr, fs.Name(), errors.New(scrub(err.Error(), secrets)))
	}
	client := &http.Client{Transport: auth}
	defer client.CloseIdleConnections()

	rctx := ctx
	if req.hasThr {
		rctx = transport.WithThread(ctx, req.thread)
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hreq, err := http.NewRequestWithContext(rctx, req.method, req.target.String(), body)
	if err != nil {
		return failure(stderr, fs.Name(), errors.New("cannot build the request"))
	}
	hreq.Header = req.header
	if req.host != "" {
		hreq.Host = req.host
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return failure(stderr, fs.Name(), errors.New(scrub(err.Error(), secrets)))
	}
	defer resp.Body.Close()
	if auth.Stats().BearerFallbacks > 0 {
		// The flag asked for an AgentAssertion; say why Bearer went out.
		fmt.Fprintln(stderr, "agentauth do: warning: agent provisioning is unavailable; the request was sent with the Bearer token")
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return failure(stderr, fs.Name(), errors.New(scrub("reading the response failed: "+err.Error(), secrets)))
	}
	if resp.StatusCode >= 400 {
		return failure(stderr, fs.Name(), fmt.Errorf("server answered %s", resp.Status))
	}
	return exitOK
}

// doFlags carries the raw flag values into parseDoRequest.
type doFlags struct {
	insecureJWT, useAgent, verbose                                            bool
	apiKey, accessToken, accountID, recordPath, thread, authAPI, method, data string
	headers                                                                   []string
	timeout                                                                   time.Duration
}

// parseDoRequest checks the command line and builds the request plan.
// Errors name flags, never the value of a credential.
func parseDoRequest(positional []string, set map[string]bool, f doFlags, stdin io.Reader) (*doRequest, error) {
	var sources []string
	for _, n := range []string{"codex-home", "record", "api-key", "access-token"} {
		if set[n] {
			sources = append(sources, "--"+n)
		}
	}
	switch {
	case len(sources) > 1:
		return nil, fmt.Errorf("%s are exclusive: give one credential source", strings.Join(sources, " and "))
	case set["account-id"] && !set["access-token"]:
		return nil, errors.New("--account-id goes with --access-token")
	case set["fedramp"] && !set["access-token"]:
		return nil, errors.New("--fedramp goes with --access-token")
	case set["access-token"] && !set["account-id"]:
		return nil, errors.New("--access-token needs --account-id")
	case set["insecure-unverified-jwt"] && len(sources) == 1 && sources[0] != "--codex-home":
		return nil, errors.New("--insecure-unverified-jwt applies only to --codex-home credentials")
	case set["use-agent-identity"] && f.useAgent && set["api-key"]:
		return nil, errors.New("--use-agent-identity does not apply to --api-key: an API key is always sent as Bearer")
	case set["record"] && f.recordPath == "":
		return nil, errors.New("--record needs a file name or -")
	case f.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	case len(positional) == 0:
		return nil, errors.New("a URL is required")
	case len(positional) > 1:
		return nil, fmt.Errorf("unexpected argument %q after the URL", truncate(positional[1]))
	}
	if set["api-key"] {
		if err := validateSecret("--api-key", f.apiKey); err != nil {
			return nil, err
		}
	}
	if set["access-token"] {
		if err := validateSecret("--access-token", f.accessToken); err != nil {
			return nil, err
		}
		if err := validateID("--account-id", f.accountID); err != nil {
			return nil, err
		}
	}

	r := &doRequest{verbose: f.verbose, timeout: f.timeout, header: http.Header{}}
	target, err := parseHTTPURL("URL", positional[0], true)
	if err != nil {
		return nil, err
	}
	r.target = target
	r.origins = []string{originOf(target)}
	r.insecure = target.Scheme == "http"
	if set["authapi"] {
		u, err := parseHTTPURL("--authapi", f.authAPI, false)
		if err != nil {
			return nil, err
		}
		r.authAPI = strings.TrimRight(u.String(), "/")
		if o := originOf(u); !slices.Contains(r.origins, o) {
			r.origins = append(r.origins, o)
		}
		r.insecure = r.insecure || u.Scheme == "http"
	}
	if set["thread"] {
		if err := transport.ValidateThreadKey(f.thread); err != nil {
			return nil, fmt.Errorf("--thread: %w", err)
		}
		r.thread, r.hasThr = f.thread, true
	}

	if set["d"] {
		body, err := readData(f.data, stdin, set["record"] && f.recordPath == "-")
		if err != nil {
			return nil, err
		}
		r.body = body
	}
	r.method = f.method
	if r.method == "" {
		r.method = http.MethodGet
		if r.body != nil {
			r.method = http.MethodPost
		}
	}
	if !isToken(r.method) {
		return nil, fmt.Errorf("-X %q is not an HTTP method", truncate(r.method))
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !isToken(name) {
			return nil, errors.New("-H takes 'Name: value' with a valid header name")
		}
		if err := headers.ValidateValue(name, value); err != nil {
			return nil, fmt.Errorf("-H %s: the value has a control character", name)
		}
		if strings.EqualFold(name, "Host") {
			r.host = value
			continue
		}
		r.header.Add(name, value)
	}
	if r.body != nil && r.header.Get("Content-Type") == "" {
		r.header.Set("Content-Type", "application/json")
	}
	return r, nil
}

// validateSecret checks a credential given on the command line without
// ever quoting it.
func validateSecret(flagName, v string) error {
	if v == "" {
		return fmt.Errorf("%s must not be empty", flagName)
	}
	if headers.ValidateValue(flagName, v) != nil {
		return fmt.Errorf("%s has a control character", flagName)
	}
	return nil
}

// parseHTTPURL accepts an absolute http(s) URL without user info. Plain
// http is accepted only for loopback hosts: a credential may be sent there.
func parseHTTPURL(what, raw string, allowQuery bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, fmt.Errorf("%s %q is not an absolute http(s) URL", what, truncate(raw))
	case u.User != nil:
		return nil, fmt.Errorf("%s must not carry user info", what)
	case !allowQuery && (u.RawQuery != "" || u.Fragment != ""):
		return nil, fmt.Errorf("%s must be a base URL without query or fragment", what)
	case u.Scheme == "http" && !identity.IsLoopbackBase(raw):
		return nil, fmt.Errorf("%s: plain http is allowed only for loopback hosts; use https", what)
	}
	return u, nil
}

// originOf returns "scheme://host[:port]" of u.
func originOf(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + u.Host
}

// isToken reports whether s is a non-empty RFC 9110 token (method and
// header-name syntax).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// readData resolves -d: literal data, @FILE or @- (stdin, unless the record
// already comes from there).
func readData(data string, stdin io.Reader, stdinTaken bool) ([]byte, error) {
	name, ok := strings.CutPrefix(data, "@")
	if !ok {
		return []byte(data), nil
	}
	var r io.Reader
	switch {
	case name == "-" && stdinTaken:
		return nil, errors.New("-d @- and --record - cannot both read stdin")
	case name == "-":
		if stdin == nil {
			return nil, errors.New("-d @-: no standard input")
		}
		r = stdin
	default:
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("-d: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, doMaxData+1))
	if err != nil {
		return nil, errors.New("-d: reading the data failed")
	}
	if len(b) > doMaxData {
		return nil, fmt.Errorf("-d: data larger than %d bytes", doMaxData)
	}
	return b, nil
}

// parseInterspersed parses flags that may appear before and after the
// positional arguments, as curl allows ("do URL -v"). A "--" ends flag
// parsing. It returns done=true with the exit code after -h or a bad flag.
func parseInterspersed(fs *flag.FlagSet, synopsis string, args []string, stdout, stderr io.Writer) (positional []string, code int, done bool) {
	rest := args
	for {
		err := fs.Parse(rest)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: %s\n\nflags:\n", synopsis)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
			return nil, exitOK, true
		}
		if err != nil {
			return nil, usageError(stderr, fs.Name(), err), true
		}
		left := fs.Args()
		if len(left) == 0 {
			return positional, 0, false
		}
		if consumed := len(rest) - len(left); consumed > 0 && rest[consumed-1] == "--" {
			return append(positional, left...), 0, false
		}
		positional = append(positional, left[0])
		rest = left[1:]
	}
}

// loadDoRecord reads --record: an Agent Identity record or a keygen JSON
// (which has no account fields, so no routing headers are sent).
func loadDoRecord(path string, stdin io.Reader) (*identity.Record, error) {
	data, err := readRecord(path, stdin)
	if err != nil {
		return nil, err
	}
	runtimeID, key, err := parseRecord(data)
	if err != nil {
		return nil, err
	}
	var acct struct {
		AccountID     string `json:"account_id"`
		ChatGPTUserID string `json:"chatgpt_user_id"`
		Email         string `json:"email"`
		PlanType      string `json:"plan_type"`
		FedRAMP       bool   `json:"chatgpt_account_is_fedramp"`
	}
	if jsonErr := json.Unmarshal(data, &acct); jsonErr != nil {
		return nil, errors.New("record: account_id, chatgpt_user_id, email, plan_type must be strings and chatgpt_account_is_fedramp a boolean")
	}
	if acct.AccountID != "" {
		if err := validateID("record account_id", acct.AccountID); err != nil {
			return nil, err
		}
	}
	return &identity.Record{
		AgentRuntimeID:  runtimeID,
		AgentPrivateKey: key.MarshalPrivateKey(),
		AccountID:       acct.AccountID,
		ChatGPTUserID:   acct.ChatGPTUserID,
		Email:           acct.Email,
		PlanType:        acct.PlanType,
		IsFedRAMP:       acct.FedRAMP,
	}, nil
}

// loadCodexHome loads credentials the way the Codex CLI does. An
// agent_identity JWT is verified against the JWKS unless insecureJWT asks
// for an unverified decode. A ChatGPT login gets a FileStore on the same
// auth.json, so an identity provisioned from it is kept there.
func loadCodexHome(ctx context.Context, home string, insecureJWT bool) (*credentials.Credentials, credentials.IdentityStore, error) {
	if home == "" {
		h, err := credentials.DefaultCodexHome(nil)
		if err != nil {
			return nil, nil, err
		}
		home = h
	}
	decode := func(token string) (*identity.Record, error) {
		if insecureJWT {
			return identity.DecodeAgentIdentityJWTUnverified(token)
		}
		jwksURL := identity.JWKSURL(identity.ResolveBaseURLs(nil, "").JWKS)
		if !strings.HasPrefix(jwksURL, "https://") && !identity.IsLoopbackBase(jwksURL) {
			return nil, errors.New("the JWKS base is plain http on a non-loopback host; refusing to trust keys fetched from it")
		}
		keys, err := (&identity.Client{}).FetchJWKS(ctx, jwksURL)
		if err != nil {
			return nil, fmt.Errorf("cannot verify the agent identity JWT (use --insecure-unverified-jwt to skip verification): %w", err)
		}
		return identity.VerifyAgentIdentityJWT(token, keys, time.Now())
	}
	creds, err := credentials.Load(credentials.LoadOptions{CodexHome: home, DecodeAgentIdentityJWT: decode})
	if err != nil {
		return nil, nil, err
	}
	if creds.Kind == credentials.KindNone {
		return nil, nil, fmt.Errorf("no credential in %s or the environment; log in with Codex or pass --api-key, --access-token or --record", filepath.Join(home, credentials.AuthFileName))
	}
	var store credentials.IdentityStore
	if creds.Kind == credentials.KindChatGPT {
		store = credentials.NewFileStore(filepath.Join(home, credentials.AuthFileName))
	}
	return creds, store, nil
}

// credentialSecrets lists the secret strings of c, for scrub.
func credentialSecrets(c *credentials.Credentials) []string {
	s := []string{c.APIKey, c.AgentIdentityJWT}
	if c.ChatGPT != nil {
		s = append(s, c.ChatGPT.AccessToken, c.ChatGPT.RefreshToken, c.ChatGPT.IDToken)
	}
	if c.AgentIdentity != nil {
		s = append(s, c.AgentIdentity.AgentPrivateKey)
	}
	return s
}

// scrub replaces every occurrence of a known secret in s. The packages
// agentauth uses never put a credential in an error; this guards against
// what they cannot know, such as a server echoing a token in a quoted body.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return s
}

// verboseRoundTripper prints each request as the agentauth transport sends
// it (resource requests, redirect hops and registrations) and each
// response's status and headers, with credentials redacted. It sits
// between the agentauth transport and the network, so it sees exactly the
// headers that go out.
type verboseRoundTripper struct {
	next    http.RoundTripper
	w       io.Writer
	secrets []string
	mu      sync.Mutex // registrations may run on another goroutine
}

func (v *verboseRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var b strings.Builder
	// No protocol version: redirect hops do not have one until sent.
	fmt.Fprintf(&b, "> %s %s\n", req.Method, req.URL.Redacted())
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	fmt.Fprintf(&b, "> Host: %s\n", host)
	v.writeHeaders(&b, "> ", req.Header)
	b.WriteString(">\n")
	v.print(b.String())

	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	b.Reset()
	fmt.Fprintf(&b, "< %s %s\n", resp.Proto, resp.Status)
	v.writeHeaders(&b, "< ", resp.Header)
	b.WriteString("<\n")
	v.print(b.String())
	return resp, nil
}

func (v *verboseRoundTripper) writeHeaders(b *strings.Builder, prefix string, h http.Header) {
	red := headers.RedactAll(h)
	for _, k := range slices.Sorted(maps.Keys(red)) {
		for _, val := range red[k] {
			fmt.Fprintf(b, "%s%s: %s\n", prefix, k, scrub(val, v.secrets))
		}
	}
}

func (v *verboseRoundTripper) print(s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	io.WriteString(v.w, s)
}

// CloseIdleConnections forwards to the network transport.
func (v *verboseRoundTripper) CloseIdleConnections() {
	if c, ok := v.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/credentials"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/headers"
	"github.com/agentauth/agentauth/identity"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

const doSynopsis = "agentauth do [--codex-home DIR [--insecure-unverified-jwt] | --record FILE | --api-key KEY | --api-key-stdin | --access-token TOKEN | --access-token-stdin] [--account-id ID [--fedramp]] [--use-agent-identity] [--thread ID] [--authapi URL] [--allow-origin ORIGIN]... [-X METHOD] [-d DATA] [-H 'K: V']... [-v] [--timeout 2m] URL"

// Limits on what do reads from files or stdin for -d.
const doMaxData = 64 << 20

// doMaxSecret bounds a credential read from standard input.
const doMaxSecret = 64 << 10

// doDefaultTimeout bounds one do run (registrations, redirects and the
// response body included).
const doDefaultTimeout = 2 * time.Minute

// Environment variables do reads a credential from when no credential flag
// is given, so that it need not appear on the command line (where ps shows
// it).
const (
	envDoAPIKey      = "AGENTAUTH_API_KEY"
	envDoAccessToken = "AGENTAUTH_ACCESS_TOKEN"
)

// doHelp is the part of do -h that flags cannot say.
const doHelp = `Credentials go only to first-party origins: https://chatgpt.com, https://api.openai.com,
the AuthAPI origin, the URL's origin when the URL is a loopback host, and each --allow-origin.
A URL outside that list is refused; a redirect that leaves it is followed without credentials.
A loopback URL is also where its agent and task registrations go, unless --authapi or
$CODEX_AUTHAPI_BASE_URL (or the older $CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL) names another
AuthAPI. Without a credential flag, do reads $AGENTAUTH_API_KEY or $AGENTAUTH_ACCESS_TOKEN,
else the Codex login (--codex-home): a ChatGPT login is refreshed there when due
($CODEX_REFRESH_TOKEN_URL_OVERRIDE names another token endpoint, such as agentauth serve's
/oauth/token), and tokens an outside host manages (auth_mode chatgptAuthTokens) are always
sent as Bearer.
`

// doDefaultOrigins are the first-party origins of every do run: the
// library's default allow-list (the ChatGPT backend and the API).
var doDefaultOrigins = []string{"https://chatgpt.com", transport.DefaultOpenAIOrigin}

func init() {
	register(command{
		name:    "do",
		summary: "send one request through the transport, like curl, and print the response body",
		run:     runDo,
	})
}

// doRequest is the validated command line of do.
type doRequest struct {
	target      *url.URL
	method      string
	body        []byte // nil: no body
	header      http.Header
	host        string // -H 'Host: ...'
	thread      string
	hasThr      bool
	chatgptBase string // "" means the transport's default
	authAPI     string // the AuthAPI base registrations go to
	verbose     bool
	timeout     time.Duration
	origins     []string
	insecure    bool // some first-party origin is plain http (loopback only)
}

// runDo sends one request through the agentauth transport and copies the
// response body to stdout. With -v, every request the transport sends (the
// resource request, its redirects and any registration, each attempt of a
// retried one) and every response's status and headers, or the error of a
// hop that got none, go to stderr with credentials redacted, together with
// the transport's debug log. A transport error, or a response with status
// 400 or above (after its body is printed), exits 1 with one line on stderr
// that never holds a secret; warnings (such as a fallback to Bearer and its
// cause) come before it.
//
// Credentials go only to first-party origins: https://chatgpt.com,
// https://api.openai.com, the --authapi origin, the URL's origin when it is
// a loopback host, and each --allow-origin. A URL outside that list is
// refused, so a typo cannot send a login to a stranger.
func runDo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("do")
	codexHome := fs.String("codex-home", "", "read credentials as the Codex CLI does from DIR (auth.json, config.toml) and the environment; the default source, DIR defaults to $CODEX_HOME, else ~/.codex. A ChatGPT login there is refreshed when its access token is due and the new tokens are written back; an identity provisioned from it is persisted there")
	insecureJWT := fs.Bool("insecure-unverified-jwt", false, "accept an agent_identity JWT from --codex-home WITHOUT verifying it (default: verify it against the JWKS of the ChatGPT backend, or of $CODEX_AGENT_IDENTITY_JWKS_BASE_URL)")
	recordPath := fs.String("record", "", "Agent Identity record or keygen JSON (- reads stdin)")
	apiKey := fs.String("api-key", "", "API key, always sent as Bearer (visible to ps; prefer --api-key-stdin or $"+envDoAPIKey+")")
	apiKeyStdin := fs.Bool("api-key-stdin", false, "read the API key from the first line of standard input")
	accessToken := fs.String("access-token", "", "ChatGPT access token (with --account-id); an identity provisioned from it lives for this run only (visible to ps; prefer --access-token-stdin or $"+envDoAccessToken+")")
	accessTokenStdin := fs.Bool("access-token-stdin", false, "read the ChatGPT access token from the first line of standard input")
	accountID := fs.String("account-id", "", "ChatGPT account id sent as ChatGPT-Account-ID (with an access token)")
	fedramp := fs.Bool("fedramp", false, "the access token's account is a FedRAMP account (sends X-OpenAI-Fedramp: true)")
	useAgent := fs.Bool("use-agent-identity", false, "turn use_agent_identity on: a ChatGPT login is provisioned an Agent Identity and signs with AgentAssertion (with the Codex home, the default is $AGENTAUTH_USE_AGENT_IDENTITY, else config.toml's [features] use_agent_identity; --use-agent-identity=false turns it off)")
	thread := fs.String("thread", "", "tag the request with this thread key (its own task); without it the process task is used")
	authAPI := fs.String("authapi", "", "AuthAPI base URL where agents and tasks are registered; its origin is first-party (default: the URL's origin when the URL is a loopback host, else derived from the ChatGPT backend; $"+identity.EnvCodexAuthAPIBase+" or the older $"+identity.EnvAuthAPIBase+" overrides both)")
	var extraOrigins stringsFlag
	fs.Var(&extraOrigins, "allow-origin", "also send credentials to this `origin`, scheme://host[:port] (repeatable); plain http only for loopback hosts")
	method := fs.String("X", "", "request method (default GET, or POST with -d)")
	data := fs.String("d", "", "request body; @FILE reads a file and @- stdin; sets Content-Type: application/json unless -H sets one")
	var hdrs stringsFlag
	fs.Var(&hdrs, "H", "extra request `header` 'Name: value' (repeatable)")
	verbose := fs.Bool("v", false, "print every hop as sent (registration attempts and redirects included), its response status and headers or its error, and the transport's debug log to stderr, credentials redacted")
	timeout := fs.Duration("timeout", doDefaultTimeout, "give up after this long")

	positional, code, done := parseInterspersed(fs, doSynopsis, args, stdout, stderr)
	if done {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Where the credential comes from, by the name the user gave it.
	var sources []string
	for _, n := range []string{"codex-home", "record", "api-key", "api-key-stdin", "access-token", "access-token-stdin"} {
		if set[n] {
			sources = append(sources, "--"+n)
		}
	}
	if len(sources) > 1 {
		return usageError(stderr, fs.Name(), fmt.Errorf("%s are exclusive: give one credential source", strings.Join(sources, " and ")))
	}
	stdinUse := ""
	takeStdin := func(by string) error {
		if stdinUse != "" {
			return fmt.Errorf("%s and %s cannot both read standard input", stdinUse, by)
		}
		stdinUse = by
		return nil
	}
	switch {
	case *apiKeyStdin || *accessTokenStdin:
		name := "--api-key-stdin"
		if *accessTokenStdin {
			name = "--access-token-stdin"
		}
		if err := takeStdin(name); err != nil {
			return usageError(stderr, fs.Name(), err)
		}
		v, err := readSecretLine(stdin)
		if err != nil {
			return usageError(stderr, fs.Name(), fmt.Errorf("%s: %w", name, err))
		}
		if *apiKeyStdin {
			*apiKey, set["api-key"] = v, true
		} else {
			*accessToken, set["access-token"] = v, true
		}
		sources = []string{name}
	case len(sources) == 0:
		key, tok := os.Getenv(envDoAPIKey), os.Getenv(envDoAccessToken)
		switch {
		case key != "" && tok != "":
			return usageError(stderr, fs.Name(), fmt.Errorf("$%s and $%s are both set: unset one or give a credential flag", envDoAPIKey, envDoAccessToken))
		case key != "":
			*apiKey, set["api-key"], sources = key, true, []string{"$" + envDoAPIKey}
		case tok != "":
			*accessToken, set["access-token"], sources = tok, true, []string{"$" + envDoAccessToken}
		}
	}
	if set["record"] && *recordPath == "-" {
		if err := takeStdin("--record -"); err != nil {
			return usageError(stderr, fs.Name(), err)
		}
	}
	source := "--codex-home"
	if len(sources) == 1 {
		source = sources[0]
	}
	// Every value the user gave that is a credential; scrub removes them
	// from anything printed, as a second line of defence.
	secrets := []string{*apiKey, *accessToken}

	req, err := parseDoRequest(positional, set, doFlags{
		source: source, insecureJWT: *insecureJWT, useAgent: *useAgent, apiKey: *apiKey, accessToken: *accessToken,
		accountID: *accountID, recordPath: *recordPath, thread: *thread, authAPI: *authAPI, origins: extraOrigins,
		method: *method, data: *data, headers: hdrs, verbose: *verbose, timeout: *timeout, stdinUse: stdinUse,
	}, stdin)
	if err != nil {
		return usageError(stderr, fs.Name(), errors.New(scrub(err.Error(), secrets)))
	}

	homeHow := ""
	if source == "--codex-home" {
		var herr error
		if homeHow, herr = checkCodexHome(set["codex-home"], *codexHome); herr != nil {
			return usageError(stderr, fs.Name(), herr)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, req.timeout)
	defer cancel()

	base := networkTransport()
	outMu := new(sync.Mutex)
	// The verbose hop printer and the log handler read secrets through
	// these pointers, so the credential found in the Codex home (known
	// only after loading it) is scrubbed too.
	verboseRT := &verboseRoundTripper{next: base, w: stderr, secrets: secrets, mu: outMu}
	if req.verbose {
		base = verboseRT
	}
	logs := &doLog{w: stderr, verbose: req.verbose, secrets: secrets, mu: outMu}
	setSecrets := func(s []string) { secrets, verboseRT.secrets, logs.secrets = s, s, s }
	cfg := transport.Config{
		ChatGPTBaseURL:    req.chatgptBase,
		AuthAPIBaseURL:    req.authAPI,
		AllowedOrigins:    req.origins,
		AllowInsecureHTTP: req.insecure,
		Logger:            slog.New(logs.handler()),
	}

	var auth *transport.Transport
	var using string // which credential from where, for messages
	switch {
	case set["api-key"] || set["access-token"] || set["record"]:
		// A credential given on the command line: no Codex home, no
		// refresh, and the flag is what the command line says.
		cfg.Flag = featureflag.New(*useAgent)
		switch {
		case set["api-key"]:
			cfg.Credentials = &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: *apiKey, Source: source}
		case set["access-token"]:
			cfg.Credentials = &credentials.Credentials{Kind: credentials.KindChatGPT, Source: source,
				ChatGPT: &credentials.ChatGPTLogin{AccessToken: *accessToken, AccountID: *accountID, FedRAMP: *fedramp}}
			cfg.IdentityStore = credentials.NewMemoryStore()
		default:
			rec, rerr := loadDoRecord(*recordPath, stdin)
			if rerr != nil {
				// A file named on the command line that cannot be used is
				// bad input, like -d @FILE.
				return usageError(stderr, fs.Name(), fmt.Errorf("--record: %w", rerr))
			}
			setSecrets(append(slices.Clip(secrets), rec.AgentPrivateKey.Reveal()))
			cfg.Credentials = &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: rec, Source: "--record"}
		}
		using = describeCredential(cfg.Credentials, "")
		auth, err = transport.New(base, cfg)
	default:
		// The Codex home, wired by the library's one-call constructor:
		// the credential in Codex's order, the flag from
		// $AGENTAUTH_USE_AGENT_IDENTITY and config.toml (unless
		// --use-agent-identity is given), a ChatGPT login that refreshes
		// itself under auth.json's lock, and auth.json as the store of an
		// identity provisioned from it.
		opts := agentauth.Options{
			CodexHome:             *codexHome,
			InsecureSkipJWTVerify: *insecureJWT,
			HTTPClient:            &http.Client{Transport: base},
			Config:                cfg,
		}
		if set["use-agent-identity"] {
			opts.UseAgentIdentity = useAgent
		}
		setup, lerr := agentauth.Load(ctx, opts)
		if lerr != nil {
			return failure(stderr, fs.Name(), errors.New(scrub(describeLoadError(lerr), secrets)))
		}
		defer closeSetup(setup)
		creds := setup.Credentials
		setSecrets(append(slices.Clip(secrets), credentialSecrets(creds)...))
		using = describeCredential(creds, homeHow)
		if strings.HasPrefix(creds.Source, "env ") && homeHow != "" && homeHow != codexHomeDefault {
			// Codex's order: the environment comes before auth.json. Say
			// so, or a --codex-home that is ignored looks broken.
			fmt.Fprintf(stderr, "%s: note: %s; it comes before %s's auth.json (Codex's order): unset it to use the login there\n", fs.Name(), using, homeHow)
		}
		if creds.Kind == credentials.KindChatGPT && creds.ChatGPT.ExternallyManaged && set["use-agent-identity"] && *useAgent {
			what := "ChatGPT tokens an outside host manages (auth_mode chatgptAuthTokens)"
			if creds.PersonalAccessToken {
				what = "a personal access token"
			}
			fmt.Fprintf(stderr, "%s: note: %s holds %s; it stays Bearer and no Agent Identity is provisioned from it\n", fs.Name(), creds.Source, what)
		}
		auth, err = setup.Transport(base)
	}
	if err != nil {
		return failure(stderr, fs.Name(), errors.New(scrub(errText(err)+" ("+using+")", secrets)))
	}
	if req.verbose {
		verboseRT.print("* " + using + "\n")
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
		msg := describeDoError(err, req.authAPI)
		if ctx.Err() == context.DeadlineExceeded {
			msg = fmt.Sprintf("gave up after --timeout %s: %s", req.timeout, msg)
		}
		msg += " (" + using + ")"
		return failure(stderr, fs.Name(), errors.New(scrub(msg, secrets)))
	}
	defer resp.Body.Close()
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return failure(stderr, fs.Name(), errors.New(scrub("reading the response failed: "+rootCause(err), secrets)))
	}
	if resp.StatusCode >= 400 {
		msg := "server answered " + resp.Status
		if n := auth.Stats().RequestsIn(resolver.ModePassThrough); n > 0 {
			// A redirect left the first-party origins: that hop went out
			// without a credential, which is often why it was refused.
			msg += fmt.Sprintf(" (%d hop(s) went to an origin that is not first-party and carried no credential; see --allow-origin)", n)
		}
		msg += " (" + using + ")"
		return failure(stderr, fs.Name(), errors.New(msg))
	}
	return exitOK
}

// readSecretLine reads one credential from the first line of r, without
// its line ending and surrounding space.
func readSecretLine(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(r, doMaxSecret+1))
	if err != nil {
		return "", errors.New("reading standard input failed")
	}
	if len(b) > doMaxSecret {
		return "", fmt.Errorf("standard input is larger than %d bytes", doMaxSecret)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", errors.New("standard input is empty")
	}
	return line, nil
}

// doFlags carries the raw flag values into parseDoRequest.
type doFlags struct {
	insecureJWT, useAgent, verbose                                                    bool
	source, apiKey, accessToken, accountID, recordPath, thread, authAPI, method, data string
	stdinUse                                                                          string // who reads stdin already ("" nobody)
	headers, origins                                                                  []string
	timeout                                                                           time.Duration
}

// parseDoRequest checks the command line and builds the request plan.
// Errors name flags, never the value of a credential.
func parseDoRequest(positional []string, set map[string]bool, f doFlags, stdin io.Reader) (*doRequest, error) {
	token := set["access-token"]
	switch {
	case set["account-id"] && !token:
		return nil, errors.New("--account-id goes with an access token (--access-token, --access-token-stdin or $" + envDoAccessToken + ")")
	case set["fedramp"] && !token:
		return nil, errors.New("--fedramp goes with an access token (--access-token, --access-token-stdin or $" + envDoAccessToken + ")")
	case token && !set["account-id"]:
		return nil, fmt.Errorf("%s needs --account-id", f.source)
	case set["insecure-unverified-jwt"] && f.source != "--codex-home":
		return nil, errors.New("--insecure-unverified-jwt applies only to --codex-home credentials")
	case set["use-agent-identity"] && f.useAgent && set["api-key"]:
		return nil, fmt.Errorf("--use-agent-identity does not apply to an API key (%s): an API key is always sent as Bearer", f.source)
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
		if err := validateSecret(f.source, f.apiKey); err != nil {
			return nil, err
		}
	}
	if token {
		if err := validateSecret(f.source, f.accessToken); err != nil {
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
	r.origins = slices.Clone(doDefaultOrigins)
	addOrigin := func(u *url.URL) {
		if o := originOf(u); !slices.Contains(r.origins, o) {
			r.origins = append(r.origins, o)
		}
		r.insecure = r.insecure || u.Scheme == "http"
	}
	if identity.IsLoopbackBase(target.String()) {
		// A local server (agentauth serve, a test server) is where both
		// the request and its registrations belong: registering at the
		// production AuthAPI would send a login there for a local test.
		// The environment override still wins, as in the library.
		r.chatgptBase = originOf(target)
		addOrigin(target)
	}
	if set["authapi"] {
		u, err := parseHTTPURL("--authapi", f.authAPI, false)
		if err != nil {
			return nil, err
		}
		r.authAPI = strings.TrimRight(u.String(), "/")
		addOrigin(u)
	} else {
		r.authAPI = identity.ResolveBaseURLs(nil, r.chatgptBase).AuthAPI
		if u, err := parseHTTPURL("$"+identity.EnvCodexAuthAPIBase+" (or $"+identity.EnvAuthAPIBase+")", r.authAPI, false); err != nil {
			return nil, err
		} else {
			addOrigin(u)
		}
	}
	for _, o := range f.origins {
		u, err := parseHTTPURL("--allow-origin", o, false)
		if err != nil {
			return nil, err
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("--allow-origin %q must be scheme://host[:port] without a path", truncate(o))
		}
		addOrigin(u)
	}
	if !slices.Contains(r.origins, originOf(target)) {
		return nil, fmt.Errorf("%s is not a first-party origin, so no credential would be sent there; credentials go only to %s; add --allow-origin %s to send them there", originOf(target), strings.Join(r.origins, ", "), originOf(target))
	}
	if set["thread"] {
		if err := transport.ValidateThreadKey(f.thread); err != nil {
			return nil, fmt.Errorf("--thread: %w", err)
		}
		r.thread, r.hasThr = f.thread, true
	}

	if set["d"] {
		body, err := readData(f.data, stdin, f.stdinUse)
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

// readData resolves -d: literal data, @FILE or @- (stdin, unless stdinUse
// names another flag that reads it).
func readData(data string, stdin io.Reader, stdinUse string) ([]byte, error) {
	name, ok := strings.CutPrefix(data, "@")
	if !ok {
		return []byte(data), nil
	}
	var r io.Reader
	switch {
	case name == "-" && stdinUse != "":
		return nil, fmt.Errorf("-d @- and %s cannot both read standard input", stdinUse)
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
			fmt.Fprintf(stdout, "usage: %s\n\n%s\nflags:\n", synopsis, doHelp)
			printFlags(stdout, fs)
			return nil, exitOK, true
		}
		if err != nil {
			return nil, usageError(stderr, fs.Name(), flagError(err)), true
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
		AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID:       acct.AccountID,
		ChatGPTUserID:   acct.ChatGPTUserID,
		Email:           acct.Email,
		PlanType:        acct.PlanType,
		IsFedRAMP:       acct.FedRAMP,
	}, nil
}

// closeSetup closes the setup. A one-shot command often ends while a login
// that was due (but still valid) is being refreshed ahead; Close lets a
// refresh whose token request is out finish and store the new tokens.
func closeSetup(setup *agentauth.Setup) { setup.Close() }

// credentialSecrets lists the secret strings of c, for scrub.
func credentialSecrets(c *credentials.Credentials) []string {
	s := []string{c.APIKey, c.AgentIdentityJWT}
	if c.ChatGPT != nil {
		s = append(s, c.ChatGPT.AccessToken, c.ChatGPT.RefreshToken, c.ChatGPT.IDToken)
	}
	if c.AgentIdentity != nil {
		s = append(s, c.AgentIdentity.AgentPrivateKey.Reveal())
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
	mu      *sync.Mutex // registrations may run on another goroutine; shared with the log handler
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
		// A hop that got no answer is shown too, so a retried
		// registration reads as attempts, not as silence.
		v.print(fmt.Sprintf("< no response from %s %s: %s\n<\n", req.Method, req.URL.Redacted(), scrub(oneLine(errText(err)), v.secrets)))
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

// doLog turns the transport's slog records into do's stderr lines:
// warnings always ("agentauth do: warning: ..."), and with -v every debug
// record as a "* ..." line between the hops. Values pass through scrub.
type doLog struct {
	w       io.Writer
	verbose bool
	secrets []string
	mu      *sync.Mutex // shared with the verbose hop printer
}

// handler returns the slog.Handler that writes to l.
func (l *doLog) handler() slog.Handler {
	return &logHandler{
		enabled: func(lv slog.Level) bool { return l.verbose || lv >= slog.LevelWarn },
		emit:    l.emit,
	}
}

func (l *doLog) emit(r slog.Record, attrs []slog.Attr) error {
	var b strings.Builder
	msg := strings.TrimPrefix(r.Message, "agentauth: ")
	warn := r.Level >= slog.LevelWarn
	if warn {
		b.WriteString("agentauth do: warning: " + msg)
	} else {
		b.WriteString("* " + msg)
	}
	var cause string
	eachAttr(r, attrs, func(a slog.Attr) {
		v := a.Value.Resolve()
		switch {
		case a.Key == "error":
			cause = v.String()
		case !warn: // a warning says what and why; details are for -v
			fmt.Fprintf(&b, " %s=%s", a.Key, v.String())
		}
	})
	if cause != "" {
		b.WriteString(": " + cause)
	}
	line := oneLine(scrub(b.String(), l.secrets)) + "\n"
	if l.mu != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
	}
	_, err := io.WriteString(l.w, line)
	return err
}

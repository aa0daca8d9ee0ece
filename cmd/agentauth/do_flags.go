// do's command line: its flags, their checks, and the request plan they build.

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/threadkey"
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
$CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL names another AuthAPI ($CODEX_AUTHAPI_BASE_URL moves
only the personal access token lookup, as in Codex). Without a credential flag, do reads $AGENTAUTH_API_KEY or $AGENTAUTH_ACCESS_TOKEN,
else the Codex login (--codex-home): a ChatGPT login is refreshed there when due
($CODEX_REFRESH_TOKEN_URL_OVERRIDE names another token endpoint, such as agentauth serve's
/oauth/token), and tokens an outside host manages (auth_mode chatgptAuthTokens) are always
sent as Bearer.
`

// doDefaultOrigins are the first-party origins of every do run: the
// library's default allow-list (the ChatGPT backend and the API).
var doDefaultOrigins = []string{"https://chatgpt.com", "https://api.openai.com"}

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
		if err := threadkey.Validate(f.thread); err != nil {
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

// do's request plan: the checks of its flags and the request they describe.

package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/threadkey"
)

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

// parseDoRequest checks the command line and builds the request plan.
// Errors name flags, never the value of a credential.
func parseDoRequest(positional []string, set map[string]bool, f doFlags, stdin io.Reader) (*doRequest, error) {
	if err := checkDoFlags(positional, set, f); err != nil {
		return nil, err
	}
	r := &doRequest{verbose: f.verbose, timeout: f.timeout, header: http.Header{}}
	target, err := parseHTTPURL("URL", positional[0], true)
	if err != nil {
		return nil, err
	}
	r.target = target
	if err := r.planOrigins(set, f); err != nil { // do_origins.go
		return nil, err
	}
	if set["thread"] {
		if err := threadkey.Validate(f.thread); err != nil {
			return nil, fmt.Errorf("--thread: %w", err)
		}
		r.thread, r.hasThr = f.thread, true
	}
	if err := r.planMessage(set, f, stdin); err != nil {
		return nil, err
	}
	return r, nil
}

// checkDoFlags refuses flags that do not go together, a missing or extra
// URL, and a credential value that cannot go into a header.
func checkDoFlags(positional []string, set map[string]bool, f doFlags) error {
	token := set["access-token"]
	switch {
	case set["account-id"] && !token:
		return errors.New("--account-id goes with an access token (--access-token, --access-token-stdin or $" + envDoAccessToken + ")")
	case set["fedramp"] && !token:
		return errors.New("--fedramp goes with an access token (--access-token, --access-token-stdin or $" + envDoAccessToken + ")")
	case token && !set["account-id"]:
		return fmt.Errorf("%s needs --account-id", f.source)
	case set["insecure-unverified-jwt"] && f.source != "--codex-home":
		return errors.New("--insecure-unverified-jwt applies only to --codex-home credentials")
	case set["use-agent-identity"] && f.useAgent && set["api-key"]:
		return fmt.Errorf("--use-agent-identity does not apply to an API key (%s): an API key is always sent as Bearer", f.source)
	case set["record"] && f.recordPath == "":
		return errors.New("--record needs a file name or -")
	case f.timeout <= 0:
		return errors.New("--timeout must be positive")
	case len(positional) == 0:
		return errors.New("a URL is required")
	case len(positional) > 1:
		return fmt.Errorf("unexpected argument %q after the URL", truncate(positional[1]))
	}
	if set["api-key"] {
		if err := validateSecret(f.source, f.apiKey); err != nil {
			return err
		}
	}
	if token {
		if err := validateSecret(f.source, f.accessToken); err != nil {
			return err
		}
		if err := validateID("--account-id", f.accountID); err != nil {
			return err
		}
	}
	return nil
}

// planMessage fills in the body (-d), the method (-X, else GET or POST
// with a body) and the headers (-H, with -H 'Host: ...' as the Host).
func (r *doRequest) planMessage(set map[string]bool, f doFlags, stdin io.Reader) error {
	if set["d"] {
		body, err := readData(f.data, stdin, f.stdinUse)
		if err != nil {
			return err
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
		return fmt.Errorf("-X %q is not an HTTP method", truncate(r.method))
	}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || !isToken(name) {
			return errors.New("-H takes 'Name: value' with a valid header name")
		}
		if err := headers.ValidateValue(name, value); err != nil {
			return fmt.Errorf("-H %s: the value has a control character", name)
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
	return nil
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

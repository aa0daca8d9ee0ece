// do's command line: its flags, their checks, and the request plan they build.

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
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

// doArgs holds do's flag values as the flag package fills them, and the
// names of the flags the command line gave.
type doArgs struct {
	codexHome, recordPath, apiKey, accessToken, accountID, thread, authAPI, method, data string
	insecureJWT, apiKeyStdin, accessTokenStdin, fedramp, useAgent, verbose               bool
	origins, headers                                                                     stringsFlag
	timeout                                                                              time.Duration
	set                                                                                  map[string]bool
}

// defineDoFlags defines do's flags on fs and returns where their values go.
func defineDoFlags(fs *flag.FlagSet) *doArgs {
	a := &doArgs{}
	fs.StringVar(&a.codexHome, "codex-home", "", "read credentials as the Codex CLI does from DIR (auth.json, config.toml) and the environment; the default source, DIR defaults to $CODEX_HOME, else ~/.codex. A ChatGPT login there is refreshed when its access token is due and the new tokens are written back; an identity provisioned from it is persisted there")
	fs.BoolVar(&a.insecureJWT, "insecure-unverified-jwt", false, "accept an agent_identity JWT from --codex-home WITHOUT verifying it (default: verify it against the JWKS of the ChatGPT backend, or of $CODEX_AGENT_IDENTITY_JWKS_BASE_URL)")
	fs.StringVar(&a.recordPath, "record", "", "Agent Identity record or keygen JSON (- reads stdin)")
	fs.StringVar(&a.apiKey, "api-key", "", "API key, always sent as Bearer (visible to ps; prefer --api-key-stdin or $"+envDoAPIKey+")")
	fs.BoolVar(&a.apiKeyStdin, "api-key-stdin", false, "read the API key from the first line of standard input")
	fs.StringVar(&a.accessToken, "access-token", "", "ChatGPT access token (with --account-id); an identity provisioned from it lives for this run only (visible to ps; prefer --access-token-stdin or $"+envDoAccessToken+")")
	fs.BoolVar(&a.accessTokenStdin, "access-token-stdin", false, "read the ChatGPT access token from the first line of standard input")
	fs.StringVar(&a.accountID, "account-id", "", "ChatGPT account id sent as ChatGPT-Account-ID (with an access token)")
	fs.BoolVar(&a.fedramp, "fedramp", false, "the access token's account is a FedRAMP account (sends X-OpenAI-Fedramp: true)")
	fs.BoolVar(&a.useAgent, "use-agent-identity", false, "turn use_agent_identity on: a ChatGPT login is provisioned an Agent Identity and signs with AgentAssertion (with the Codex home, the default is $AGENTAUTH_USE_AGENT_IDENTITY, else config.toml's [features] use_agent_identity; --use-agent-identity=false turns it off)")
	fs.StringVar(&a.thread, "thread", "", "tag the request with this thread key (its own task); without it the process task is used")
	fs.StringVar(&a.authAPI, "authapi", "", "AuthAPI base URL where agents and tasks are registered; its origin is first-party (default: the URL's origin when the URL is a loopback host, else derived from the ChatGPT backend; $"+identity.EnvCodexAuthAPIBase+" or the older $"+identity.EnvAuthAPIBase+" overrides both)")
	fs.Var(&a.origins, "allow-origin", "also send credentials to this `origin`, scheme://host[:port] (repeatable); plain http only for loopback hosts")
	fs.StringVar(&a.method, "X", "", "request method (default GET, or POST with -d)")
	fs.StringVar(&a.data, "d", "", "request body; @FILE reads a file and @- stdin; sets Content-Type: application/json unless -H sets one")
	fs.Var(&a.headers, "H", "extra request `header` 'Name: value' (repeatable)")
	fs.BoolVar(&a.verbose, "v", false, "print every hop as sent (registration attempts and redirects included), its response status and headers or its error, and the transport's debug log to stderr, credentials redacted")
	fs.DurationVar(&a.timeout, "timeout", doDefaultTimeout, "give up after this long")
	return a
}

// givenFlags returns the names of the flags the command line set.
func givenFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// doFlags returns the values parseDoRequest checks; source names the
// credential source and stdinUse the flag that reads stdin ("" none).
func (a *doArgs) doFlags(source, stdinUse string) doFlags {
	return doFlags{
		source: source, insecureJWT: a.insecureJWT, useAgent: a.useAgent, apiKey: a.apiKey, accessToken: a.accessToken,
		accountID: a.accountID, recordPath: a.recordPath, thread: a.thread, authAPI: a.authAPI, origins: a.origins,
		method: a.method, data: a.data, headers: a.headers, verbose: a.verbose, timeout: a.timeout, stdinUse: stdinUse,
	}
}

// doFlags carries the raw flag values into parseDoRequest.
type doFlags struct {
	insecureJWT, useAgent, verbose                                                    bool
	source, apiKey, accessToken, accountID, recordPath, thread, authAPI, method, data string
	stdinUse                                                                          string // who reads stdin already ("" nobody)
	headers, origins                                                                  []string
	timeout                                                                           time.Duration
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

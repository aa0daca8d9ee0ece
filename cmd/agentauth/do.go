// The do command: it wires the credential into a transport, sends one request and prints the answer.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/transport"
)

func init() {
	register(command{
		name:    "do",
		summary: "send one request through the transport, like curl, and print the response body",
		run:     runDo,
	})
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

	return sendDo(ctx, client, auth, req, using, secrets, stdout, stderr)
}

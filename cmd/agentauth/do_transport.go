// do's transport: the credential wired into the agentauth transport, from
// the command line or from the Codex home, with do's stderr printers.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/transporthook"
	"github.com/agentauth/agentauth/transport"
)

// doOutput is do's stderr while the transport runs: the -v hop printer and
// the log handler, sharing one lock and the secrets they scrub.
type doOutput struct {
	secrets []string
	hops    *verboseRoundTripper // do_print.go
	logs    *doLog
}

// newDoOutput wraps base in the hop printer when verbose; secrets are the
// credential values given on the command line.
func newDoOutput(base http.RoundTripper, stderr io.Writer, verbose bool, secrets []string) (*doOutput, http.RoundTripper) {
	mu := new(sync.Mutex)
	o := &doOutput{
		secrets: secrets,
		hops:    &verboseRoundTripper{next: base, w: stderr, secrets: secrets, mu: mu},
		logs:    &doLog{w: stderr, verbose: verbose, secrets: secrets, mu: mu},
	}
	if verbose {
		base = o.hops
	}
	return o, base
}

// addSecrets adds values to scrub, so that the credential found in the
// Codex home or the record file (known only after loading it) is scrubbed too.
func (o *doOutput) addSecrets(more ...string) {
	s := append(slices.Clip(o.secrets), more...)
	o.secrets, o.hops.secrets, o.logs.secrets = s, s, s
}

// doUsageError is a wiring error that is bad input (exit 2), such as a
// --record file that cannot be used; other wiring errors exit 1.
type doUsageError struct{ err error }

func (e doUsageError) Error() string { return e.err.Error() }

// doWiring is what do's transport is built from.
type doWiring struct {
	args    *doArgs
	source  string // the credential source as the user named it
	homeHow string // how the Codex home was chosen ("" with a credential flag)
	stdin   io.Reader
	stderr  io.Writer
	out     *doOutput
}

// doConfig is the transport configuration of req; its log goes to logs.
func doConfig(req *doRequest, logs *doLog) transport.Options {
	return transport.Options{
		Tuning: transport.Tuning{
			ChatGPTBaseURL:    req.chatgptBase,
			AuthAPIBaseURL:    req.authAPI,
			AllowedOrigins:    req.origins,
			AllowInsecureHTTP: req.insecure,
		},
		Logger: slog.New(logs.handler()),
	}
}

// build returns the transport over base and the description of its
// credential for messages; closeFn must be called when the run ends. An
// error is ready to print: scrubbed of secrets, and a doUsageError when it
// is bad input.
func (w *doWiring) build(ctx context.Context, base http.RoundTripper, opts transport.Options) (auth *transport.Transport, using string, closeFn func(), err error) {
	closeFn = func() {}
	a := w.args
	if a.set["api-key"] || a.set["access-token"] || a.set["record"] {
		auth, using, err = w.fromCommandLine(base, opts)
	} else {
		auth, using, closeFn, err = w.fromCodexHome(ctx, base, opts)
	}
	return auth, using, closeFn, err
}

// transportError is err of building the transport for the credential
// using, scrubbed of every secret known by now.
func (w *doWiring) transportError(err error, using string) error {
	if err == nil {
		return nil
	}
	return errors.New(scrub(errText(err)+" ("+using+")", w.out.secrets))
}

// fromCommandLine wires a credential given on the command line: no Codex
// home, no refresh, and the flag is what the command line says.
func (w *doWiring) fromCommandLine(base http.RoundTripper, opts transport.Options) (auth *transport.Transport, using string, err error) {
	a := w.args
	opts.AgentIdentity = featureflag.New(a.useAgent)
	var creds *credentials.Credentials
	switch {
	case a.set["api-key"]:
		creds = &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: a.apiKey, Source: w.source}
	case a.set["access-token"]:
		creds = &credentials.Credentials{Kind: credentials.KindChatGPT, Source: w.source,
			ChatGPT: &credentials.ChatGPTLogin{AccessToken: a.accessToken, AccountID: a.accountID, FedRAMP: a.fedramp}}
		opts.Fleet.IdentityStore = credentials.NewMemoryStore()
	default:
		rec, rerr := loadDoRecord(a.recordPath, w.stdin)
		if rerr != nil {
			// A file named on the command line that cannot be used is
			// bad input, like -d @FILE.
			return nil, "", doUsageError{fmt.Errorf("--record: %w", rerr)}
		}
		w.out.addSecrets(rec.AgentPrivateKey.Reveal())
		creds = &credentials.Credentials{Kind: credentials.KindAgentIdentity, AgentIdentity: rec, Source: "--record"}
	}
	opts.Credential = transporthook.NewCredential(creds).(transport.Credential)
	using = describeCredential(creds, "")
	auth, err = transport.New(base, opts)
	return auth, using, w.transportError(err, using)
}

// fromCodexHome wires the Codex home as the library detects it: the
// credential in Codex's order, the flag from
// $AGENTAUTH_USE_AGENT_IDENTITY and config.toml (unless
// --use-agent-identity is given), a ChatGPT login that refreshes itself
// under auth.json's lock, and auth.json as the store of an identity
// provisioned from it.
func (w *doWiring) fromCodexHome(ctx context.Context, base http.RoundTripper, opts transport.Options) (auth *transport.Transport, using string, closeFn func(), err error) {
	a := w.args
	opts.CodexHome = a.codexHome
	opts.Tuning.InsecureSkipJWTVerify = a.insecureJWT
	opts.HTTPClient = &http.Client{Transport: base}
	if a.set["use-agent-identity"] {
		opts.AgentIdentity = featureflag.New(a.useAgent)
	}
	cred, lerr := transport.Detect(ctx, opts)
	if lerr != nil {
		return nil, "", func() {}, errors.New(scrub(describeLoadError(lerr), w.out.secrets))
	}
	creds := transporthook.CredentialOf(cred)
	w.out.addSecrets(credentialSecrets(creds)...)
	using = describeCredential(creds, w.homeHow)
	w.noteCodexHomeCredential(creds, using)
	opts.Credential = cred
	if auth, err = transport.New(base, opts); err != nil {
		// The flag is read here (config.toml, the environment): its errors
		// get the same remedies as the credential's.
		return nil, using, func() {}, errors.New(scrub(describeLoadError(err)+" ("+using+")", w.out.secrets))
	}
	// A one-shot command often ends while a login that was due (but
	// still valid) is being refreshed ahead; Close lets a refresh whose
	// token request is out finish and store the new tokens.
	return auth, using, auth.Close, nil
}

// noteCodexHomeCredential explains on stderr a Codex home credential that
// is not what the flags may suggest: one from the environment, which
// comes before auth.json, and tokens that stay Bearer although
// --use-agent-identity is given.
func (w *doWiring) noteCodexHomeCredential(creds *credentials.Credentials, using string) {
	const name = "agentauth do"
	if strings.HasPrefix(creds.Source, "env ") && w.homeHow != "" && w.homeHow != codexHomeDefault {
		// Codex's order: the environment comes before auth.json. Say
		// so, or a --codex-home that is ignored looks broken.
		fmt.Fprintf(w.stderr, "%s: note: %s; it comes before %s's auth.json (Codex's order): unset it to use the login there\n", name, using, w.homeHow)
	}
	if creds.Kind == credentials.KindChatGPT && creds.ChatGPT.ExternallyManaged && w.args.set["use-agent-identity"] && w.args.useAgent {
		what := "ChatGPT tokens an outside host manages (auth_mode chatgptAuthTokens)"
		if creds.PersonalAccessToken {
			what = "a personal access token"
		}
		fmt.Fprintf(w.stderr, "%s: note: %s holds %s; it stays Bearer and no Agent Identity is provisioned from it\n", name, creds.Source, what)
	}
}

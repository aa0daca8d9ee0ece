package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// fltTokenSourceFunc adapts a function to credentials.TokenSource.
type fltTokenSourceFunc func(context.Context) (*credentials.Token, error)

func (f fltTokenSourceFunc) Token(ctx context.Context) (*credentials.Token, error) { return f(ctx) }

// TestSecretsNeverLeak drives every error path reachable from outside —
// invalid thread key, task registration 403/500/malformed/oversized, agent
// registration 403 and unavailable (Bearer fallback), 401 recovery that
// works and that fails (assertion and Bearer), credentials New rejects,
// token sources that fail — with debug logging to a text and a JSON
// handler, and checks that no private key (PKCS#8 base64 or seed hex),
// access token, API key, assertion header or registration signature
// appears in any error (%v, %+v, %#v, %s), in the logs, or in the fmt and
// slog output of the transports themselves.
func TestSecretsNeverLeak(t *testing.T) {
	clk := newFakeClock(wholeSecondNow())
	const (
		token       = "at-flt-SECRET-login-token-0001"
		tokenRefuse = "at-flt-SECRET-refused-token-0002"
		apiKey      = "sk-flt-SECRET-apikey-0003"
	)
	srv, err := identitytest.NewServer(identitytest.Options{
		AccessTokens: []string{token}, APIKeys: []string{apiKey}, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rec := newWireRecorder(t, nil)
	logger, text, js := debugLoggers()
	url := srv.URL() + "/v1/responses"
	ctx, cancel := context.WithTimeout(context.Background(), shortWait)
	defer cancel()

	agent, secrets := seededAgent(t, srv, 0x71)
	_, provisioned := keySecrets(t, 0x72)
	secrets = append(secrets, provisioned...)
	secrets = append(secrets, token, tokenRefuse, apiKey)

	base := func(cred transport.Credential) envOptions {
		return envOptions{srv: srv, base: rec, plain: true, credential: cred, options: func(o *transport.Options) {
			o.Logger, o.Tuning.AgentTimeout = logger, shortWait
			*testhooks.Of(o) = testhooks.Hooks{Now: clk.Now, KeyRand: constReader(0x72)}
		}}
	}
	var transports []*transport.Transport
	build := func(o envOptions) *transport.Transport {
		t.Helper()
		rt := newEnv(t, o).rt
		transports = append(transports, rt)
		return rt
	}
	var errs []error
	var statuses []int
	send := func(rt http.RoundTripper, thread string) result {
		r := post(ctx, rt, url, thread)
		if r.err != nil {
			errs = append(errs, r.err)
		} else {
			statuses = append(statuses, r.status)
		}
		return r
	}
	mustFail := func(what string, r result, kind error) {
		t.Helper()
		if !errors.Is(r.err, kind) {
			t.Fatalf("%s: got status %d / error %v, want an error matching %v", what, r.status, r.err, kind)
		}
	}

	// Agent Identity: a bad thread key, then failing task registrations.
	rtAgent := build(base(agentCred(t, agent)))
	mustFail("bad thread key", send(rtAgent, "flt\r\nAuthorization: x"), transport.ErrInvalidThreadKey)
	for i, f := range []identitytest.Fault{
		{Status: 403}, {Status: 500}, {Body: []byte(`{"task_id":`)},
		{OversizeBytes: identity.DefaultMaxResponseBytes + 1},
	} {
		f.Times = 1
		if f.Status == 500 {
			f.Times = identity.DefaultTaskAttempts // retried within the registration
		}
		srv.InjectFault(identitytest.RouteTaskRegister, f)
		mustFail(fmt.Sprintf("task fault %d", i), send(rtAgent, fmt.Sprintf("flt-secret-fault-%d", i)), transport.ErrRegistration)
	}

	// 401 on an assertion: recovered by re-registering, then not recovered
	// because the re-registration fails.
	first := send(rtAgent, "flt-secret-revoke")
	srv.RevokeTask(first.echo.TaskID)
	if r := send(rtAgent, "flt-secret-revoke"); r.status != http.StatusOK || rtAgent.Stats().Replays != 1 {
		t.Fatalf("401 recovery: status %d, %d replays", r.status, rtAgent.Stats().Replays)
	}
	srv.RevokeTask(srv.Tasks()[len(srv.Tasks())-1].TaskID)
	srv.InjectFault(identitytest.RouteTaskRegister, identitytest.Fault{Status: 500, Times: identity.DefaultTaskAttempts})
	if r := send(rtAgent, "flt-secret-revoke"); r.status != http.StatusUnauthorized {
		t.Fatalf("failed 401 recovery: status %d, err %v; want the 401", r.status, r.err)
	}

	// ChatGPT login with the flag on: agent registration 403, then
	// unavailable (Bearer fallback, logged as a warning with its cause).
	on := base(transport.BearerToken(token, unique("acct-secret"), false))
	on.flag = featureflag.New(true)
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: 403, Times: 1})
	mustFail("agent registration 403", send(build(on), "flt-secret-agent"), transport.ErrProvisioning)
	on.credential = transport.BearerToken(token, unique("acct-secret"), false)
	srv.InjectFault(identitytest.RouteAgentRegister, identitytest.Fault{Status: 503, RetryAfter: "0", Times: identity.DefaultAgentAttempts})
	rtFallback := build(on)
	if r := send(rtFallback, "flt-secret-fallback"); r.echo.Mode != identitytest.ModeBearer {
		t.Fatalf("fallback: status %d mode %q err %v", r.status, r.echo.Mode, r.err)
	}
	// With the fault gone and the cooldown over, the same login provisions
	// (KeyRand seed 0x72) and signs.
	clk.Advance(time.Hour + 1)
	if r := send(rtFallback, "flt-secret-fallback"); r.echo.Mode != identitytest.ModeAssertion {
		t.Fatalf("after the cooldown: status %d mode %q err %v", r.status, r.echo.Mode, r.err)
	}

	// Bearer 401: the file token source cannot offer a fresh token.
	dir := t.TempDir()
	authPath := filepath.Join(dir, credentials.AuthFileName)
	if err := os.WriteFile(authPath, []byte(`{"auth_mode":"chatgpt","tokens":{"access_token":"`+tokenRefuse+`","account_id":"acct-flt"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := send(build(base(transport.ChatGPT(credentials.NewFileTokenSource(authPath)))), "flt-secret-bearer-401"); r.status != http.StatusUnauthorized {
		t.Fatalf("Bearer 401: status %d err %v", r.status, r.err)
	}

	// Token sources that fail: an auth.json whose token cannot be sent, a
	// missing file, and a source whose own error is opaque.
	badPath := filepath.Join(dir, "bad-auth.json")
	if err := os.WriteFile(badPath, []byte(`{"tokens":{"access_token":"`+tokenRefuse+`\n","account_id":"acct-flt"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, src := range []credentials.TokenSource{
		credentials.NewFileTokenSource(badPath),
		credentials.NewFileTokenSource(filepath.Join(dir, "missing.json")),
		fltTokenSourceFunc(func(context.Context) (*credentials.Token, error) { return nil, errors.New("token endpoint down") }),
	} {
		mustFail("token source", send(build(base(transport.ChatGPT(src))), "flt-secret-source"), transport.ErrCredential)
	}

	// API key: requests work; bad keys are rejected by New.
	if r := send(build(base(transport.APIKey(apiKey))), "flt-secret-apikey"); r.echo.Mode != identitytest.ModeBearer {
		t.Fatalf("API key: status %d mode %q err %v", r.status, r.echo.Mode, r.err)
	}
	badKey := secrets[0][:len(secrets[0])-6] + "@@@@=="
	secrets = append(secrets, badKey)
	garbled, err := identity.Record{
		AgentRuntimeID: "rt-flt-garbled", AgentPrivateKey: identity.Secret(badKey), AccountID: "acct-flt", ChatGPTUserID: "u",
	}.StorageJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, cred := range []func() (transport.Credential, error){
		func() (transport.Credential, error) { return transport.APIKey(apiKey + "\r\n"), nil },
		func() (transport.Credential, error) { return transport.AgentIdentity(garbled) }, // refused here or by New
	} {
		c, err := cred()
		if err == nil {
			_, err = tryEnv(t, base(c))
		}
		if err == nil {
			t.Fatal("New accepted an unusable credential")
		}
		errs = append(errs, err)
	}

	// Everything the test saw over the wire is a secret too.
	secrets = append(secrets, rec.Secrets()...)
	for _, seen := range srv.Requests() {
		if v := seen.Header.Get("Authorization"); v != "" {
			secrets = append(secrets, v)
		}
	}
	if len(errs) < 11 || len(rec.Secrets()) < 10 {
		t.Fatalf("only %d errors and %d wire credentials collected; the scenario did not run", len(errs), len(rec.Secrets()))
	}

	// Callers log errors and transports; that must not leak either.
	for _, err := range errs {
		logger.Error("flt: request failed", "err", err)
		for _, s := range errTexts(err) {
			checkNoSecret(t, "error", s, secrets)
		}
	}
	for i, rt := range transports {
		logger.Info("flt: transport", "transport", rt, "stats", rt.Stats())
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			checkNoSecret(t, fmt.Sprintf("transport %d formatted with %s", i, verb), fmt.Sprintf(verb, rt), secrets)
		}
	}
	checkNoSecret(t, "text log", text.String(), secrets)
	checkNoSecret(t, "JSON log", js.String(), secrets)
	for _, want := range []string{"401 recovery failed", "agent provisioning unavailable", "request not authenticated"} {
		if !strings.Contains(text.String(), want) || !strings.Contains(js.String(), want) {
			t.Errorf("the logs lack %q; the secret scan did not see that path", want)
		}
	}
}

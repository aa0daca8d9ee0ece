package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// matrixCred is a credential row of the behaviour matrix
// (docs/protocol.md#behaviour-matrix).
type matrixCred int

const (
	credNone matrixCred = iota
	credAPIKey
	credChatGPT
	credChatGPTFedRAMP
	credAgent
	credAgentFedRAMP
)

func (c matrixCred) String() string {
	return [...]string{"none", "api-key", "chatgpt", "chatgpt-fedramp", "agent-identity", "agent-identity-fedramp"}[c]
}

func (c matrixCred) fedRAMP() bool { return c == credChatGPTFedRAMP || c == credAgentFedRAMP }

// TestMatrix runs every row of the behaviour matrix — credential ×
// flag × context × origin — against the reference server and asserts the
// exact Authorization, routing headers and registrations the server saw.
func TestMatrix(t *testing.T) {
	type row struct {
		cred       matrixCred
		flagOn     bool
		thread     string // "" = no thread key
		firstParty bool
	}
	var rows []row
	for _, cred := range []matrixCred{credNone, credAPIKey, credChatGPT, credChatGPTFedRAMP, credAgent, credAgentFedRAMP} {
		for _, flagOn := range []bool{false, true} {
			for _, thread := range []string{"thread-matrix", ""} {
				for _, firstParty := range []bool{true, false} {
					rows = append(rows, row{cred, flagOn, thread, firstParty})
				}
			}
		}
	}
	const apiKey = "sk-matrix-api-key"
	// Each row's login: its token and the account that token belongs to,
	// which the reference server (like the AuthAPI) reads from the token
	// when the login registers an agent.
	tokens := make([]string, len(rows))
	accounts := make([]string, len(rows))
	tokenAccounts := map[string]string{}
	for i := range rows {
		tokens[i] = fmt.Sprintf("chatgpt-access-token-matrix-%d", i)
		accounts[i] = uniqueAccount("matrix")
		tokenAccounts[tokens[i]] = accounts[i]
	}
	srv := newIdentityServer(t, identitytest.Options{AccessTokenAccounts: tokenAccounts, APIKeys: []string{apiKey}, AllowAnonymous: true})
	other := newHeaderLog(t)
	base := newHTTPBase(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	for i, r := range rows {
		name := fmt.Sprintf("%v/flag=%v/thread=%v/first-party=%v", r.cred, r.flagOn, r.thread != "", r.firstParty)
		t.Run(name, func(t *testing.T) {
			srv.ResetStats()
			other.reset()
			account := accounts[i]
			fed := r.cred.fedRAMP()
			o := envOptions{srv: srv, base: base, plain: true, flag: featureflag.New(r.flagOn)}
			var runtimeID string
			switch r.cred {
			case credNone:
				o.noCredential = true
			case credAPIKey:
				o.credential = transport.APIKey(apiKey)
			case credChatGPT, credChatGPTFedRAMP:
				o.credential = transport.BearerToken(tokens[i], account, fed)
			case credAgent, credAgentFedRAMP:
				ident, _, err := srv.NewAgentIdentity("", identitytest.Login{AccountID: account, FedRAMP: fed})
				if err != nil {
					t.Fatal(err)
				}
				o.credential, runtimeID = agentCred(t, ident), ident.AgentRuntimeID
			}
			rt := newEnv(t, o).rt

			target := srv.URL()
			if !r.firstParty {
				target = other.URL()
			}
			req := newRequest(t, threadCtx(ctx, r.thread), target+"/v1/responses")
			req.Header.Add("X-Caller", "one")
			req.Header.Add("X-Caller", "two")
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			st, ts := srv.Stats(), rt.Stats()

			if !r.firstParty {
				got := other.headers()
				if len(got) != 1 {
					t.Fatalf("other origin got %d requests, want 1", len(got))
				}
				checkNoCredential(t, got[0])
				if v := got[0].Values("X-Caller"); !equalStrings(v, []string{"one", "two"}) {
					t.Errorf("caller header = %q at the other origin", v)
				}
				if n := len(srv.Requests()); n != 0 {
					t.Errorf("first-party server saw %d requests", n)
				}
				if st.AgentRegistrations+st.TaskRegistrations != 0 || len(st.RegistrationsByExternalRef) != 0 {
					t.Errorf("a request to another origin caused registrations: %d agent, %d task",
						st.AgentRegistrations, st.TaskRegistrations)
				}
				if ts.Requests[resolver.ModePassThrough] != 1 || ts.AgentRegistrations+ts.ThreadRegistrations+ts.ProcessRegistrations != 0 {
					t.Errorf("transport stats %+v, want one pass-through request and no registrations", ts)
				}
				return
			}

			seen := onlySeen(t, srv)
			h := seen.Header
			if v := h.Values("X-Caller"); !equalStrings(v, []string{"one", "two"}) {
				t.Errorf("caller header = %q", v)
			}
			assertion := r.cred == credAgent || r.cred == credAgentFedRAMP ||
				(r.flagOn && (r.cred == credChatGPT || r.cred == credChatGPTFedRAMP))
			wantAgentRegs, wantThread, wantProcess := 0, 0, 0
			var wantMode resolver.Mode
			switch {
			case r.cred == credNone:
				wantMode = resolver.ModePassThrough
				if v := h.Values(headers.Authorization); len(v) != 0 {
					t.Errorf("no credential, yet %d Authorization values", len(v))
				}
				checkRouting(t, h, "", false)
			case r.cred == credAPIKey:
				wantMode = resolver.ModeAPIKey
				if v := h.Values(headers.Authorization); !equalStrings(v, []string{"Bearer " + apiKey}) {
					t.Errorf("API key: Authorization is not exactly the Bearer key (%d values)", len(v))
				}
				checkRouting(t, h, "", false)
			case !assertion:
				wantMode = resolver.ModeBearer
				if v := h.Values(headers.Authorization); !equalStrings(v, []string{"Bearer " + tokens[i]}) {
					t.Errorf("ChatGPT flag off: Authorization is not exactly the Bearer token (%d values)", len(v))
				}
				checkRouting(t, h, account, fed)
			default:
				if runtimeID == "" { // provisioned from the ChatGPT login
					wantAgentRegs = 1
					rts := srv.Runtimes()
					last := rts[len(rts)-1]
					if last.AccountID != account || last.FedRAMP != fed {
						t.Errorf("agent registered with routing %q/%v, want %q/%v", last.AccountID, last.FedRAMP, account, fed)
					}
					runtimeID = last.RuntimeID
				}
				checkAssertion(t, srv, h.Values(headers.Authorization), runtimeID, r.thread)
				checkRouting(t, h, account, fed)
				if r.thread != "" {
					wantMode, wantThread = resolver.ModeThreadTask, 1
				} else {
					wantMode, wantProcess = resolver.ModeProcessTask, 1
				}
			}
			wantEchoAccount := "" // no routing for none and API keys
			if wantMode == resolver.ModeBearer || (wantMode == resolver.ModeThreadTask || wantMode == resolver.ModeProcessTask) {
				wantEchoAccount = account
			}
			if seen.Echo.AccountID != wantEchoAccount || seen.Echo.FedRAMP != (fed && wantEchoAccount != "") {
				t.Errorf("server echo routing %q/%v", seen.Echo.AccountID, seen.Echo.FedRAMP)
			}

			wantRefs := map[string]int{}
			if wantThread == 1 {
				wantRefs[r.thread] = 1
			}
			if st.AgentRegistrations != wantAgentRegs || st.ThreadTaskRegistrations != wantThread ||
				st.ProcessTaskRegistrations != wantProcess || !cmp.Equal(st.RegistrationsByExternalRef, wantRefs) {
				t.Errorf("server registrations: agent %d thread %d process %d refs %v; want %d %d %d %v",
					st.AgentRegistrations, st.ThreadTaskRegistrations, st.ProcessTaskRegistrations, st.RegistrationsByExternalRef,
					wantAgentRegs, wantThread, wantProcess, wantRefs)
			}
			if ts.Requests[wantMode] != 1 || ts.AgentRegistrations != uint64(wantAgentRegs) ||
				ts.ThreadRegistrations != uint64(wantThread) || ts.ProcessRegistrations != uint64(wantProcess) {
				t.Errorf("transport stats %+v, want one %v request and registrations %d/%d/%d",
					ts, wantMode, wantAgentRegs, wantThread, wantProcess)
			}
		})
	}
}

// TestFlagOffIsPlainBearer compares, header by header, what the base
// transport receives with the flag off against a request built by hand the
// plain Bearer way, and checks that nothing registers and no goroutine
// starts.
func TestFlagOffIsPlainBearer(t *testing.T) {
	cases := []struct {
		name   string
		creds  transport.Credential
		flagOn bool
		bearer string
		acct   string
		fed    bool
	}{
		{"chatgpt", transport.BearerToken("golden-access-token", "acct-golden", false), false, "golden-access-token", "acct-golden", false},
		{"chatgpt-fedramp", transport.BearerToken("golden-access-token-fed", "acct-golden-fed", true), false, "golden-access-token-fed", "acct-golden-fed", true},
		{"api-key", transport.APIKey("sk-golden"), false, "sk-golden", "", false},
		{"api-key-flag-on", transport.APIKey("sk-golden"), true, "sk-golden", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			base := newStubBase(nil)
			// Default allow-list (https://chatgpt.com, https://api.openai.com):
			// the stub never dials.
			rt := newEnv(t, envOptions{production: true, base: base, plain: true, credential: tc.creds,
				flag: featureflag.New(tc.flagOn), defaultStore: true}).rt

			for _, url := range []string{
				"https://chatgpt.com/backend-api/codex/responses?stream=true",
				"https://api.openai.com/v1/responses",
			} {
				ctx := context.WithValue(context.Background(), struct{ k int }{1}, "v")
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"model":"x"}`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Add("Accept", "text/event-stream")
				req.Header.Add("Accept", "application/json")
				req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
				req.Header.Set("Authorization", "Bearer stale-caller-value")
				req.Header["x-raw-lowercase"] = []string{"kept as is", ""}
				req.Header.Set("Session_id", "s 1")

				// The plain Bearer path, by hand.
				want := req.Header.Clone()
				want.Set("Authorization", "Bearer "+tc.bearer)
				if tc.acct != "" {
					want.Set("ChatGPT-Account-ID", tc.acct)
				}
				if tc.fed {
					want.Set("X-OpenAI-Fedramp", "true")
				}

				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				got := base.last()
				if got.Method != req.Method || got.URL.String() != url || got.Host != req.Host ||
					got.Body != req.Body || got.ContentLength != req.ContentLength || got.Context() != ctx {
					t.Errorf("request line/body/context differ from the plain path: %s %s", got.Method, got.URL)
				}
				if diff := cmp.Diff(want, got.Header); diff != "" {
					t.Errorf("headers differ from the plain Bearer path (-want +got):\n%s", redactDiff(diff))
				}
			}
			if n := base.registrations.Load(); n != 0 {
				t.Errorf("flag off: %d registration requests", n)
			}
			if s := rt.Stats(); s.AgentRegistrations+s.ThreadRegistrations+s.ProcessRegistrations != 0 || s.Signatures != 0 {
				t.Errorf("flag off: stats %+v", s)
			}
			goleak.VerifyNone(t, before)
		})
	}
}

// redactDiff drops lines that could carry a credential from a cmp diff.
func redactDiff(diff string) string {
	var b strings.Builder
	for _, line := range strings.Split(diff, "\n") {
		if strings.Contains(line, "Bearer") || strings.Contains(line, "AgentAssertion") {
			line = "  [line with a credential redacted]"
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// TestFlagFlipAtRunTime flips the featureflag.Flag between requests on one
// transport: Bearer → AgentAssertion → Bearer, without rebuilding anything.
func TestFlagFlipAtRunTime(t *testing.T) {
	const token = "flip-access-token"
	srv := newIdentityServer(t, identitytest.Options{AccessTokens: []string{token}})
	account := uniqueAccount("flip")
	flag := featureflag.New(false)
	rt := newEnv(t, envOptions{srv: srv, base: newHTTPBase(t), plain: true, credential: transport.BearerToken(token, account, false), flag: flag}).rt
	client := &http.Client{Transport: rt}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	url := srv.URL() + "/v1/responses"

	wantModes := []string{identitytest.ModeBearer, identitytest.ModeAssertion, identitytest.ModeBearer, identitytest.ModeAssertion}
	for i, want := range wantModes {
		flag.Set(want == identitytest.ModeAssertion)
		srv.ResetStats()
		echo := mustEcho(t, ctx, client.Transport, url, "flip-thread")
		if echo.Mode != want || echo.AccountID != account {
			t.Fatalf("request %d: mode %q account %q, want %q %q", i, echo.Mode, echo.AccountID, want, account)
		}
		h := onlySeen(t, srv).Header
		if want == identitytest.ModeBearer {
			if v := h.Values(headers.Authorization); !equalStrings(v, []string{"Bearer " + token}) {
				t.Fatalf("request %d: flag off did not send exactly the Bearer token", i)
			}
		} else {
			checkAssertion(t, srv, h.Values(headers.Authorization), echo.AgentRuntimeID, "flip-thread")
		}
		checkRouting(t, h, account, false)
	}
	if s := rt.Stats(); s.AgentRegistrations != 1 || s.ThreadRegistrations != 1 ||
		s.Requests[resolver.ModeBearer] != 2 || s.Requests[resolver.ModeThreadTask] != 2 {
		t.Fatalf("stats %+v: want 1 agent and 1 thread registration, 2 Bearer and 2 assertion requests", s)
	}
}

package transport_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/internal/identity"
	"github.com/agentauth/agentauth/internal/threadkey"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// fltBody is a request body that counts its Close calls.
type fltBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *fltBody) Close() error { b.closes.Add(1); return nil }

// TestHostileThreadKeys: a thread key with CR, LF, NUL, another control
// character, invalid UTF-8, or a length of 1 MB (or empty, or one byte too
// long) is an ErrInvalidThreadKey error for every credential kind: nothing
// reaches the network (no resource request, no agent or task
// registration), the body is closed once, and the error neither repeats the
// key nor is temporary.
func TestHostileThreadKeys(t *testing.T) {
	keys := []struct{ name, key string }{
		{"CR", "thread\rX-Injected: 1"},
		{"LF", "thread\nX-Injected: 1"},
		{"CRLF", "thread\r\nX-Injected: 1"},
		{"NUL", "thread\x00tail-of-key"},
		{"DEL", "thread\x7ftail-of-key"},
		{"C1", "thread\u0085tail-of-key"},
		{"invalid-UTF-8", "thread-\xff\xfe-tail-of-key"},
		{"truncated-UTF-8", "thread-tail-of-key-\xe2\x82"},
		{"1MB", strings.Repeat("k", 1<<20)},
		{"513-bytes", strings.Repeat("k", threadkey.MaxLen+1)},
		{"empty", ""},
	}
	kinds := []struct {
		name    string
		chatGPT bool
		flagOff bool
	}{
		{name: "agent-identity"},
		{name: "chatgpt-flag-on", chatGPT: true},
		{name: "chatgpt-flag-off", chatGPT: true, flagOff: true},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			var flag transport.Flag
			if kind.flagOff {
				flag = featureflag.New(false)
			}
			e := newEnv(t, envOptions{chatGPT: kind.chatGPT, keyByte: 0x44, flag: flag})
			for _, k := range keys {
				body := &fltBody{Reader: strings.NewReader(`{"input":"flt"}`)}
				ctx, cancel := context.WithTimeout(transport.WithThread(context.Background(), k.key), shortWait)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, body)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := e.rt.RoundTrip(req)
				cancel()
				if resp != nil {
					resp.Body.Close()
					t.Fatalf("%s: got a response (status %d), want an error", k.name, resp.StatusCode)
				}
				var te *transport.Error
				if !errors.Is(err, transport.ErrInvalidThreadKey) || !errors.As(err, &te) || te.Temporary() {
					t.Fatalf("%s: err %v, want a permanent *transport.Error matching ErrInvalidThreadKey", k.name, err)
				}
				if len(k.key) >= 8 && strings.Contains(err.Error(), k.key) || len(err.Error()) > 200 {
					t.Errorf("%s: error repeats the key or is %d bytes long", k.name, len(err.Error()))
				}
				if n := body.closes.Load(); n != 1 {
					t.Errorf("%s: body closed %d times, want 1", k.name, n)
				}
				e.errs = append(e.errs, err)
			}
			if res, reg := e.wire.resources.Load(), e.wire.registrations.Load(); res != 0 || reg != 0 {
				t.Fatalf("%d resource requests and %d registrations sent for invalid keys, want none", res, reg)
			}
			if st := e.srv.Stats(); st.AgentRegistrations != 0 || st.TaskRegistrations != 0 {
				t.Fatalf("server saw %d agent and %d task registrations, want none", st.AgentRegistrations, st.TaskRegistrations)
			}
			if s := e.rt.Stats(); s.Failures != uint64(len(keys)) {
				t.Fatalf("Failures = %d, want %d", s.Failures, len(keys))
			}
			// The transport still works for a valid key.
			r := e.do("flt-valid-key")
			if kind.flagOff {
				e.mustBearer(r)
			} else {
				e.mustAssertion(r, "flt-valid-key")
			}
			e.checkNoSecrets()
		})
	}
}

// fltEndless is an AuthAPI in front of the reference server whose
// registration answers can be made endless: "flood" streams a 200 body as
// fast as the client reads it, "trickle" one byte every few milliseconds;
// "healthy" (or a route not selected) passes to the reference server. Each
// stream ends when the client goes away, and is bounded in size and time
// anyway.
type fltEndless struct {
	hs    *httptest.Server
	next  atomic.Pointer[http.Handler]
	mode  atomic.Value // string
	route string       // path suffix that misbehaves
	sent  atomic.Int64 // body bytes written by misbehaving answers
}

func fltNewEndless(t *testing.T, route string) *fltEndless {
	f := &fltEndless{route: route}
	f.mode.Store("healthy")
	f.hs = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.hs.Close)
	return f
}

func (f *fltEndless) serve(w http.ResponseWriter, r *http.Request) {
	mode := f.mode.Load().(string)
	if mode == "healthy" || !strings.HasSuffix(r.URL.Path, f.route) {
		(*f.next.Load()).ServeHTTP(w, r)
		return
	}
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(p []byte) bool {
		n, err := w.Write(p)
		f.sent.Add(int64(n))
		return err == nil && rc.Flush() == nil
	}
	if !write([]byte(`{"task_id":"`)) {
		return
	}
	switch mode {
	case "flood":
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for range 4096 { // at most 128 MiB
			if r.Context().Err() != nil || !write(chunk) {
				return
			}
		}
	case "trickle":
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for range 2000 { // at most 10 s
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if !write([]byte("x")) {
					return
				}
			}
		}
	}
}

// TestHostileEndlessRegistrationResponse: a registration answer that
// never ends is bounded — by the 1 MiB response cap when it streams fast,
// by the registration timeout when it trickles — and fails with a typed
// error (or, for a trickling agent registration, the Bearer fallback).
// Nothing is lost: once the AuthAPI is healthy again and the backoff or
// cooldown has passed, the next request registers and works.
func TestHostileEndlessRegistrationResponse(t *testing.T) {
	cases := []struct {
		name, mode string
		agent      bool
		temporary  bool
		cause      error
	}{
		{name: "task-flood", mode: "flood", cause: identity.ErrResponseTooLarge},
		{name: "task-trickle", mode: "trickle", temporary: true, cause: context.DeadlineExceeded},
		{name: "agent-flood", mode: "flood", agent: true, cause: identity.ErrResponseTooLarge},
		{name: "agent-trickle", mode: "trickle", agent: true, temporary: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			route := "/task/register"
			if c.agent {
				route = "/v1/agent/register"
			}
			front := fltNewEndless(t, route)
			e := newEnv(t, envOptions{chatGPT: c.agent, keyByte: 0x55, shortTimeouts: c.mode == "trickle",
				authAPIURL: front.hs.URL})
			h := e.srv.Handler()
			front.next.Store(&h)
			front.mode.Store(c.mode)
			const key = "flt-endless"

			start := time.Now()
			r := e.do(key)
			elapsed := time.Since(start)
			switch {
			case c.agent && c.temporary:
				e.mustBearer(r)
				if s := e.rt.Stats(); s.BearerFallbacks != 1 {
					t.Fatalf("BearerFallbacks = %d, want 1", s.BearerFallbacks)
				}
			default:
				kind, mode := transport.ErrRegistration, resolver.ModeThreadTask
				if c.agent {
					kind, mode = transport.ErrProvisioning, resolver.ModeProcessTask
				}
				fltCheckRegErr(t, r.err, kind, mode, fltFaultCase{temporary: c.temporary}, c.cause)
			}
			if elapsed > shortWait/2 {
				t.Errorf("the endless answer held the request for %v", elapsed)
			}
			if c.mode == "flood" && front.sent.Load() < identity.DefaultMaxResponseBytes {
				t.Errorf("server sent only %d bytes before the client gave up", front.sent.Load())
			}

			front.mode.Store("healthy")
			e.clock.Advance(2 * time.Minute) // past the thread backoff and the provisioning cooldown/backoff
			e.mustAssertion(e.do(key), key)
			e.checkNoSecrets()
		})
	}
}

// fltNoNetwork is a base transport that must never be used.
type fltNoNetwork struct{ calls atomic.Int64 }

func (n *fltNoNetwork) RoundTrip(req *http.Request) (*http.Response, error) {
	n.calls.Add(1)
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, errors.New("fltNoNetwork: unexpected request")
}

// TestHostileCredentialsAtNew: credentials whose secrets cannot be sent
// (control characters) or parsed are rejected by New with an error that
// names the problem but not the secret.
func TestHostileCredentialsAtNew(t *testing.T) {
	const apiKey = "sk-flt-SECRET-apikey\r\nX-Injected: 1"
	_, keySecrets := keySecrets(t, 0x66)
	badKey := keySecrets[0][:len(keySecrets[0])-8] + "!!!!===="
	// An Agent Identity record is rejected by transport.AgentIdentity or,
	// failing that, by New: either error is New's to the caller.
	agentRecord := func(rec identity.Record) func() (transport.Credential, error) {
		return func() (transport.Credential, error) {
			js, err := rec.StorageJSON()
			if err != nil {
				t.Fatal(err)
			}
			return transport.AgentIdentity(js)
		}
	}
	cases := []struct {
		name    string
		cred    func() (transport.Credential, error)
		secrets []string
	}{
		{"api-key-with-CRLF", func() (transport.Credential, error) { return transport.APIKey(apiKey), nil }, []string{apiKey, "sk-flt-SECRET-apikey"}},
		{"agent-key-garbled", agentRecord(identity.Record{
			AgentRuntimeID: "rt-flt-bad", AgentPrivateKey: identity.Secret(badKey), AccountID: "acct-flt", ChatGPTUserID: "u",
		}), append([]string{badKey}, keySecrets...)},
		{"agent-account-with-LF", agentRecord(identity.Record{
			AgentRuntimeID: "rt-flt-bad", AgentPrivateKey: identity.Secret(keySecrets[0]), AccountID: "acct\nX-Injected: 1", ChatGPTUserID: "u",
		}), keySecrets},
	}
	for _, c := range cases {
		base := &fltNoNetwork{}
		cred, err := c.cred()
		if err == nil {
			_, err = tryEnv(t, envOptions{base: base, production: true, plain: true, credential: cred})
		}
		if err == nil {
			t.Fatalf("%s: New accepted credentials that cannot be sent", c.name)
		}
		for _, s := range errTexts(err) {
			checkNoSecret(t, c.name, s, c.secrets)
		}
		if base.calls.Load() != 0 {
			t.Fatalf("%s: New sent a request", c.name)
		}
	}
}

package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func vecKey(t *testing.T) *PrivateKey {
	t.Helper()
	k, err := ParsePrivateKey(vecPKCS8v2)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testServer starts a loopback server that is closed when the test ends.
func testServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// blockingServer starts a server whose handler never answers: it reports
// each arrival on arrived (when non-nil) and returns when the client goes
// away or the test ends, so no goroutine outlives the test.
func blockingServer(t *testing.T, arrived chan<- struct{}) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := testServer(t, func(w http.ResponseWriter, r *http.Request) {
		if arrived != nil {
			arrived <- struct{}{}
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	return srv
}

func testClient(srv *httptest.Server) *Client {
	return &Client{
		HTTPClient:  srv.Client(),
		AuthAPIBase: srv.URL + "/api/accounts/",
		Now:         func() time.Time { return vecTime },
	}
}

func respond(status int, body string, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// assertNoSecrets fails when any rendering of err contains a secret.
func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, out := range append(fmtAll(err), err.Error()) {
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Errorf("error output leaks a secret (%.12s...): %s", s, out)
			}
		}
	}
}

func mustSeal(t *testing.T, k *PrivateKey, id string) string {
	t.Helper()
	s, err := SealTaskID(k.PublicKey(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRegisterTaskResponseShapes(t *testing.T) {
	k := vecKey(t)
	enc := func(id string) string { return mustSeal(t, k, id) }
	tests := []struct {
		name, body, want string
	}{
		{"task_id", `{"task_id":"t-snake"}`, "t-snake"},
		{"taskId", `{"taskId":"t-camel"}`, "t-camel"},
		{"encrypted_task_id", `{"encrypted_task_id":"` + enc("t-enc-snake") + `"}`, "t-enc-snake"},
		{"encryptedTaskId", `{"encryptedTaskId":"` + enc("t-enc-camel") + `"}`, "t-enc-camel"},
		{"all four, task_id wins", `{"encryptedTaskId":"` + enc("d") + `","encrypted_task_id":"` + enc("c") + `","taskId":"b","task_id":"a"}`, "a"},
		{"plaintext beats encrypted", `{"encrypted_task_id":"` + enc("enc") + `","taskId":"plain"}`, "plain"},
		{"snake encrypted beats camel encrypted", `{"encryptedTaskId":"` + enc("camel") + `","encrypted_task_id":"` + enc("snake") + `"}`, "snake"},
		{"null skipped", `{"task_id":null,"taskId":"b"}`, "b"},
		{"empty skipped", `{"task_id":"","encrypted_task_id":"` + enc("e") + `"}`, "e"},
		{"unknown members ignored", `{"status":"ok","task_id":"t","extra":{"a":[1]}}`, "t"},
		{"unicode id", `{"task_id":"t\u00e9-\u2028"}`, "té-\u2028"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testServer(t, respond(http.StatusOK, tt.body))
			got, err := testClient(srv).RegisterTask(context.Background(), k, vecRuntime, "")
			if err != nil {
				t.Fatalf("RegisterTask: %v", err)
			}
			if got != tt.want {
				t.Errorf("task id = %q, want %q", got, tt.want)
			}
		})
	}
}

type capturedRequest struct {
	method, requestURI string
	header             http.Header
	body               []byte
}

func capture(reply string) (http.HandlerFunc, <-chan capturedRequest) {
	ch := make(chan capturedRequest, 16)
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- capturedRequest{r.Method, r.RequestURI, r.Header.Clone(), b}
		io.WriteString(w, reply)
	}, ch
}

func TestRegisterTaskRequestProcessTask(t *testing.T) {
	k := vecKey(t)
	h, reqs := capture(`{"task_id":"task-123"}`)
	srv := testServer(t, h)
	if _, err := testClient(srv).RegisterTask(context.Background(), k, vecRuntime, ""); err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	if req.method != http.MethodPost || req.requestURI != "/api/accounts/v1/agent/agent-123/task/register" {
		t.Errorf("request = %s %s", req.method, req.requestURI)
	}
	if v := req.header.Get("Authorization"); v != "" {
		t.Errorf("task registration sent Authorization %q", v)
	}
	if ct := req.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if ua := req.header.Get("User-Agent"); ua != DefaultUserAgent {
		t.Errorf("User-Agent = %q", ua)
	}
	want := `{"timestamp":"2026-04-23T00:00:00Z","signature":"` + vecRegSig + `"}`
	if string(req.body) != want {
		t.Errorf("body =\n%s\nwant\n%s", req.body, want)
	}
	var m map[string]any
	if err := json.Unmarshal(req.body, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["external_task_ref"]; ok {
		t.Error("process-task body has an external_task_ref member")
	}
	if len(m) != 2 {
		t.Errorf("body has %d members, want 2", len(m))
	}
	if err := VerifyRegistrationSignature(k.PublicKey(), vecRuntime, m["timestamp"].(string), m["signature"].(string)); err != nil {
		t.Errorf("request signature: %v", err)
	}
}

func TestRegisterTaskRequestThreadTask(t *testing.T) {
	k := vecKey(t)
	h, reqs := capture(`{"task_id":"task-9"}`)
	srv := testServer(t, h)
	c := testClient(srv)
	c.UserAgent = "custom/1"
	const ref = `thread <&> "é" \ 1`
	const runtimeID = "agent/1 2"
	if _, err := c.RegisterTask(context.Background(), k, runtimeID, ref); err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	if req.requestURI != "/api/accounts/v1/agent/agent%2F1%202/task/register" {
		t.Errorf("request URI = %s, want the runtime id path-escaped", req.requestURI)
	}
	if ua := req.header.Get("User-Agent"); ua != "custom/1" {
		t.Errorf("User-Agent = %q", ua)
	}
	if !bytes.Contains(req.body, []byte(`,"external_task_ref":"thread <&> \"é\" \\ 1"}`)) {
		t.Errorf("body does not end with a literal external_task_ref: %s", req.body)
	}
	var m map[string]any
	if err := json.Unmarshal(req.body, &m); err != nil {
		t.Fatal(err)
	}
	if m["external_task_ref"] != ref {
		t.Errorf("external_task_ref = %v, want %q", m["external_task_ref"], ref)
	}
	if err := VerifyRegistrationSignature(k.PublicKey(), runtimeID, m["timestamp"].(string), m["signature"].(string)); err != nil {
		t.Errorf("signature over the unescaped runtime id: %v", err)
	}
}

func TestRegisterTaskFailures(t *testing.T) {
	k := vecKey(t)
	other, _ := NewPrivateKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	long := strings.Repeat("x", 600)
	longMB := strings.Repeat("é", 600)
	tests := []struct {
		name       string
		h          http.HandlerFunc
		maxBytes   int64
		status     int
		body       string // expected RegistrationError.Body
		retryAfter time.Duration
		is         error
		temporary  bool
	}{
		{name: "503 long body", h: respond(503, long), status: 503, body: long[:512] + "...", temporary: true},
		{name: "500 multibyte body", h: respond(500, longMB), status: 500, body: strings.Repeat("é", 512) + "...", temporary: true},
		{name: "500 body of exactly 512 chars", h: respond(500, long[:512]), status: 500, body: long[:512], temporary: true},
		{name: "502 invalid UTF-8 body", h: respond(502, "bad\xffbody"), status: 502, body: "bad\uFFFDbody", temporary: true},
		{name: "429 retry-after seconds", h: respond(429, "slow down", "Retry-After", "7"), status: 429, body: "slow down", retryAfter: 7 * time.Second, temporary: true},
		{name: "429 retry-after date", h: respond(429, "", "Retry-After", vecTime.Add(30*time.Second).Format(http.TimeFormat)), status: 429, retryAfter: 30 * time.Second, temporary: true},
		{name: "400", h: respond(400, `{"error":"bad"}`), status: 400, body: `{"error":"bad"}`},
		{name: "403", h: respond(403, "forbidden"), status: 403, body: "forbidden"},
		{name: "missing id", h: respond(200, `{"status":"ok"}`), is: ErrMissingTaskID},
		{name: "empty id", h: respond(200, `{"task_id":""}`), is: ErrMissingTaskID},
		{name: "all null", h: respond(200, `{"task_id":null,"taskId":null,"encrypted_task_id":null,"encryptedTaskId":null}`), is: ErrMissingTaskID},
		{name: "bad base64", h: respond(200, `{"encrypted_task_id":"!!not base64!!"}`), is: ErrSealedTaskID},
		{name: "sealed to another key", h: respond(200, `{"encrypted_task_id":"`+mustSeal(t, other, "t")+`"}`), is: ErrSealedTaskID},
		{name: "non-UTF-8 plaintext", h: respond(200, `{"encryptedTaskId":"`+mustSeal(t, k, string([]byte{0xff, 0xfe}))+`"}`), is: ErrSealedTaskID},
		{name: "sealed empty id", h: respond(200, `{"encrypted_task_id":"`+mustSeal(t, k, "")+`"}`), is: ErrMissingTaskID},
		{name: "oversize body", h: respond(200, `{"task_id":"`+long+`"}`), maxBytes: 64, is: ErrResponseTooLarge},
		{name: "not JSON", h: respond(200, `task-1`), is: ErrMalformedResponse},
		{name: "JSON array", h: respond(200, `["task-1"]`), is: ErrMalformedResponse},
		{name: "JSON null", h: respond(200, `null`), is: ErrMalformedResponse},
		{name: "task_id not a string", h: respond(200, `{"task_id":42}`), is: ErrMalformedResponse},
		{name: "trailing garbage", h: respond(200, `{"task_id":"a"} x`), is: ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testServer(t, tt.h)
			c := testClient(srv)
			c.MaxResponseBytes = tt.maxBytes
			c.TaskAttempts = 1 // one exchange classified; retries have their own tests
			id, err := c.RegisterTask(context.Background(), k, vecRuntime, "thread-1")
			if err == nil {
				t.Fatalf("RegisterTask = %q, nil error", id)
			}
			if id != "" {
				t.Errorf("failed RegisterTask returned id %q", id)
			}
			var re *RegistrationError
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not a *RegistrationError: %v", err, err)
			}
			if re.Op != OpTaskRegistration || re.StatusCode != tt.status || re.Body != tt.body || re.RetryAfter != tt.retryAfter {
				t.Errorf("got Op=%q StatusCode=%d RetryAfter=%v Body(%d runes)=%.40q\nwant StatusCode=%d RetryAfter=%v Body(%d runes)=%.40q",
					re.Op, re.StatusCode, re.RetryAfter, utf8.RuneCountInString(re.Body), re.Body,
					tt.status, tt.retryAfter, utf8.RuneCountInString(tt.body), tt.body)
			}
			if !utf8.ValidString(err.Error()) {
				t.Error("error text is not valid UTF-8")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false; err = %v", tt.is, err)
			}
			if got := re.Temporary(); got != tt.temporary {
				t.Errorf("Temporary() = %v, want %v", got, tt.temporary)
			}
			if tt.status != 0 && !strings.Contains(err.Error(), "agent task registration failed with status ") {
				t.Errorf("error text %q does not name the status", err)
			}
			assertNoSecrets(t, err, vecRegSig, vecPKCS8v2)
		})
	}
}

func TestRegisterTaskOversizeBoundary(t *testing.T) {
	body := `{"task_id":"abc"}`
	srv := testServer(t, respond(200, body))
	c := testClient(srv)
	c.MaxResponseBytes = int64(len(body))
	if id, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, ""); err != nil || id != "abc" {
		t.Fatalf("body of exactly MaxResponseBytes: %q, %v", id, err)
	}
	c.MaxResponseBytes = int64(len(body)) - 1
	if _, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, ""); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("body one byte over MaxResponseBytes: %v", err)
	}
}

func TestDefaultClientDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	srv := testServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	t.Cleanup(defaultHTTPClient.CloseIdleConnections) // runs before srv.Close
	c := testClient(srv)
	c.HTTPClient = nil
	_, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, "")
	var re *RegistrationError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTemporaryRedirect || re.Temporary() {
		t.Fatalf("want a permanent 307 *RegistrationError, got %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("server saw %d requests, want 1 (redirect followed?)", hits.Load())
	}
}

func TestRegisterTaskErrorBodyRedactsSignature(t *testing.T) {
	// A server that echoes the request must not make the signature part of
	// the error text.
	srv := testServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		w.Write(b)
	})
	_, err := testClient(srv).RegisterTask(context.Background(), vecKey(t), vecRuntime, "")
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("echoed body was not redacted: %v", err)
	}
	assertNoSecrets(t, err, vecRegSig)
}

func TestRegisterTaskOwnTimeoutIsTemporary(t *testing.T) {
	srv := blockingServer(t, nil)
	c := testClient(srv)
	c.TaskTimeout = 100 * time.Millisecond
	start := time.Now()
	_, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, "")
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("RegisterTask took %v with a 100ms timeout", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	var re *RegistrationError
	if !errors.As(err, &re) || !re.Temporary() {
		t.Errorf("own timeout is not a temporary *RegistrationError: %#v", err)
	}
	if !strings.Contains(err.Error(), "no response within 100ms") {
		t.Errorf("error text %q does not name the timeout", err)
	}
}

func TestRegisterTaskCallerDeadlineIsPermanent(t *testing.T) {
	srv := blockingServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := testClient(srv).RegisterTask(ctx, vecKey(t), vecRuntime, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	var re *RegistrationError
	if !errors.As(err, &re) || re.Temporary() {
		t.Errorf("caller deadline: Temporary() = true, want false (%v)", err)
	}
}

func TestRegisterTaskCallerCancel(t *testing.T) {
	t.Run("before the call", func(t *testing.T) {
		var hits atomic.Int32
		srv := testServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := testClient(srv).RegisterTask(ctx, vecKey(t), vecRuntime, "")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want Canceled", err)
		}
		if re := new(RegistrationError); !errors.As(err, &re) || re.Temporary() {
			t.Errorf("canceled caller: want a permanent *RegistrationError, got %#v", err)
		}
		if hits.Load() != 0 {
			t.Errorf("server saw %d requests for a canceled context", hits.Load())
		}
	})
	t.Run("during the call", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		srv := blockingServer(t, arrived)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-arrived
			cancel()
		}()
		_, err := testClient(srv).RegisterTask(ctx, vecKey(t), vecRuntime, "")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want Canceled", err)
		}
		if re := new(RegistrationError); !errors.As(err, &re) || re.Temporary() {
			t.Errorf("canceled caller: want a permanent *RegistrationError, got %#v", err)
		}
	})
}

func TestRegisterTaskConnectionErrorsAreTemporary(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := &Client{HTTPClient: &http.Client{Transport: &http.Transport{}}, AuthAPIBase: "http://" + addr}
		_, err = c.RegisterTask(context.Background(), vecKey(t), vecRuntime, "")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err = %v, want ECONNREFUSED", err)
		}
		if re := new(RegistrationError); !errors.As(err, &re) || !re.Temporary() {
			t.Errorf("connection refused is not temporary: %v", err)
		}
	})
	t.Run("dropped", func(t *testing.T) {
		srv := testServer(t, func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		_, err := testClient(srv).RegisterTask(context.Background(), vecKey(t), vecRuntime, "")
		if re := new(RegistrationError); !errors.As(err, &re) || !re.Temporary() {
			t.Errorf("dropped connection is not a temporary *RegistrationError: %v", err)
		}
	})
}

func TestRegisterTaskRejectsBadInputBeforeNetwork(t *testing.T) {
	var hits atomic.Int32
	srv := testServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"task_id":"t"}`)
	})
	k := vecKey(t)
	tests := []struct {
		name   string
		mutate func(*Client)
		key    *PrivateKey
		rid    string
		ref    string
		is     error
	}{
		{name: "nil key", rid: vecRuntime, is: ErrInvalidKey},
		{name: "empty runtime id", key: k},
		{name: "invalid UTF-8 runtime id", key: k, rid: "a\xff"},
		{name: "invalid UTF-8 ref", key: k, rid: vecRuntime, ref: "t\xff"},
		{name: "negative timeout", key: k, rid: vecRuntime, mutate: func(c *Client) { c.TaskTimeout = -1 }},
		{name: "negative max bytes", key: k, rid: vecRuntime, mutate: func(c *Client) { c.MaxResponseBytes = -1 }},
		{name: "non-http base", key: k, rid: vecRuntime, mutate: func(c *Client) { c.AuthAPIBase = "ftp://example.com" }},
		{name: "base with query", key: k, rid: vecRuntime, mutate: func(c *Client) { c.AuthAPIBase += "?a=b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClient(srv)
			if tt.mutate != nil {
				tt.mutate(c)
			}
			_, err := c.RegisterTask(context.Background(), tt.key, tt.rid, tt.ref)
			var re *RegistrationError
			if !errors.As(err, &re) || re.Temporary() {
				t.Fatalf("want a permanent *RegistrationError, got %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v) = false: %v", tt.is, err)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("bad input reached the server %d times", hits.Load())
	}
}

func TestNilClientUsesDefaults(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var c *Client
	_, err := c.RegisterTask(ctx, vecKey(t), vecRuntime, "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("nil client with canceled ctx: %v", err)
	}
}

type fakeNetError struct{ timeout bool }

func (e fakeNetError) Error() string   { return "fake net error" }
func (e fakeNetError) Timeout() bool   { return e.timeout }
func (e fakeNetError) Temporary() bool { return false }

func TestRegistrationErrorTemporary(t *testing.T) {
	tests := []struct {
		name string
		err  *RegistrationError
		want bool
	}{
		{"400", &RegistrationError{StatusCode: 400}, false},
		{"401", &RegistrationError{StatusCode: 401}, false},
		{"403", &RegistrationError{StatusCode: 403}, false},
		{"404", &RegistrationError{StatusCode: 404}, false},
		{"429", &RegistrationError{StatusCode: 429}, true},
		{"500", &RegistrationError{StatusCode: 500}, true},
		{"503", &RegistrationError{StatusCode: 503}, true},
		{"599", &RegistrationError{StatusCode: 599}, true},
		{"own timeout", &RegistrationError{Err: context.DeadlineExceeded}, true},
		{"net timeout", &RegistrationError{Err: &net.OpError{Op: "read", Err: fakeNetError{timeout: true}}}, true},
		{"bare net timeout", &RegistrationError{Err: fakeNetError{timeout: true}}, true},
		{"bare non-timeout net error", &RegistrationError{Err: fakeNetError{}}, false},
		{"connection reset", &RegistrationError{Err: syscall.ECONNRESET}, true},
		{"unexpected EOF", &RegistrationError{Err: io.ErrUnexpectedEOF}, true},
		{"canceled", &RegistrationError{Err: context.Canceled}, false},
		{"caller deadline", &RegistrationError{Err: &callerDoneError{context.DeadlineExceeded}}, false},
		{"caller gave up during 503 backoff", &RegistrationError{StatusCode: 503, Err: &callerDoneError{context.Canceled}}, false},
		{"malformed", &RegistrationError{Err: ErrMalformedResponse}, false},
		{"wrapped missing id", &RegistrationError{Err: errors.Join(errors.New("x"), ErrMissingTaskID)}, false},
		{"too large", &RegistrationError{Err: ErrResponseTooLarge}, false},
		{"sealed", &RegistrationError{Err: ErrSealedTaskID}, false},
		{"no cause", &RegistrationError{}, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := tt.err.Temporary(); got != tt.want {
			t.Errorf("%s: Temporary() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRegistrationErrorText(t *testing.T) {
	tests := []struct {
		err  *RegistrationError
		want string
	}{
		{&RegistrationError{Op: OpTaskRegistration, StatusCode: 503, Body: "down"}, "identity: agent task registration failed with status 503: down"},
		{&RegistrationError{Op: OpTaskRegistration, StatusCode: 404}, "identity: agent task registration failed with status 404"},
		{&RegistrationError{Op: OpAgentRegistration, StatusCode: 503, Attempts: 3, Body: "x"}, "identity: agent registration failed after 3 attempts with status 503: x"},
		{&RegistrationError{Op: OpJWKSFetch, Err: ErrMalformedResponse}, "identity: JWKS fetch failed: malformed response"},
		{&RegistrationError{Op: OpTaskRegistration, Err: ErrMissingTaskID}, "identity: agent task registration failed: registration response omitted the task id"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	inner := errors.New("boom")
	if got := (&RegistrationError{Err: inner}).Unwrap(); got != inner {
		t.Errorf("Unwrap = %v", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := vecTime
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"99999999999999999", time.Duration(int64(1<<63-1) / int64(time.Second) * int64(time.Second))},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
		{"1.5", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestTruncateChars(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc..."},
		{"ééé", 3, "ééé"},
		{"éééé", 3, "ééé..."},
		{"日本語テキスト", 2, "日本..."},
	}
	for _, tt := range tests {
		if got := truncateChars(tt.in, tt.n); got != tt.want {
			t.Errorf("truncateChars(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

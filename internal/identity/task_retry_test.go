package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A task registration answered 503, 503, 200 succeeds on its third attempt,
// each attempt signed afresh, after two short jittered waits.
func TestRegisterTaskRetriesTemporaryFailures(t *testing.T) {
	s := &scripted{steps: []http.HandlerFunc{
		respond(503, "unavailable"), respond(503, "unavailable"), respond(200, `{"task_id":"task-ok"}`),
	}}
	c, sleeps := agentClient(t, s)
	id, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, "thread-1")
	if err != nil || id != "task-ok" {
		t.Fatalf("RegisterTask = %q, %v; want task-ok", id, err)
	}
	if n := s.hits.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	if w := sleeps.Waits(); len(w) != 2 || w[0] <= 0 || w[0] > MaxRetryWait || w[1] <= 0 || w[1] > MaxRetryWait {
		t.Fatalf("waits %v, want two short positive waits", w)
	}
}

// Retry-After: 2 on a 429 makes the next attempt wait exactly 2 s (on the
// injected sleeper, not the wall clock); a huge Retry-After is capped.
func TestRegisterTaskHonoursRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   time.Duration
	}{{"2", 2 * time.Second}, {"120", MaxRetryWait}} {
		s := &scripted{steps: []http.HandlerFunc{respond(429, "slow", "Retry-After", tt.header), respond(200, `{"task_id":"t"}`)}}
		c, sleeps := agentClient(t, s)
		if _, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, ""); err != nil {
			t.Fatal(err)
		}
		if w := sleeps.Waits(); len(w) != 1 || w[0] != tt.want {
			t.Fatalf("Retry-After %s: waits %v, want [%v]", tt.header, w, tt.want)
		}
	}
}

// Permanent failures are not retried, and a wait that would outlast the
// caller's deadline is not started: the last failure is returned.
func TestRegisterTaskRetryBounds(t *testing.T) {
	s := &scripted{steps: []http.HandlerFunc{respond(403, "no")}}
	c, _ := agentClient(t, s)
	if _, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, ""); err == nil || s.hits.Load() != 1 {
		t.Fatalf("403: %d attempts, err %v; want 1 attempt and an error", s.hits.Load(), err)
	}

	s = &scripted{steps: []http.HandlerFunc{respond(503, "down", "Retry-After", "4")}}
	c, sleeps := agentClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.RegisterTask(ctx, vecKey(t), vecRuntime, "")
	var re *RegistrationError
	if !errors.As(err, &re) || re.StatusCode != 503 || !re.Temporary() || s.hits.Load() != 1 || len(sleeps.Waits()) != 0 {
		t.Fatalf("deadline 1 s, Retry-After 4 s: %d attempts, waits %v, err %v; want 1 attempt, no wait, the temporary 503",
			s.hits.Load(), sleeps.Waits(), err)
	}
}

// A task id above MaxTaskIDLen is a malformed response, not a task.
func TestRegisterTaskRejectsHugeTaskID(t *testing.T) {
	for _, n := range []int{MaxTaskIDLen + 1, 512 << 10} {
		s := &scripted{steps: []http.HandlerFunc{respond(200, `{"task_id":"`+strings.Repeat("t", n)+`"}`)}}
		c, _ := agentClient(t, s)
		c.MaxResponseBytes = 1 << 20
		id, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, "")
		if !errors.Is(err, ErrMalformedResponse) || id != "" {
			t.Fatalf("%d-byte task id: id of %d bytes, err %v; want ErrMalformedResponse", n, len(id), err)
		}
	}
	s := &scripted{steps: []http.HandlerFunc{respond(200, `{"task_id":"`+strings.Repeat("t", MaxTaskIDLen)+`"}`)}}
	c, _ := agentClient(t, s)
	if id, err := c.RegisterTask(context.Background(), vecKey(t), vecRuntime, ""); err != nil || len(id) != MaxTaskIDLen {
		t.Fatalf("%d-byte task id refused: %v", MaxTaskIDLen, err)
	}
}

// Types holding secrets redact themselves in JSON, directly and nested in
// a slog JSON record.
func TestSecretsRedactedInJSON(t *testing.T) {
	k := vecKey(t)
	header, err := SignAssertion(k, vecRuntime, "task-1", vecTime)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAssertion(header)
	if err != nil {
		t.Fatal(err)
	}
	reg := agentReq()
	type holder struct {
		Key *PrivateKey
		A   Assertion
		R   AgentRegistration
	}
	h := holder{Key: k, A: a, R: reg}
	secrets := []string{a.Signature.Reveal(), testAccessToken, k.MarshalPrivateKey()}

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("x", "assertion", a, "registration", reg, "key", k, "holder", h)
	for _, v := range []any{a, reg, k, h} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(out)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(buf.String(), s) {
			t.Fatalf("JSON output contains a secret: %s", buf.String())
		}
	}
	if !strings.Contains(buf.String(), vecRuntime) || !strings.Contains(buf.String(), "acct-1") {
		t.Fatalf("redaction dropped the non-secret fields: %s", buf.String())
	}
}

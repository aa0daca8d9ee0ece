package taskcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var errAttemptBoom = errors.New("boom")

func TestBackoffErrorContract(t *testing.T) {
	until := time.Date(2026, 4, 23, 0, 0, 1, 500_000_000, time.UTC)
	cause := &AttemptError{Key: "thread-1", Err: errAttemptBoom}
	var err error = &BackoffError{Key: "thread-1", Until: until, Failures: 3, Err: cause}

	msg := err.Error()
	for _, want := range []string{"2026-04-23T00:00:01.5Z", "3 consecutive", `"thread-1"`, "boom"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, missing %q", msg, want)
		}
	}
	var berr *BackoffError
	var rerr *AttemptError
	if !errors.As(err, &berr) || !errors.As(err, &rerr) || rerr != cause || !errors.Is(err, errAttemptBoom) {
		t.Error("BackoffError does not unwrap to its AttemptError and cause")
	}
	// The backoff is as temporary as the failure behind it: a retry policy
	// must not spin on a backoff after a permanent failure.
	var tmp interface{ Temporary() bool }
	if !errors.As(err, &tmp) || tmp.Temporary() {
		t.Error("BackoffError after a permanent failure is Temporary")
	}
	after503 := &BackoffError{Key: "thread-1", Until: until, Failures: 1,
		Err: &AttemptError{Key: "thread-1", Err: tempErr{temp: true}}}
	if !after503.Temporary() {
		t.Error("BackoffError after a temporary failure is not Temporary")
	}
	panicked := &BackoffError{Key: "thread-1", Err: &AttemptError{Key: "thread-1", Err: ErrRegistrationPanic}}
	if panicked.Temporary() {
		t.Error("BackoffError after a panic is Temporary")
	}
}

type tempErr struct{ temp, timeout bool }

func (e tempErr) Error() string   { return "temp" }
func (e tempErr) Temporary() bool { return e.temp }
func (e tempErr) Timeout() bool   { return e.timeout }

func TestRegistrationErrorTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errAttemptBoom, false},
		{ErrRegistrationPanic, false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("attempt timed out: %w", context.DeadlineExceeded), true},
		{context.Canceled, false},
		{tempErr{temp: true}, true},
		{tempErr{timeout: true}, true},
		{fmt.Errorf("wrapped: %w", tempErr{}), false},
		{fmt.Errorf("wrapped: %w", tempErr{temp: true}), true},
	} {
		e := &AttemptError{Key: "k", Err: tc.err}
		if got := e.Temporary(); got != tc.want {
			t.Errorf("AttemptError{%v}.Temporary() = %v, want %v", tc.err, got, tc.want)
		}
		if !errors.Is(e, tc.err) || !strings.Contains(e.Error(), `"k"`) {
			t.Errorf("AttemptError{%v} does not unwrap or name its key: %q", tc.err, e.Error())
		}
	}
}

package taskcache

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// permanentDeadline is how identity reports a call whose context ran out: it
// cannot tell the cache's attempt timeout from a caller's deadline, so it
// calls the failure permanent.
type permanentDeadline struct{ err error }

func (e permanentDeadline) Error() string   { return "caller gave up: " + e.err.Error() }
func (e permanentDeadline) Unwrap() error   { return e.err }
func (e permanentDeadline) Temporary() bool { return false }

// An attempt that runs out of the policy's own time is temporary whatever
// its cause says, so the key backs off and retries instead of failing for
// good; its text still names the timeout and the cause.
func TestPolicyTimeoutIsTemporary(t *testing.T) {
	p, err := NewPolicy(CacheOptions{Timeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for name, cause := range map[string]func(error) error{
		"cause wraps the deadline":   func(ctxErr error) error { return permanentDeadline{ctxErr} },
		"cause without the deadline": func(error) error { return permanentDeadline{errors.New("reset")} },
	} {
		_, err, panicked := p.Register(context.Background(), func(ctx context.Context) (string, error) {
			<-ctx.Done()
			return "", cause(ctx.Err())
		})
		rerr := &AttemptError{Key: "k", Err: err}
		if panicked || !rerr.Temporary() || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v: temporary %v, want a temporary timeout", name, err, rerr.Temporary())
		}
		if want := fmt.Sprintf("attempt timed out after %v: ", time.Millisecond); len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
			t.Errorf("%s: error %q does not start with %q", name, err, want)
		}
		var pd permanentDeadline
		if !errors.As(err, &pd) {
			t.Errorf("%s: the cause is not reachable through %v", name, err)
		}
	}
}

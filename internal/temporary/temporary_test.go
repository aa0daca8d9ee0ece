package temporary

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type selfErr struct{ temp, timeout bool }

func (e selfErr) Error() string   { return "self" }
func (e selfErr) Temporary() bool { return e.temp }
func (e selfErr) Timeout() bool   { return e.timeout }

type timeoutOnly struct{}

func (timeoutOnly) Error() string { return "timeout only" }
func (timeoutOnly) Timeout() bool { return true }

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"canceled", context.Canceled, false},
		{"canceled wrapped in a temporary-looking error", fmt.Errorf("%w: %w", selfErr{temp: true}, context.Canceled), false},
		{"deadline", context.DeadlineExceeded, true},
		{"wrapped deadline", fmt.Errorf("attempt timed out: %w", context.DeadlineExceeded), true},
		{"self temporary", selfErr{temp: true}, true},
		{"self timeout", selfErr{timeout: true}, true},
		{"self permanent", fmt.Errorf("wrapped: %w", selfErr{}), false},
		{"timeout only", timeoutOnly{}, true},
		{"outermost decides", fmt.Errorf("%w: %w", Permanent("revoked"), selfErr{temp: true}), false},
		{"permanent over a deadline", fmt.Errorf("%w: %w", Permanent("panic"), context.DeadlineExceeded), false},
	} {
		if got := Is(tc.err); got != tc.want {
			t.Errorf("%s: Is(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

package transport

import (
	"context"

	"github.com/agentauth/agentauth/internal/threadkey"
)

// threadKey is unexported so no other package can set or read the thread
// key except through WithThread and ThreadFrom.
type threadKey struct{}

// ErrInvalidThreadKey is wrapped by the error returned for a request whose
// thread key is empty, longer than 512 bytes, not valid UTF-8 or contains
// a control character. No network call is made for such a request.
var ErrInvalidThreadKey = errInvalidThreadKey

// errInvalidThreadKey is the validator's sentinel, so that errors.Is
// matches what it returns.
var errInvalidThreadKey = threadkey.ErrInvalid

// WithThread returns a copy of ctx that tags requests made with it as work
// of the conversation thread threadID. The key is validated when a request
// is sent: [Transport.RoundTrip] returns an error wrapping
// [ErrInvalidThreadKey] for a bad one.
func WithThread(ctx context.Context, threadID string) context.Context {
	return context.WithValue(ctx, threadKey{}, threadID)
}

// ThreadFrom returns the thread key carried by ctx, if any.
func ThreadFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(threadKey{}).(string)
	return id, ok
}

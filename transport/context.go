package transport

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// threadKey is unexported so no other package can set or read the thread
// key except through WithThread and ThreadFrom.
type threadKey struct{}

// MaxThreadKeyLen is the largest accepted thread key, in bytes.
const MaxThreadKeyLen = 512

// ErrInvalidThreadKey is wrapped by the error returned for a request whose
// thread key is empty, too long, not valid UTF-8 or contains a control
// character. No network call is made for such a request.
var ErrInvalidThreadKey = errors.New("transport: invalid thread key")

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

// ValidateThreadKey reports why id cannot be a thread key: it must be
// non-empty, valid UTF-8, at most [MaxThreadKeyLen] bytes and free of
// control characters. The error describes the problem without repeating
// the key.
func ValidateThreadKey(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidThreadKey)
	}
	if len(id) > MaxThreadKeyLen {
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrInvalidThreadKey, len(id), MaxThreadKeyLen)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidThreadKey)
	}
	for i, r := range id {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return fmt.Errorf("%w: control character at byte %d", ErrInvalidThreadKey, i)
		}
	}
	return nil
}

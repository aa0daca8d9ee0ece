// Package threadkey is the rule for the thread keys of transport.WithThread,
// shared by the transport, the pool and the command: what a key may hold
// and the error that says why one cannot be used.
package threadkey

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxLen is the largest accepted thread key, in bytes.
const MaxLen = 512

// ErrInvalid is wrapped by the error of Validate; the transport exports it
// as ErrInvalidThreadKey.
var ErrInvalid = errors.New("transport: invalid thread key")

// Validate reports why id cannot be a thread key: it must be non-empty,
// valid UTF-8, at most MaxLen bytes and free of control characters. The
// error describes the problem without repeating the key.
func Validate(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(id) > MaxLen {
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrInvalid, len(id), MaxLen)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	}
	for i, r := range id {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return fmt.Errorf("%w: control character at byte %d", ErrInvalid, i)
		}
	}
	return nil
}

package transport

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/internal/threadkey"
)

func TestThreadContextRoundTrip(t *testing.T) {
	ctx := context.Background()
	if _, ok := ThreadFrom(ctx); ok {
		t.Fatal("empty context carries a thread")
	}
	ctx = WithThread(ctx, "thread-1")
	if id, ok := ThreadFrom(ctx); !ok || id != "thread-1" {
		t.Fatalf("ThreadFrom = %q, %v", id, ok)
	}
	// A string key equal to the type's name must not collide.
	//lint:ignore SA1029 a plain string key is the collision this test proves harmless
	other := context.WithValue(context.Background(), "threadKey", "x")
	if _, ok := ThreadFrom(other); ok {
		t.Fatal("foreign context key read as a thread")
	}
}

func TestValidateThreadKey(t *testing.T) {
	bad := map[string]string{
		"empty":        "",
		"CR":           "a\rb",
		"LF":           "a\nb",
		"NUL":          "a\x00b",
		"DEL":          "a\x7fb",
		"TAB":          "a\tb",
		"C1":           "a\u0085b",
		"invalid UTF8": "a\xffb",
		"too long":     strings.Repeat("x", threadkey.MaxLen+1),
		"1 MB":         strings.Repeat("y", 1<<20),
	}
	for name, key := range bad {
		err := threadkey.Validate(key)
		if !errors.Is(err, ErrInvalidThreadKey) {
			t.Errorf("%s: err = %v", name, err)
			continue
		}
		if len(key) > 3 && strings.Contains(err.Error(), key) {
			t.Errorf("%s: error repeats the key", name)
		}
	}
	for _, good := range []string{"thread-1", "ünï <&> \"q\" \\", strings.Repeat("z", threadkey.MaxLen), "\uFFFD"} {
		if err := threadkey.Validate(good); err != nil {
			t.Errorf("threadkey.Validate(%q) = %v", good, err)
		}
	}
}

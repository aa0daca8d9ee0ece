package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/threadkey"
)

// recordingBase is a stub base transport that counts the requests reaching
// it and answers 204.
type recordingBase struct {
	calls atomic.Int64
	auth  atomic.Value // string: the last Authorization header
}

func (b *recordingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.calls.Add(1)
	b.auth.Store(req.Header.Get("Authorization"))
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

// closeCounter is a request body that counts Close calls.
type closeCounter struct {
	io.Reader
	closes atomic.Int64
}

func (c *closeCounter) Close() error { c.closes.Add(1); return nil }

// threadKeyModel restates the thread-key rule: non-empty, valid UTF-8, at most 512
// bytes, no C0 control, DEL or C1 control.
func threadKeyModel(s string) bool {
	if s == "" || len(s) > 512 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return false
		}
	}
	return true
}

// FuzzValidateThreadKey checks ValidateThreadKey against that model
// and that RoundTrip enforces it before the network: a request tagged with
// an invalid key never reaches the base transport (and has its body closed
// once), a valid key does. An API-key transport is enough, since every
// first-party request's thread key is validated whatever the credential.
// Seeds: testdata/fuzz/FuzzValidateThreadKey.
func FuzzValidateThreadKey(f *testing.F) {
	base := &recordingBase{}
	tr, err := newTransport(base, config{Credentials: &credentials.Credentials{Kind: credentials.KindAPIKey, APIKey: "sk-fuzz-key"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		want := threadKeyModel(key)
		err := threadkey.Validate(key)
		if (err == nil) != want {
			t.Fatalf("threadkey.Validate(%q) = %v, want valid=%t", key, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidThreadKey) {
				t.Fatalf("error does not wrap ErrInvalidThreadKey: %v", err)
			}
			if len(key) > 3 && strings.Contains(err.Error(), key) {
				t.Fatalf("error repeats the key: %v", err)
			}
		}

		body := &closeCounter{Reader: strings.NewReader("{}")}
		req, rerr := http.NewRequestWithContext(WithThread(context.Background(), key), http.MethodPost,
			"https://api.openai.com/v1/responses", body)
		if rerr != nil {
			t.Fatal(rerr)
		}
		before := base.calls.Load()
		resp, rterr := tr.RoundTrip(req)
		reached := base.calls.Load() - before
		if body.closes.Load() != 1 {
			t.Fatalf("body closed %d times", body.closes.Load())
		}
		if !want {
			if rterr == nil || resp != nil || reached != 0 {
				t.Fatalf("invalid key: resp=%v err=%v, base called %d times", resp, rterr, reached)
			}
			var te *Error
			if !errors.Is(rterr, ErrInvalidThreadKey) || !errors.As(rterr, &te) || te.Temporary() {
				t.Fatalf("RoundTrip error %v is not a permanent *Error of kind ErrInvalidThreadKey", rterr)
			}
			if len(key) > 3 && strings.Contains(rterr.Error(), key) {
				t.Fatalf("RoundTrip error repeats the key: %v", rterr)
			}
			return
		}
		if rterr != nil || reached != 1 {
			t.Fatalf("valid key: err=%v, base called %d times", rterr, reached)
		}
		resp.Body.Close()
		if got := base.auth.Load(); got != "Bearer sk-fuzz-key" {
			t.Fatalf("Authorization = %q", got)
		}
	})
}

package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unsafe"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/transporthook"
	"github.com/agentauth/agentauth/resolver"
)

// noThread is stored under threadKey by withoutThread: ThreadFrom asserts
// a string, so the marker hides any thread key an outer context carries,
// and a WithThread below it tags the request again.
type noThread struct{}

func withoutThread(ctx context.Context) context.Context {
	return context.WithValue(ctx, threadKey{}, noThread{})
}

func init() {
	transporthook.WithoutThread = withoutThread
	transporthook.HeadersFor = func(rt any, ctx context.Context, rawURL string) (http.Header, error) {
		t, ok := rt.(*Transport)
		if !ok || t == nil {
			return nil, errors.New("processtask: Headers needs a *transport.Transport built by transport.New")
		}
		return t.headersFor(ctx, rawURL)
	}
}

// headersFor returns the Authorization and routing headers a request to
// rawURL made with ctx would carry, chosen exactly as RoundTrip chooses
// them (origin guard, mode, thread or process task), and counts the
// request in its mode. ws and wss URLs are judged as http and https.
// Nothing is sent but what authentication needs (a provisioning, a task
// registration or a token refresh).
func (t *Transport) headersFor(ctx context.Context, rawURL string) (http.Header, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		// The URL is not quoted: its query may hold a secret.
		return nil, errors.New("processtask: the URL is not absolute (scheme://host/...)")
	}
	scheme := u.Scheme
	switch strings.ToLower(u.Scheme) {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	if t.kind == credentials.KindNone || !t.s.origins.allows(u) {
		return nil, fmt.Errorf("%w: %s://%s", transporthook.ErrForeignOrigin, scheme, u.Host)
	}
	thread, hasThread := ThreadFrom(ctx)
	a, err := t.authz(ctx, thread, hasThread)
	if err != nil {
		t.stats.failures.Add(1)
		var ae *Error
		if !errors.As(err, &ae) {
			err = newError(ErrCredential, resolver.ModePassThrough, err)
		}
		return nil, err
	}
	h := http.Header{headers.Authorization: {a.header}}
	if a.mode != resolver.ModeAPIKey {
		if a.routing.AccountID != "" {
			h[headers.ChatGPTAccountID] = []string{a.routing.AccountID}
		}
		if a.routing.FedRAMP {
			h[headers.OpenAIFedRAMP] = []string{headers.FedRAMPValue}
		}
	}
	t.stats.add(a.mode, uintptr(unsafe.Pointer(&h)))
	return h, nil
}

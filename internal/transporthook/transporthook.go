// Package transporthook lets the public processtask package, and the
// nested otelauth module, reach transport internals without widening the
// transport package's exported API: the context marker that makes a
// request sessionless, the computation of a request's authentication
// headers without sending it, and a hook on each transport an Observer is
// given to. The transport package fills the variables in its init; their
// users import transport, so they are set before they can use them.
package transporthook

import (
	"context"
	"errors"
	"net/http"

	"github.com/agentauth/agentauth/internal/credentials"
)

var (
	// WithoutThread returns ctx marked so that the transport ignores any
	// thread key it carries: the request uses the process task.
	WithoutThread func(ctx context.Context) context.Context

	// HeadersFor returns the authentication headers rt (a
	// *transport.Transport) would set on a request to rawURL made with
	// ctx.
	HeadersFor func(rt any, ctx context.Context, rawURL string) (http.Header, error)

	// OnNew makes obs (a *transport.Observer) call fn with each transport
	// (a *transport.Transport) New builds with it, or with a copy of it.
	OnNew func(obs any, fn func(rt any))

	// CredentialOf returns the resolved credential inside c (a
	// transport.Credential), nil for the zero Credential: the command
	// describes it and scrubs its secrets from what it prints.
	CredentialOf func(c any) *credentials.Credentials

	// NewCredential wraps creds as a transport.Credential, for the command's
	// flags that name a credential the public constructors do not take
	// as is (a parsed record, a Source naming the flag).
	NewCredential func(creds *credentials.Credentials) any
)

// ErrForeignOrigin is returned by HeadersFor for a URL outside the
// transport's first-party origins: no credential goes there.
var ErrForeignOrigin = errors.New("processtask: the URL's origin is not first-party; no credential is sent there")

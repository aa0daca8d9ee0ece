// Package useragent says who is calling on every auth call agentauth makes
// (token refresh, agent and task registration, personal access token
// lookup, JWKS): a User-Agent naming agentauth and its version, and,
// when asked for, the originator header Codex clients send.
package useragent

import (
	"context"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/agentauth/agentauth/internal/headers"
)

// ModulePath is agentauth's module path, looked up in the build info.
const ModulePath = "github.com/agentauth/agentauth"

// EnvOriginatorOverride is the variable the Codex CLI reads its originator
// header value from; agentauth honours it too.
const EnvOriginatorOverride = "CODEX_INTERNAL_ORIGINATOR_OVERRIDE"

// HeaderOriginator is the header Codex names its client in.
const HeaderOriginator = "originator"

var value = sync.OnceValue(func() string { return "agentauth/" + version(debug.ReadBuildInfo) })

// Value returns the User-Agent of agentauth's auth calls:
// "agentauth/<version>", the module version from the build info ("devel"
// when the build records none, as in tests and checkouts).
func Value() string { return value() }

// version returns agentauth's module version as read reports it.
func version(read func() (*debug.BuildInfo, bool)) string {
	bi, ok := read()
	if !ok || bi == nil {
		return "devel"
	}
	mods := []*debug.Module{&bi.Main}
	mods = append(mods, bi.Deps...)
	for _, m := range mods {
		if m == nil || m.Path != ModulePath {
			continue
		}
		if m.Replace != nil && usable(m.Replace.Version) {
			return m.Replace.Version
		}
		if usable(m.Version) {
			return m.Version
		}
	}
	return "devel"
}

func usable(v string) bool {
	return v != "" && v != "(devel)" && headers.ValidateValue("User-Agent", v) == nil && !strings.ContainsAny(v, " \t")
}

// Originator returns the originator header value to send, with Codex's
// precedence (default_client.rs, get_originator_value): the trimmed
// EnvOriginatorOverride read through getenv (nil means none is read) when
// set, else explicit, else "" (no header; Codex would send its default
// "codex_cli_rs"). A value that cannot be sent as a header is dropped.
func Originator(explicit string, getenv func(string) string) string {
	var v string
	if getenv != nil {
		v = strings.TrimSpace(getenv(EnvOriginatorOverride))
	}
	if v == "" {
		v = strings.TrimSpace(explicit)
	}
	if headers.ValidateValue(HeaderOriginator, v) != nil {
		return ""
	}
	return v
}

// Set sets the User-Agent on h and, when originator is not empty, the
// originator header.
func Set(h http.Header, originator string) {
	h.Set("User-Agent", Value())
	if originator != "" {
		h.Set(HeaderOriginator, originator)
	}
}

type originatorKey struct{}

// WithOriginator returns ctx carrying an explicitly configured originator
// for the auth calls made under it (a call with no configuration of its
// own, such as a personal access token lookup, reads it from there).
func WithOriginator(ctx context.Context, originator string) context.Context {
	if originator == "" {
		return ctx
	}
	return context.WithValue(ctx, originatorKey{}, originator)
}

// FromContext returns the originator WithOriginator put in ctx, or "".
func FromContext(ctx context.Context) string {
	s, _ := ctx.Value(originatorKey{}).(string)
	return s
}

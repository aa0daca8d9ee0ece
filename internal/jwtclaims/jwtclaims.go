// Package jwtclaims is agentauth's one reader of JWT claims that are not
// verified: it splits a compact JWT and decodes its payload, for the
// places that read a token's claims only to route, label or date it (the
// server that receives the token verifies it). A JWT whose claims must be
// trusted is verified with go-jose instead (see internal/identity).
package jwtclaims

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Errors of [Payload]. They describe the token's shape and never contain
// the token.
var (
	// ErrNotJWT: the token is not three non-empty dot-separated parts.
	ErrNotJWT = errors.New("not a JWT (want three non-empty dot-separated parts)")
	// ErrPayloadEncoding: the payload part is not base64url.
	ErrPayloadEncoding = errors.New("JWT payload is not valid base64url")
)

// Payload returns the decoded payload of a compact JWT WITHOUT VERIFYING
// ANYTHING. The token must have exactly three non-empty dot-separated
// parts, as the Codex CLI requires; the payload is unpadded base64url,
// trailing '=' padding tolerated. The caller decodes the JSON.
func Payload(token string) ([]byte, error) {
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, ErrNotJWT
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || header == "" || payload == "" || sig == "" || strings.Contains(sig, ".") {
		return nil, ErrNotJWT
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return nil, ErrPayloadEncoding
	}
	return b, nil
}

package identity

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentauth/agentauth/internal/jwtclaims"
)

// What a verified Agent Identity JWT must carry: this audience and issuer,
// as the Codex backend mints them (docs/protocol.md#agent-identity-jwt-and-jwks).
const (
	// JWTAudience must be among the token's aud values.
	JWTAudience = "codex-app-server"
	// JWTIssuer must equal the token's iss.
	JWTIssuer = "https://chatgpt.com/codex-backend/agent-identity"
	// JWTLeeway is the clock skew tolerated on exp, nbf and iat.
	JWTLeeway = 60 * time.Second
)

// ErrInvalidJWT is wrapped by every failure to decode or verify an Agent
// Identity JWT. The error text never contains the token or its private key.
var ErrInvalidJWT = errors.New("identity: invalid agent identity JWT")

// ErrInvalidJWKS is wrapped by every failure to parse a JWKS.
var ErrInvalidJWKS = errors.New("identity: invalid agent identity JWKS")

// maxJWTBytes bounds the work done on hostile input; a real token with its
// PKCS#8 key is about 1 KiB.
const maxJWTBytes = 64 << 10

// minRSABits is the smallest RSA modulus trusted for RS256.
const minRSABits = 2048

// JWKS is a set of trusted Agent Identity JWT signing keys: the RSA public
// keys of a JSON Web Key Set that carry a kid and may be used for RS256
// signatures. It is immutable and safe for concurrent use.
type JWKS struct {
	set jose.JSONWebKeySet
}

// ParseJWKS parses a JSON Web Key Set ({"keys": [...]}) and keeps its
// usable keys: RSA keys of at least 2048 bits with a kid, whose "use" is
// absent or "sig" and whose "alg" is absent or "RS256". Only the public part
// of a key is kept. Keys of other types or that fail to parse are ignored,
// as RFC 7517 §5 recommends; a set with no usable key is an error wrapping
// [ErrInvalidJWKS].
func ParseJWKS(data []byte) (*JWKS, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object with a keys array", ErrInvalidJWKS)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("%w: no keys member", ErrInvalidJWKS)
	}
	out := &JWKS{}
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if k.KeyID == "" || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != string(jose.RS256)) {
			continue
		}
		pub := k.Public()
		rsaPub, ok := pub.Key.(*rsa.PublicKey)
		if !ok || !pub.Valid() || rsaPub.N.BitLen() < minRSABits {
			continue
		}
		out.set.Keys = append(out.set.Keys, pub)
	}
	if len(out.set.Keys) == 0 {
		return nil, fmt.Errorf("%w: no usable RS256 signing key", ErrInvalidJWKS)
	}
	return out, nil
}

// KeyIDs returns the sorted kids of the usable keys.
func (k *JWKS) KeyIDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, 0, len(k.set.Keys))
	for _, key := range k.set.Keys {
		ids = append(ids, key.KeyID)
	}
	sort.Strings(ids)
	return ids
}

// FetchJWKS GETs the key set at url (see [JWKSURL]) and parses it with
// [ParseJWKS]. The call is bounded by [Client.JWKSTimeout] (10 s) and ctx,
// and the body by [Client.MaxResponseBytes]. Every failure is a
// *[RegistrationError] with Op [OpJWKSFetch]; a non-2xx response carries its
// status and a truncated body.
func (c *Client) FetchJWKS(ctx context.Context, url string) (*JWKS, error) {
	if c == nil {
		c = &Client{}
	}
	if err := c.validate(); err != nil {
		return nil, &RegistrationError{Op: OpJWKSFetch, Err: err}
	}
	data, rerr := c.exchange(ctx, exchange{
		op:      OpJWKSFetch,
		method:  http.MethodGet,
		url:     url,
		timeout: orDefault(c.JWKSTimeout, DefaultJWKSTimeout),
	})
	if rerr != nil {
		return nil, rerr
	}
	keys, err := ParseJWKS(data)
	if err != nil {
		return nil, &RegistrationError{Op: OpJWKSFetch, Err: fmt.Errorf("%w: %w", ErrMalformedResponse, err)}
	}
	return keys, nil
}

// VerifyAgentIdentityJWT verifies an Agent Identity JWT against keys and
// returns the record it carries.
//
// The token must be a compact JWS signed with RS256 (every other algorithm,
// including "none" and HS256, is refused before any key is consulted),
// carry a kid that names a key in keys, and verify under that key. Its
// claims must have iss == [JWTIssuer], [JWTAudience] among aud, and an exp
// that has not passed by more than [JWTLeeway]; nbf and iat, when present,
// may not lie in the future by more than JWTLeeway. The record claims
// (agent_runtime_id, agent_private_key, account_id, chatgpt_user_id,
// plan_type, chatgpt_account_is_fedramp; email optional) must be present and
// the record must pass [Record.Validate]. A zero now means time.Now().
//
// Every error wraps [ErrInvalidJWT] (and, for claim checks, the go-jose/jwt
// error such as jwt.ErrExpired); none contains the token.
func VerifyAgentIdentityJWT(token string, keys *JWKS, now time.Time) (*Record, error) {
	if keys == nil || len(keys.set.Keys) == 0 {
		return nil, fmt.Errorf("%w: no JWKS to verify against", ErrInvalidJWT)
	}
	if err := checkCompactJWT(token); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, fmt.Errorf("%w: signature algorithm is not RS256", ErrInvalidJWT)
		}
		return nil, fmt.Errorf("%w: not a compact JWS", ErrInvalidJWT)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrInvalidJWT)
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, fmt.Errorf("%w: header does not include a kid", ErrInvalidJWT)
	}
	candidates := keys.set.Key(kid)
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: kid %q is not trusted", ErrInvalidJWT, truncateForError(kid))
	}
	var payload []byte
	for _, k := range candidates {
		if payload, err = jws.Verify(k.Key); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: signature does not verify", ErrInvalidJWT)
	}

	var claims jwt.Claims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("%w: registered claims are malformed", ErrInvalidJWT)
	}
	switch {
	case claims.Issuer == "":
		return nil, fmt.Errorf("%w: iss claim is required", ErrInvalidJWT)
	case len(claims.Audience) == 0:
		return nil, fmt.Errorf("%w: aud claim is required", ErrInvalidJWT)
	case claims.Expiry == nil:
		return nil, fmt.Errorf("%w: exp claim is required", ErrInvalidJWT)
	}
	if now.IsZero() {
		now = time.Now()
	}
	expected := jwt.Expected{Issuer: JWTIssuer, AnyAudience: jwt.Audience{JWTAudience}, Time: now}
	if err := claims.ValidateWithLeeway(expected, JWTLeeway); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJWT, err)
	}
	return recordFromClaims(payload)
}

// DecodeAgentIdentityJWTUnverified returns the record in an Agent Identity
// JWT WITHOUT CHECKING ITS SIGNATURE, ISSUER, AUDIENCE OR EXPIRY.
//
// Anyone can forge such a token. Use it only when the caller has explicitly
// chosen to trust the token's source and no JWKS is available, as the Codex
// CLI did before it fetched the JWKS; otherwise use
// [VerifyAgentIdentityJWT]. The token must have exactly three non-empty
// dot-separated parts and a base64url (unpadded) JSON payload with the
// record claims, and the record must pass [Record.Validate]. Errors wrap
// [ErrInvalidJWT] and never contain the token.
func DecodeAgentIdentityJWTUnverified(token string) (*Record, error) {
	if err := checkCompactJWT(token); err != nil {
		return nil, err
	}
	payload, err := jwtclaims.Payload(token)
	switch {
	case errors.Is(err, jwtclaims.ErrNotJWT):
		return nil, fmt.Errorf("%w: want three non-empty dot-separated parts", ErrInvalidJWT)
	case err != nil:
		return nil, fmt.Errorf("%w: payload is not unpadded base64url", ErrInvalidJWT)
	}
	return recordFromClaims(payload)
}

// recordClaims detects which record claims are present.
type recordClaims struct {
	AgentRuntimeID  *string `json:"agent_runtime_id"`
	AgentPrivateKey *string `json:"agent_private_key"`
	AccountID       *string `json:"account_id"`
	ChatGPTUserID   *string `json:"chatgpt_user_id"`
	Email           *string `json:"email"`
	PlanType        *string `json:"plan_type"`
	IsFedRAMP       *bool   `json:"chatgpt_account_is_fedramp"`
}

// recordFromClaims extracts and validates the record carried in a JWT
// payload. Error texts name claims, never values.
func recordFromClaims(payload []byte) (*Record, error) {
	var c recordClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrInvalidJWT)
	}
	for _, req := range []struct {
		name    string
		present bool
	}{
		{"agent_runtime_id", c.AgentRuntimeID != nil},
		{"agent_private_key", c.AgentPrivateKey != nil},
		{"account_id", c.AccountID != nil},
		{"chatgpt_user_id", c.ChatGPTUserID != nil},
		{"plan_type", c.PlanType != nil},
		{"chatgpt_account_is_fedramp", c.IsFedRAMP != nil},
	} {
		if !req.present {
			return nil, fmt.Errorf("%w: %s claim is required", ErrInvalidJWT, req.name)
		}
	}
	rec := &Record{
		AgentRuntimeID:  *c.AgentRuntimeID,
		AgentPrivateKey: Secret(*c.AgentPrivateKey),
		AccountID:       *c.AccountID,
		ChatGPTUserID:   *c.ChatGPTUserID,
		PlanType:        *c.PlanType,
		IsFedRAMP:       *c.IsFedRAMP,
	}
	if c.Email != nil {
		rec.Email = *c.Email
	}
	if err := rec.Validate(); err != nil {
		return nil, &joinedError{
			msg:  ErrInvalidJWT.Error() + ": " + strings.TrimPrefix(err.Error(), "identity: "),
			errs: []error{ErrInvalidJWT, err},
		}
	}
	return rec, nil
}

// joinedError matches several errors while reading as one sentence.
type joinedError struct {
	msg  string
	errs []error
}

func (e *joinedError) Error() string   { return e.msg }
func (e *joinedError) Unwrap() []error { return e.errs }

// checkCompactJWT bounds the token and admits only the characters of the
// compact serialisation (base64url and dots). Base64 decoders skip CR and
// LF, so without this a valid token with line breaks inserted would verify
// as a different byte string than the one that was signed.
func checkCompactJWT(token string) error {
	if len(token) > maxJWTBytes {
		return fmt.Errorf("%w: token longer than %d bytes", ErrInvalidJWT, maxJWTBytes)
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: byte %d is not base64url or '.'", ErrInvalidJWT, i)
		}
	}
	return nil
}

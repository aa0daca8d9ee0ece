package identitytest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentauth/agentauth/internal/identity"
)

// JWTIssuer mints Agent Identity JWTs for tests, signed RS256 with its own
// RSA-2048 key, and publishes the matching JWKS. It exists for tests only:
// the key lives in memory, is generated per issuer and is not protected in
// any way. A JWTIssuer is safe for concurrent use.
type JWTIssuer struct {
	key *rsa.PrivateKey
	kid string
}

// NewJWTIssuer creates an issuer with a fresh RSA-2048 key and a random kid.
func NewJWTIssuer() (*JWTIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("identitytest: generating RSA key: %w", err)
	}
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("identitytest: generating kid: %w", err)
	}
	return &JWTIssuer{key: key, kid: "test-" + base64.RawURLEncoding.EncodeToString(id[:])}, nil
}

// KID returns the key id the issuer signs with and publishes.
func (i *JWTIssuer) KID() string { return i.kid }

// PublicKey returns the issuer's RSA public key, e.g. to craft an HS256
// token "signed" with the public key bytes in an algorithm-confusion test.
func (i *JWTIssuer) PublicKey() *rsa.PublicKey { return &i.key.PublicKey }

// JWKSJSON returns the public JSON Web Key Set, {"keys":[{...}]}, with one
// RSA key (kid [JWTIssuer.KID], alg RS256, use sig), as the JWKS route
// serves it.
func (i *JWTIssuer) JWKSJSON() []byte {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &i.key.PublicKey,
		KeyID:     i.kid,
		Algorithm: string(jose.RS256),
		Use:       "sig",
	}}}
	b, err := json.Marshal(set)
	if err != nil {
		panic("identitytest: marshal JWKS: " + err.Error()) // cannot happen for an RSA public key
	}
	return b
}

// MintOptions adjusts a minted token. The zero value mints a token that
// the transport's verification of an Agent Identity JWT accepts now.
type MintOptions struct {
	// Issuer is the iss claim; empty means
	// "https://chatgpt.com/codex-backend/agent-identity", the issuer the
	// Codex backend mints with.
	Issuer string
	// Audience is the aud claim; empty means "codex-app-server".
	Audience string
	// IssuedAt is the iat claim; zero means time.Now().
	IssuedAt time.Time
	// ExpiresAt is the exp claim; zero means IssuedAt + 1 h.
	ExpiresAt time.Time
	// OmitExpiry leaves the exp claim out.
	OmitExpiry bool
	// KID overrides the kid header, e.g. with a kid the JWKS lacks; empty
	// means [JWTIssuer.KID].
	KID string
	// OmitKID leaves the kid header out.
	OmitKID bool
}

// Mint returns a compact RS256 JWT whose claims are iss, aud, iat, exp and
// the fields of rec (email omitted when empty). The token embeds
// rec.AgentPrivateKey and is therefore a secret.
func (i *JWTIssuer) Mint(rec identity.Record, opts MintOptions) (string, error) {
	iss := opts.Issuer
	if iss == "" {
		iss = identity.JWTIssuer
	}
	aud := opts.Audience
	if aud == "" {
		aud = identity.JWTAudience
	}
	iat := opts.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	exp := opts.ExpiresAt
	if exp.IsZero() {
		exp = iat.Add(time.Hour)
	}
	claims := jwt.Claims{Issuer: iss, Audience: jwt.Audience{aud}, IssuedAt: jwt.NewNumericDate(iat)}
	if !opts.OmitExpiry {
		claims.Expiry = jwt.NewNumericDate(exp)
	}

	var signingKey any = i.key
	if !opts.OmitKID {
		kid := opts.KID
		if kid == "" {
			kid = i.kid
		}
		signingKey = jose.JSONWebKey{Key: i.key, KeyID: kid}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signingKey},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("identitytest: creating signer: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Claims(recordClaims(rec)).Serialize()
	if err != nil {
		return "", fmt.Errorf("identitytest: signing JWT: %w", err)
	}
	return tok, nil
}

// recordClaims renders rec with its JSON names; identity.Record redacts
// itself in fmt output but not in JSON, which is what a token must carry.
func recordClaims(rec identity.Record) map[string]any {
	m := map[string]any{
		"agent_runtime_id":           rec.AgentRuntimeID,
		"agent_private_key":          rec.AgentPrivateKey.Reveal(),
		"account_id":                 rec.AccountID,
		"chatgpt_user_id":            rec.ChatGPTUserID,
		"plan_type":                  rec.PlanType,
		"chatgpt_account_is_fedramp": rec.IsFedRAMP,
	}
	if rec.Email != "" {
		m["email"] = rec.Email
	}
	return m
}

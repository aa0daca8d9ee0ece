package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/agentauth/agentauth/internal/jwtclaims"
	"github.com/agentauth/agentauth/transport"
)

// ErrLoginMismatch is returned when a token set stored or about to be
// stored for a login names another login: another account, user or token
// subject than the one the Coordinator was created for. The set is neither
// returned nor stored: sharing it would make one user's replicas send
// another user's tokens.
var ErrLoginMismatch = errors.New("redisstore: the token set belongs to another ChatGPT login")

// jwtClaims is what the coordinator reads, unverified, from a JWT-shaped
// token: who it names and when it was issued. Reading it only decides
// which fleet set a token belongs to and which of two sets is newer; the
// servers check the tokens themselves.
type jwtClaims struct {
	account, user, subject, email string
	issuedAt, expiry              time.Time
}

func readClaims(tok string) (c jwtClaims, ok bool) {
	payload, err := jwtclaims.Payload(tok)
	if err != nil {
		return c, false
	}
	var raw struct {
		Sub   *string      `json:"sub"`
		Email *string      `json:"email"`
		Iat   *json.Number `json:"iat"`
		Exp   *json.Number `json:"exp"`
		Auth  *struct {
			AccountID *string `json:"chatgpt_account_id"`
			UserID    *string `json:"chatgpt_user_id"`
			User      *string `json:"user_id"`
		} `json:"https://api.openai.com/auth"`
	}
	if json.Unmarshal(payload, &raw) != nil {
		return c, false
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	c.subject, c.email = str(raw.Sub), str(raw.Email)
	if raw.Auth != nil {
		c.account, c.user = str(raw.Auth.AccountID), str(raw.Auth.UserID)
		if c.user == "" {
			c.user = str(raw.Auth.User)
		}
	}
	c.issuedAt, c.expiry = numericDate(raw.Iat), numericDate(raw.Exp)
	return c, true
}

func numericDate(n *json.Number) time.Time {
	if n == nil {
		return time.Time{}
	}
	f, err := n.Float64()
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}
	}
	return time.UnixMilli(int64(f * 1000))
}

// setClaims merges what a set's id token and access token say about whom
// they belong to (the id token first).
func setClaims(ts *transport.TokenSet) jwtClaims {
	id, _ := readClaims(ts.IDToken)
	at, _ := readClaims(ts.AccessToken)
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	return jwtClaims{
		account: pick(ts.AccountID, pick(id.account, at.account)),
		user:    pick(id.user, at.user),
		subject: pick(id.subject, at.subject),
		email:   pick(id.email, at.email),
	}
}

// setRank orders the sets of one login by when the token endpoint issued
// them, in milliseconds: the access token's iat, else its exp (the
// lifetime of one login's tokens is the same for all of them), else
// last_refresh; 0 when none is known. Refresh tokens are single use and
// rotate in one chain, so of two sets of a login the one issued later
// holds the live refresh token.
func setRank(ts *transport.TokenSet) int64 {
	if ts == nil {
		return 0
	}
	if c, ok := readClaims(ts.AccessToken); ok {
		if !c.issuedAt.IsZero() {
			return c.issuedAt.UnixMilli()
		}
		if !c.expiry.IsZero() {
			return c.expiry.UnixMilli()
		}
	}
	if !ts.LastRefresh.IsZero() {
		return ts.LastRefresh.UnixMilli()
	}
	return 0
}

// loginMark is what, beyond the account and user ids, tells one login's
// fleet token set from another's: for a login whose tokens name no user,
// the token subject (or email) when they name one, else the login's seed
// itself (its refresh token, hashed), so that two users of one workspace
// whose tokens carry no user id never share a set. It is "" for a login
// with a user id.
func loginMark(login transport.Login, seed *transport.TokenSet) string {
	if m := subjectMark(login, seed); m != "" || login.UserID != "" || seed == nil || seed.RefreshToken == "" {
		return m
	}
	sum := sha256.Sum256([]byte("agentauth/redisstore seed lineage\x00" + seed.RefreshToken))
	return "seed:" + hex.EncodeToString(sum[:])
}

// subjectMark is loginMark without the seed lineage: what the seed's
// tokens say about their user, for a login that names none.
func subjectMark(login transport.Login, seed *transport.TokenSet) string {
	if login.UserID != "" || seed == nil {
		return ""
	}
	c := setClaims(seed)
	switch {
	case c.user != "":
		return "user:" + c.user
	case c.subject != "":
		return "sub:" + c.subject
	case c.email != "":
		return "email:" + c.email
	}
	return ""
}

// checkOwner reports whether ts may be the token set of login (and, when
// known, of the token subject and email of the login's seed): every
// account, user, subject and email it names agrees with what the login
// names.
func checkOwner(login transport.Login, want jwtClaims, ts *transport.TokenSet) error {
	got := setClaims(ts)
	agree := func(a, b string) bool { return a == "" || b == "" || a == b }
	account, user := login.AccountID, login.UserID
	if account == "" {
		account = want.account
	}
	if user == "" {
		user = want.user
	}
	if !agree(account, got.account) || !agree(user, got.user) ||
		!agree(want.subject, got.subject) || !agree(want.email, got.email) {
		return ErrLoginMismatch
	}
	return nil
}

// accessTokenExpiry reads the exp claim of a JWT access token without
// verifying it: only to decide whether this replica's own token has run
// out.
func accessTokenExpiry(tok string) (time.Time, bool) {
	payload, err := jwtclaims.Payload(tok)
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

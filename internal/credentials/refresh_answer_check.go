package credentials

import (
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/internal/headers"
)

// nextSet returns the set to store after a successful token answer: prev
// with the tokens the answer carries, the account re-derived from a new id
// token and last_refresh set to now. An answer that could not be used as
// a login (no access token, one that cannot be sent, an id token that
// cannot be read: stored, any of them would make auth.json unreadable or
// the login unusable for every reader) is not stored and yields a
// temporary error; only a rotated refresh token is kept from it, because
// the endpoint has spent the old one. The old access token, id token and
// last_refresh stay, so the login is still due and is refreshed again.
func (s *RefreshingTokenSource) nextSet(prev TokenSet, resp *tokenResponse) (TokenSet, error) {
	var bad error
	next := prev
	switch {
	case resp.AccessToken == "":
		bad = errors.New("the token response carried no access_token")
	case headers.ValidateValue(headers.Authorization, resp.AccessToken) != nil:
		bad = errors.New("the token response's access_token cannot be sent (it has control characters)")
	default:
		next.AccessToken = resp.AccessToken
		if resp.IDToken != "" {
			c, err := parseIDToken(resp.IDToken)
			if err != nil {
				bad = errors.New("the token response's id_token is not a readable JWT")
				break
			}
			next.IDToken = resp.IDToken
			if c.AccountID != "" {
				next.AccountID = c.AccountID
			}
		}
		if err := validateToken(newRefreshSnap(next).tok); err != nil {
			bad = fmt.Errorf("the token response is unusable: %w", err)
		}
	}
	if bad != nil {
		next = prev
		if resp.RefreshToken != "" {
			next.RefreshToken = resp.RefreshToken
		}
		return next, &RefreshError{Err: bad}
	}
	if resp.RefreshToken != "" {
		next.RefreshToken = resp.RefreshToken
	}
	next.LastRefresh = s.now().UTC().Truncate(time.Second)
	return next, nil
}

// answerIsLogin reports whether a token answer belongs to the login of
// bound (the snapshot the source holds and the store's current one): every
// account named by the bound snapshots, the answer's id token and its
// access token agree, and so does every user. A side that names no
// account (or user) is not compared: tokens without those claims cannot
// be told apart, and the stored account_id is kept for them.
func answerIsLogin(resp *tokenResponse, bound ...*refreshSnap) bool {
	var accounts, users []string
	for _, b := range bound {
		accounts, users = append(accounts, b.tok.AccountID), append(users, b.tok.UserID)
	}
	if resp.IDToken != "" {
		if c, err := parseIDToken(resp.IDToken); err == nil {
			accounts, users = append(accounts, c.AccountID), append(users, c.UserID)
		}
	}
	at := accessTokenClaims(resp.AccessToken)
	accounts, users = append(accounts, at.AccountID), append(users, at.UserID)
	return agree(accounts) && agree(users)
}

// agree reports whether the non-empty values are all equal.
func agree(vals []string) bool {
	known := ""
	for _, v := range vals {
		switch {
		case v == "":
		case known == "":
			known = v
		case v != known:
			return false
		}
	}
	return true
}

// sameLogin reports whether two snapshots are one login: the same account
// and the same user, where both name one (see [answerIsLogin]).
func sameLogin(a, b *refreshSnap) bool {
	return agree([]string{a.tok.AccountID, b.tok.AccountID}) && agree([]string{a.tok.UserID, b.tok.UserID})
}

package credentials

import (
	"errors"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// auth.json switched to another account whose tokens were issued before
// the set the source holds (a login made earlier elsewhere, copied in) is
// an account switch, not a stale copy of the held login: the refresh fails
// with ReasonAccountChanged, and the held login's tokens are never written
// over the other account's.
func TestRefreshOtherLoginIssuedEarlierIsAnAccountSwitch(t *testing.T) {
	e := newRefreshEnv(t, identitytest.Options{})
	other, err := e.srv.IssueLogin(identitytest.Login{AccountID: "acct-other", UserID: "user-o"})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	held, err := e.srv.IssueLogin(identitytest.Login{AccountID: "acct-r", UserID: "user-r"})
	if err != nil {
		t.Fatal(err)
	}
	if err := held.WriteAuthJSON(e.home, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	s := e.source()
	tok, err := s.Token(testCtx(t))
	if err != nil || tok.AccessToken.Reveal() != held.AccessToken {
		t.Fatalf("first load: %v", err)
	}
	if err := other.WriteAuthJSON(e.home, e.clock.Now()); err != nil { // older iat, another account
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	_, err = s.Refresh(testCtx(t), &Token{AccessToken: identity.Secret(held.AccessToken)})
	var re *RefreshError
	if !errors.As(err, &re) || re.Reason != ReasonAccountChanged {
		t.Errorf("refresh after a switch to an account issued earlier: %v, want ReasonAccountChanged", err)
	}
	if af := loadAuthFile(t, e.home); af.Tokens.AccessToken != other.AccessToken {
		t.Error("the held login's tokens were written over the other account's auth.json")
	}
}

package credentials

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// app_session_terminated and invalid_refresh_token end the login whatever
// the status and the body shape: the user must log in again, and the
// source does not ask the endpoint again.
func TestRefreshSessionEndedCodesArePermanent(t *testing.T) {
	codes := []string{ReasonAppSessionTerminated, ReasonInvalidRefreshToken}
	shapes := map[string]string{
		"error object":   `{"error":{"code":%q,"message":"m","type":"invalid_request_error"}}`,
		"error string":   `{"error":%q}`,
		"top-level code": `{"code":%q}`,
	}
	for _, code := range codes {
		for shape, body := range shapes {
			for _, status := range []int{400, 401, 403} {
				t.Run(fmt.Sprintf("%s/%s/%d", code, shape, status), func(t *testing.T) {
					e := newRefreshEnv(t, identitytest.Options{})
					e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: status, Body: fmt.Appendf(nil, body, code)})
					e.clock.Advance(61 * time.Minute)
					s := e.source()
					_, err := s.Token(testCtx(t))
					var re *RefreshError
					if !errors.As(err, &re) || !re.Permanent || re.Reason != code || !errors.Is(err, ErrLoginExpired) {
						t.Fatalf("err = %v, want permanent %s", err, code)
					}
					if _, err := s.Token(testCtx(t)); !errors.Is(err, ErrLoginExpired) || s.TokenRequests() != 1 {
						t.Fatalf("later: %v after %d token requests, want the remembered failure after 1", err, s.TokenRequests())
					}
				})
			}
		}
	}
	// A code that is not one of them stays temporary on a 400.
	e := newRefreshEnv(t, identitytest.Options{})
	e.srv.InjectFault(identitytest.RouteToken, identitytest.Fault{Status: 400, Body: []byte(`{"error":{"code":"rate_limited"}}`)})
	e.clock.Advance(61 * time.Minute)
	if _, err := e.source().Token(testCtx(t)); err == nil || isPermanent(err) {
		t.Fatalf("rate_limited: %v, want a temporary failure", err)
	}
}

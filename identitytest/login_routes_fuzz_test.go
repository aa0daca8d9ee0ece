package identitytest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzLoginRoutes sends arbitrary bodies to the sign-in routes: the
// server never panics, never answers 5xx, and answers 200 only for the
// usercode route (which any well-formed request with the right client id
// may start) or a valid revoke.
func FuzzLoginRoutes(f *testing.F) {
	s, _ := fuzzServer(f)
	h := s.Handler()
	f.Add(uint8(0), []byte(`{"client_id":"app_EMoamEEZ73f0CkXaXp7hrann"}`))
	f.Add(uint8(1), []byte(`{"device_auth_id":"x","user_code":"y"}`))
	f.Add(uint8(2), []byte(`grant_type=authorization_code&code=ac_x&code_verifier=v`))
	f.Add(uint8(3), []byte(`grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c&federation_rule_id=r`))
	f.Add(uint8(4), []byte(`{"token":"t","token_type_hint":"access_token"}`))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		paths := []string{"/api/accounts/deviceauth/usercode", "/api/accounts/deviceauth/token", "/oauth/token", "/oauth/token", "/oauth/revoke"}
		i := int(route) % len(paths)
		req := httptest.NewRequest(http.MethodPost, paths[i], bytes.NewReader(body))
		if i == 2 || i == 3 {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s answered %d", paths[i], rec.Code)
		}
		if rec.Code == 200 && i != 0 && i != 4 {
			t.Fatalf("%s granted an arbitrary body: %s", paths[i], body)
		}
	})
}

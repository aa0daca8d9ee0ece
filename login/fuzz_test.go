package login

import (
	"strings"
	"testing"
)

// Every parser of server or command output: no panic, and what it
// accepts satisfies its contract.

func FuzzParseDeviceCode(f *testing.F) {
	f.Add([]byte(`{"device_auth_id":"d","user_code":"ABCD-EFGHI","interval":"5"}`))
	f.Add([]byte(`{"device_auth_id":"d","usercode":"X","interval":7}`))
	f.Add([]byte(`{"interval":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dc, err := parseDeviceCode(b)
		if err != nil {
			return
		}
		if dc.DeviceAuthID == "" || dc.UserCode == "" || dc.Interval < minPollInterval || dc.Interval > maxPollInterval || !printableToken(dc.UserCode) {
			t.Fatalf("accepted %+v", dc)
		}
	})
}

func FuzzParseDeviceGrant(f *testing.F) {
	f.Add([]byte(`{"authorization_code":"a","code_challenge":"c","code_verifier":"v"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := parseDeviceGrant(b)
		if err == nil && (g.AuthorizationCode == "" || g.CodeVerifier == "") {
			t.Fatal("accepted an empty grant")
		}
	})
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(`{"id_token":"a.b.c","access_token":"x","refresh_token":"y"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tk, err := parseTokens(b)
		if err == nil && (!printableToken(tk.IDToken) || !printableToken(tk.AccessToken) || !printableToken(tk.RefreshToken)) {
			t.Fatal("accepted an unsendable token")
		}
	})
}

func FuzzErrorDetail(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"c","message":"m"}}`))
	f.Add([]byte(`{"error":"invalid_grant","error_description":"the code was used"}`))
	f.Add([]byte(`not json ` + strings.Repeat("x", 100)))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := errorDetail(b)
		if strings.ContainsAny(d, "\r\n") || len(d) > 2*maxErrorTextBytes+16 {
			t.Fatalf("detail %q", d)
		}
		_ = errorCode(b)
	})
}

func FuzzParseCommandToken(f *testing.F) {
	f.Add([]byte("tok-1\n"))
	f.Add([]byte("e30.eyJleHAiOjE3MDAwMDAwMDB9.sig"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, _, err := parseCommandToken(b)
		if err == nil && !printableToken(tok.AccessToken.Reveal()) {
			t.Fatal("accepted an unsendable token")
		}
	})
}

func FuzzAuthClaims(f *testing.F) {
	f.Add("e30.eyJodHRwczovL2FwaS5vcGVuYWkuY29tL2F1dGgiOnsiY2hhdGdwdF9hY2NvdW50X2lkIjoiYSJ9fQ.s")
	f.Fuzz(func(t *testing.T, s string) {
		_ = claimString(authClaims(s), "chatgpt_account_id")
	})
}

package identity_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// The test-vector key (seed 0x07×32, docs/protocol.md#test-vectors), as an
// Agent Identity record would carry it.
const testPrivateKey = "MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHgSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="

var jwtNow = time.Date(2026, 4, 23, 12, 0, 0, 0, time.UTC)

// RSA key generation is slow under -race; two issuers serve every test.
var issuers = sync.OnceValues(func() ([2]*identitytest.JWTIssuer, error) {
	var out [2]*identitytest.JWTIssuer
	for i := range out {
		iss, err := identitytest.NewJWTIssuer()
		if err != nil {
			return out, err
		}
		out[i] = iss
	}
	return out, nil
})

func testIssuers(t *testing.T) (main, other *identitytest.JWTIssuer, keys *identity.JWKS) {
	t.Helper()
	is, err := issuers()
	if err != nil {
		t.Fatal(err)
	}
	keys, err = identity.ParseJWKS(is[0].JWKSJSON())
	if err != nil {
		t.Fatal(err)
	}
	return is[0], is[1], keys
}

func testRecord() identity.Record {
	return identity.Record{
		AgentRuntimeID:  "agent-123",
		AgentPrivateKey: testPrivateKey,
		AccountID:       "acct-1",
		ChatGPTUserID:   "user-1",
		Email:           "dev@example.com",
		PlanType:        "pro",
		IsFedRAMP:       true,
	}
}

func mint(t *testing.T, iss *identitytest.JWTIssuer, rec identity.Record, opts identitytest.MintOptions) string {
	t.Helper()
	if opts.IssuedAt.IsZero() {
		opts.IssuedAt = jwtNow.Add(-time.Minute)
	}
	tok, err := iss.Mint(rec, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkErrorClean fails when err renders the token (unless it is too short
// to mean anything), its payload or the private key.
func checkErrorClean(t *testing.T, err error, token string) {
	t.Helper()
	for _, out := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if (len(token) >= 16 && strings.Contains(out, token)) || strings.Contains(out, testPrivateKey) {
			t.Errorf("error output leaks the token or key: %s", out)
		}
		if parts := strings.Split(token, "."); len(parts) == 3 && len(parts[1]) > 8 && strings.Contains(out, parts[1]) {
			t.Errorf("error output leaks the token payload: %s", out)
		}
	}
}

func TestVerifyAgentIdentityJWTValid(t *testing.T) {
	iss, _, keys := testIssuers(t)
	for _, tc := range []struct {
		name string
		rec  identity.Record
	}{
		{"full record", testRecord()},
		{"email omitted", func() identity.Record { r := testRecord(); r.Email = ""; r.IsFedRAMP = false; return r }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := mint(t, iss, tc.rec, identitytest.MintOptions{})
			got, err := identity.VerifyAgentIdentityJWT(tok, keys, jwtNow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.rec, *got); diff != "" {
				t.Errorf("record mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyAgentIdentityJWTRejects(t *testing.T) {
	iss, other, keys := testIssuers(t)
	rec := testRecord()
	valid := mint(t, iss, rec, identitytest.MintOptions{})
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	header := func(h string) string { return b64([]byte(h)) }

	// alg confusion: HS256 keyed with the RSA public key in two common
	// encodings.
	der, err := x509.MarshalPKIXPublicKey(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs256 := func(key []byte) string {
		signing := header(`{"alg":"HS256","typ":"JWT","kid":"`+iss.KID()+`"}`) + "." + parts[1]
		m := hmac.New(sha256.New, key)
		m.Write([]byte(signing))
		return signing + "." + b64(m.Sum(nil))
	}
	badKeyRec := rec
	badKeyRec.AgentPrivateKey = "bm90IGEga2V5"
	noRuntime := rec
	noRuntime.AgentRuntimeID = ""

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  string // in the error text
		is    []error
	}{
		{name: "unknown kid", want: "kid \"unknown-kid\" is not trusted", token: mint(t, iss, rec, identitytest.MintOptions{KID: "unknown-kid"})},
		{name: "missing kid", want: "header does not include a kid", token: mint(t, iss, rec, identitytest.MintOptions{OmitKID: true})},
		{name: "signed by another key under the trusted kid", want: "signature does not verify", token: mint(t, other, rec, identitytest.MintOptions{KID: iss.KID()})},
		{name: "wrong iss", want: "(iss)", token: mint(t, iss, rec, identitytest.MintOptions{Issuer: "https://evil.example/agent-identity"}), is: []error{jwt.ErrInvalidIssuer}},
		{name: "wrong aud", want: "(aud)", token: mint(t, iss, rec, identitytest.MintOptions{Audience: "someone-else"}), is: []error{jwt.ErrInvalidAudience}},
		{name: "expired beyond leeway", want: "expired", token: mint(t, iss, rec, identitytest.MintOptions{IssuedAt: jwtNow.Add(-2 * time.Hour), ExpiresAt: jwtNow.Add(-61 * time.Second)}), is: []error{jwt.ErrExpired}},
		{name: "missing exp", want: "exp claim is required", token: mint(t, iss, rec, identitytest.MintOptions{OmitExpiry: true})},
		{name: "issued in the future", want: "(iat)", token: mint(t, iss, rec, identitytest.MintOptions{IssuedAt: jwtNow.Add(5 * time.Minute)}), is: []error{jwt.ErrIssuedInTheFuture}},
		{name: "alg none, empty signature", want: "not RS256", token: header(`{"alg":"none","typ":"JWT","kid":"`+iss.KID()+`"}`) + "." + parts[1] + "."},
		{name: "alg none, with signature", want: "not RS256", token: header(`{"alg":"none","kid":"`+iss.KID()+`"}`) + "." + parts[1] + "." + parts[2]},
		{name: "HS256 keyed with public key PEM", want: "not RS256", token: hs256(pemKey)},
		{name: "HS256 keyed with public key DER", want: "not RS256", token: hs256(der)},
		{name: "RS512 is not RS256", want: "not RS256", token: header(`{"alg":"RS512","kid":"`+iss.KID()+`"}`) + "." + parts[1] + "." + parts[2]},
		{name: "payload swapped", want: "signature does not verify", token: parts[0] + "." + strings.Split(mint(t, iss, rec, identitytest.MintOptions{Audience: "x"}), ".")[1] + "." + parts[2]},
		{name: "signature truncated", want: "signature does not verify", token: parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4]},
		{name: "two parts", want: "not a compact JWS", token: parts[0] + "." + parts[1]},
		{name: "garbage", want: "not a compact JWS", token: "not-a-token"},
		{name: "line break in signature", want: "is not base64url", token: parts[0] + "." + parts[1] + "." + parts[2][:10] + "\r\n" + parts[2][10:]},
		{name: "empty", want: "not a compact JWS", token: ""},
		{name: "too long", want: "longer than", token: strings.Repeat("a", 70<<10)},
		{name: "record key invalid", want: "invalid agent identity key", token: mint(t, iss, badKeyRec, identitytest.MintOptions{}), is: []error{identity.ErrInvalidKey}},
		{name: "record without runtime id", want: "no agent_runtime_id", token: mint(t, iss, noRuntime, identitytest.MintOptions{}), is: []error{identity.ErrInvalidKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = jwtNow
			}
			got, err := identity.VerifyAgentIdentityJWT(tt.token, keys, now)
			if err == nil {
				t.Fatalf("token accepted: %v", got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if !errors.Is(err, identity.ErrInvalidJWT) {
				t.Errorf("error does not wrap ErrInvalidJWT: %v", err)
			}
			for _, want := range tt.is {
				if !errors.Is(err, want) {
					t.Errorf("error does not wrap %v: %v", want, err)
				}
			}
			checkErrorClean(t, err, tt.token)
		})
	}
}

func TestVerifyAgentIdentityJWTLeeway(t *testing.T) {
	iss, _, keys := testIssuers(t)
	exp := jwtNow.Add(-time.Hour)
	tok := mint(t, iss, testRecord(), identitytest.MintOptions{IssuedAt: exp.Add(-time.Hour), ExpiresAt: exp})
	for _, tc := range []struct {
		now time.Time
		ok  bool
	}{
		{exp.Add(-time.Second), true},
		{exp, true},
		{exp.Add(30 * time.Second), true},
		{exp.Add(identity.JWTLeeway), true},
		{exp.Add(identity.JWTLeeway + time.Second), false},
		{exp.Add(10 * time.Minute), false},
	} {
		_, err := identity.VerifyAgentIdentityJWT(tok, keys, tc.now)
		if (err == nil) != tc.ok {
			t.Errorf("now = exp%+v: err = %v, want ok=%v", tc.now.Sub(exp), err, tc.ok)
		}
	}
}

func TestVerifyAgentIdentityJWTNeedsKeys(t *testing.T) {
	iss, _, _ := testIssuers(t)
	tok := mint(t, iss, testRecord(), identitytest.MintOptions{})
	_, err := identity.VerifyAgentIdentityJWT(tok, nil, jwtNow)
	if !errors.Is(err, identity.ErrInvalidJWT) {
		t.Fatalf("nil JWKS: %v", err)
	}
	checkErrorClean(t, err, tok)
}

func TestDecodeAgentIdentityJWTUnverified(t *testing.T) {
	iss, _, _ := testIssuers(t)
	rec := testRecord()
	tok := mint(t, iss, rec, identitytest.MintOptions{Issuer: "anyone", OmitKID: true, ExpiresAt: jwtNow.Add(-24 * time.Hour), IssuedAt: jwtNow.Add(-48 * time.Hour)})
	got, err := identity.DecodeAgentIdentityJWTUnverified(tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, *got); diff != "" {
		t.Errorf("record mismatch (-want +got):\n%s", diff)
	}

	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	full := map[string]any{
		"agent_runtime_id": "agent-123", "agent_private_key": testPrivateKey, "account_id": "a",
		"chatgpt_user_id": "u", "plan_type": "plus", "chatgpt_account_is_fedramp": false,
	}
	without := func(k string) map[string]any {
		m := map[string]any{}
		for kk, v := range full {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	if _, err := identity.DecodeAgentIdentityJWTUnverified("h." + b64(full) + ".s"); err != nil {
		t.Errorf("hand-built token without email rejected: %v", err)
	}
	bad := []struct{ name, token string }{
		{"two parts", "h." + b64(full)},
		{"four parts", "h." + b64(full) + ".s.x"},
		{"empty header", "." + b64(full) + ".s"},
		{"empty payload", "h..s"},
		{"empty signature", "h." + b64(full) + "."},
		{"empty", ""},
		{"padded payload", "h." + base64.URLEncoding.EncodeToString([]byte(`{"a":1}`)) + ".s"},
		{"not base64url", "h.***.s"},
		{"payload not JSON", "h." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".s"},
		{"missing agent_private_key", "h." + b64(without("agent_private_key")) + ".s"},
		{"missing account_id", "h." + b64(without("account_id")) + ".s"},
		{"missing fedramp", "h." + b64(without("chatgpt_account_is_fedramp")) + ".s"},
		{"fedramp not a bool", "h." + b64(func() map[string]any { m := without(""); m["chatgpt_account_is_fedramp"] = "yes"; return m }()) + ".s"},
	}
	for _, tt := range bad {
		_, err := identity.DecodeAgentIdentityJWTUnverified(tt.token)
		if !errors.Is(err, identity.ErrInvalidJWT) {
			t.Errorf("%s: err = %v, want ErrInvalidJWT", tt.name, err)
			continue
		}
		checkErrorClean(t, err, tt.token)
	}
}

func TestParseJWKS(t *testing.T) {
	iss, _, keys := testIssuers(t)
	if got := keys.KeyIDs(); len(got) != 1 || got[0] != iss.KID() {
		t.Errorf("KeyIDs = %v, want [%s]", got, iss.KID())
	}

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	jwk := func(k jose.JSONWebKey) json.RawMessage {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	set := func(keys ...json.RawMessage) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	good := jwk(jose.JSONWebKey{Key: iss.PublicKey(), KeyID: "good", Algorithm: "RS256", Use: "sig"})
	mixed := set(
		jwk(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct"}),
		jwk(jose.JSONWebKey{Key: iss.PublicKey(), KeyID: "enc", Use: "enc"}),
		jwk(jose.JSONWebKey{Key: iss.PublicKey(), KeyID: "ps256", Algorithm: "PS256"}),
		jwk(jose.JSONWebKey{Key: iss.PublicKey()}), // no kid
		jwk(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small"}),
		json.RawMessage(`{"kty":"FUTURE","kid":"future"}`),
		json.RawMessage(`{"kty":"RSA","kid":"broken","n":"!!","e":"AQAB"}`),
		good,
	)
	k, err := identity.ParseJWKS(mixed)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.KeyIDs(); len(got) != 1 || got[0] != "good" {
		t.Errorf("KeyIDs = %v, want only [good]", got)
	}

	for name, data := range map[string][]byte{
		"not JSON":        []byte("nope"),
		"no keys member":  []byte(`{}`),
		"empty keys":      []byte(`{"keys":[]}`),
		"only oct":        set(jwk(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct"})),
		"only small RSA":  set(jwk(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small"})),
		"keys not array":  []byte(`{"keys":{}}`),
		"array, not set":  []byte(`[` + string(good) + `]`),
		"JSON null value": []byte(`null`),
	} {
		if _, err := identity.ParseJWKS(data); !errors.Is(err, identity.ErrInvalidJWKS) {
			t.Errorf("%s: err = %v, want ErrInvalidJWKS", name, err)
		}
	}
}

func TestFetchJWKS(t *testing.T) {
	iss, _, _ := testIssuers(t)
	type seen struct{ method, path, accept string }
	reqs := make(chan seen, 8)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/backend-api/wham/agent-identities/jwks", func(w http.ResponseWriter, r *http.Request) {
		reqs <- seen{r.Method, r.URL.Path, r.Header.Get("Accept")}
		w.Header().Set("Content-Type", "application/json")
		w.Write(iss.JWKSJSON())
	})
	mux.HandleFunc("/garbage/agent-identities/jwks", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"keys":"x"}`)
	})
	mux.HandleFunc("/slow/agent-identities/jwks", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := &identity.Client{HTTPClient: srv.Client()}

	keys, err := c.FetchJWKS(context.Background(), identity.JWKSURL(srv.URL+"/backend-api/"))
	if err != nil {
		t.Fatal(err)
	}
	if got := <-reqs; got != (seen{http.MethodGet, "/backend-api/wham/agent-identities/jwks", "application/json"}) {
		t.Errorf("request = %+v", got)
	}
	tok := mint(t, iss, testRecord(), identitytest.MintOptions{})
	if _, err := identity.VerifyAgentIdentityJWT(tok, keys, jwtNow); err != nil {
		t.Errorf("token does not verify against the fetched JWKS: %v", err)
	}

	check := func(name string, err error, status int, temporary bool, is error) {
		t.Helper()
		var re *identity.RegistrationError
		if !errors.As(err, &re) {
			t.Fatalf("%s: error %v is not a *RegistrationError", name, err)
		}
		if re.Op != identity.OpJWKSFetch || re.StatusCode != status || re.Temporary() != temporary {
			t.Errorf("%s: Op=%q StatusCode=%d Temporary=%v, want %d %v", name, re.Op, re.StatusCode, re.Temporary(), status, temporary)
		}
		if is != nil && !errors.Is(err, is) {
			t.Errorf("%s: errors.Is(%v) = false: %v", name, is, err)
		}
	}
	_, err = c.FetchJWKS(context.Background(), srv.URL+"/missing/agent-identities/jwks")
	check("404", err, http.StatusNotFound, false, nil)
	_, err = c.FetchJWKS(context.Background(), srv.URL+"/garbage/agent-identities/jwks")
	check("garbage", err, 0, false, identity.ErrMalformedResponse)
	if !errors.Is(err, identity.ErrInvalidJWKS) {
		t.Errorf("garbage: not ErrInvalidJWKS: %v", err)
	}
	small := *c
	small.MaxResponseBytes = 16
	_, err = small.FetchJWKS(context.Background(), identity.JWKSURL(srv.URL+"/backend-api"))
	check("oversize", err, 0, false, identity.ErrResponseTooLarge)
	<-reqs
	slow := *c
	slow.JWKSTimeout = 50 * time.Millisecond
	_, err = slow.FetchJWKS(context.Background(), srv.URL+"/slow/agent-identities/jwks")
	check("timeout", err, 0, true, context.DeadlineExceeded)
}

package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Fuzz targets for every parser of untrusted input in this package. Each
// checks properties, not only the absence of panics. The seed corpora live
// in testdata/fuzz/<FuzzName>/; `go test` replays them, `.ci/fuzz.sh` (or
// `go test -run '^$' -fuzz '^FuzzName$' -fuzztime 30s ./identity`) explores.

// fuzzKey is the test-vector key (seed 0x07×32); fuzz targets use it as "the" verification key.
func fuzzKey(f *testing.F) *PrivateKey {
	f.Helper()
	k, err := ParsePrivateKey(vecPKCS8v2)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// leaks reports whether text repeats input. Inputs that could coincide with
// the fixed wording of a message (short ones, or ones with spaces, such as
// "is not valid base64 and more") are not judged; secrets have neither.
func leaks(text, input string) bool {
	return len(input) > 16 && !strings.ContainsRune(input, ' ') && strings.Contains(text, input)
}

func FuzzParsePrivateKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParsePrivateKey(in)
		if err != nil {
			if k != nil {
				t.Fatal("non-nil key with an error")
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error does not wrap ErrInvalidKey: %v", err)
			}
			if leaks(err.Error(), in) {
				t.Fatalf("error repeats the key material: %v", err)
			}
			return
		}
		stored := k.MarshalPrivateKey()
		back, err := ParsePrivateKey(stored)
		if err != nil {
			t.Fatalf("MarshalPrivateKey output does not parse: %v", err)
		}
		if !back.Equal(k) || !k.Equal(back) {
			t.Fatal("MarshalPrivateKey does not round-trip")
		}
		if again := back.MarshalPrivateKey(); again != stored {
			t.Fatal("MarshalPrivateKey is not a fixed point")
		}
		pub, err := ParseSSHPublicKey(k.SSHPublicKey())
		if err != nil {
			t.Fatalf("SSHPublicKey does not parse: %v", err)
		}
		if !bytes.Equal(pub, k.PublicKey()) {
			t.Fatal("SSHPublicKey names another key")
		}
		msg := []byte("agent-123:task-123:2026-04-23T00:00:00Z")
		if !ed25519.Verify(pub, msg, k.Sign(msg)) {
			t.Fatal("signature does not verify under the key's own public key")
		}
		for _, out := range fmtAll(k) {
			if leaks(out, in) || strings.Contains(out, stored) {
				t.Fatalf("formatted key shows its secret: %s", out)
			}
		}
	})
}

func FuzzParseAssertion(f *testing.F) {
	k := fuzzKey(f)
	pub := k.PublicKey()
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseAssertion(header)
		if err != nil {
			if a != (Assertion{}) {
				t.Fatal("non-zero assertion with an error")
			}
			if !errors.Is(err, ErrInvalidAssertion) {
				t.Fatalf("error does not wrap ErrInvalidAssertion: %v", err)
			}
			if leaks(err.Error(), strings.TrimPrefix(header, AssertionScheme+" ")) {
				t.Fatalf("error repeats the header: %v", err)
			}
			return
		}
		if a.AgentRuntimeID == "" || a.TaskID == "" {
			t.Fatalf("parsed an assertion with an empty id: %v", a)
		}
		for _, s := range []string{a.AgentRuntimeID, a.Signature.Reveal(), a.TaskID, a.Timestamp} {
			if !utf8.ValidString(s) {
				t.Fatalf("field %q is not valid UTF-8", s)
			}
		}
		if len(a.Signature.Reveal()) > 16 && !strings.Contains(a.AgentRuntimeID+a.TaskID+a.Timestamp, a.Signature.Reveal()) {
			for _, out := range []string{fmt.Sprint(a), fmt.Sprint(&a), fmt.Sprintf("%v %+v %#v", a, a, a), fmt.Sprintf("%s %q", []*Assertion{&a}, []*Assertion{&a})} {
				if strings.Contains(out, a.Signature.Reveal()) {
					t.Fatalf("formatted assertion shows its signature: %s", out)
				}
			}
		}
		verr := a.Verify(pub)
		if verr != nil {
			if !errors.Is(verr, ErrInvalidAssertion) {
				t.Fatalf("Verify error does not wrap ErrInvalidAssertion: %v", verr)
			}
			if leaks(verr.Error(), a.Signature.Reveal()) && !strings.Contains(a.Timestamp, a.Signature.Reveal()) {
				t.Fatalf("Verify error repeats the signature: %v", verr)
			}
			return
		}
		// A verified assertion is exactly what SignAssertion makes for its
		// fields: Ed25519 is deterministic and the signature's base64 is
		// canonical, so anything else would be a forgery or malleability.
		at, err := a.Time()
		if err != nil {
			t.Fatalf("verified assertion has a bad timestamp: %v", err)
		}
		resigned, err := SignAssertion(k, a.AgentRuntimeID, a.TaskID, at)
		if err != nil {
			t.Fatalf("SignAssertion of verified fields: %v", err)
		}
		b, err := ParseAssertion(resigned)
		if err != nil || b != a {
			t.Fatalf("re-signed assertion = %v, %v; want %v", b, err, a)
		}
	})
}

// Assertion timestamps are RFC 3339, whose years are 0000-9999.
var (
	minAssertionUnix = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	maxAssertionUnix = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
)

func FuzzAssertionRoundTrip(f *testing.F) {
	k := fuzzKey(f)
	pub := k.PublicKey()
	f.Fuzz(func(t *testing.T, runtimeID, taskID string, unix int64) {
		at := time.Unix(unix, 0)
		h, err := SignAssertion(k, runtimeID, taskID, at)
		switch {
		case !utf8.ValidString(runtimeID) || !utf8.ValidString(taskID):
			if err == nil || !errors.Is(err, ErrInvalidAssertion) {
				t.Fatalf("SignAssertion accepted invalid UTF-8: %v", err)
			}
			return
		case unix < minAssertionUnix || unix > maxAssertionUnix:
			if err == nil || !errors.Is(err, ErrInvalidAssertion) {
				t.Fatalf("SignAssertion at %d (year %d) = %v; want an error, the timestamp cannot be written in RFC 3339", unix, at.UTC().Year(), err)
			}
			return
		case err != nil:
			t.Fatalf("SignAssertion: %v", err)
		}
		if h2, _ := SignAssertion(k, runtimeID, taskID, at); h2 != h {
			t.Fatal("SignAssertion is not deterministic")
		}
		env, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(h, AssertionScheme+" "))
		if err != nil || !strings.HasPrefix(h, AssertionScheme+" ") {
			t.Fatalf("header is not %q + base64url: %v", AssertionScheme, err)
		}
		var std Assertion
		if err := json.Unmarshal(env, &std); err != nil {
			t.Fatalf("envelope is not JSON: %v", err)
		}
		if !strings.ContainsRune(runtimeID+taskID, '\\') {
			for _, goEscape := range []string{`\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`} {
				if bytes.Contains(env, []byte(goEscape)) {
					t.Fatalf("envelope uses Go's escape %s, not serde_json's", goEscape)
				}
			}
		}
		a, err := ParseAssertion(h)
		if runtimeID == "" || taskID == "" || len(h) > maxAssertionHeader {
			if err == nil {
				t.Fatal("ParseAssertion accepted an empty id or an oversized header")
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseAssertion(SignAssertion(...)): %v", err)
		}
		want := Assertion{AgentRuntimeID: runtimeID, Signature: std.Signature, TaskID: taskID, Timestamp: FormatTimestamp(at)}
		if a != want || std != want {
			t.Fatalf("round trip = %v / %v, want %v", a, std, want)
		}
		if err := a.Verify(pub); err != nil {
			t.Fatalf("Verify of a fresh assertion: %v", err)
		}
		if got, err := a.Time(); err != nil || !got.Equal(at) {
			t.Fatalf("Time = %v, %v; want %v", got, err, at.UTC())
		}
	})
}

// responseStub answers every request with 200 and body.
type responseStub struct{ body []byte }

func (s responseStub) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(s.body)),
		Request:    req,
	}, nil
}

// fuzzResponseCap is a small MaxResponseBytes so that fuzz inputs cross it.
const fuzzResponseCap = 512

func FuzzRegistrationResponse(f *testing.F) {
	k := fuzzKey(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := taskIDFromResponse(body, k)
		sentinels := []error{ErrMalformedResponse, ErrMissingTaskID, ErrSealedTaskID}
		if err != nil {
			if id != "" {
				t.Fatal("task id returned with an error")
			}
			if !isOneOf(err, sentinels) {
				t.Fatalf("error wraps no documented sentinel: %v", err)
			}
			// No message contains '{', so a body with one cannot match by chance.
			if (bytes.ContainsRune(body, '{') && len(body) > 16 && strings.Contains(err.Error(), string(body))) || len(err.Error()) > 200 {
				t.Fatalf("error quotes the response: %v", err)
			}
		} else if id == "" || !utf8.ValidString(id) {
			t.Fatalf("task id %q is empty or not valid UTF-8", id)
		}

		// The same body through the client, with a small size cap.
		c := &Client{
			HTTPClient:       &http.Client{Transport: responseStub{body}},
			AuthAPIBase:      "https://auth.invalid/api/accounts",
			Now:              func() time.Time { return vecTime },
			MaxResponseBytes: fuzzResponseCap,
		}
		got, cerr := c.RegisterTask(context.Background(), k, vecRuntime, "thread-1")
		if len(body) > fuzzResponseCap {
			if !errors.Is(cerr, ErrResponseTooLarge) {
				t.Fatalf("%d-byte body over a %d-byte cap: %q, %v", len(body), fuzzResponseCap, got, cerr)
			}
			return
		}
		if got != id || (cerr == nil) != (err == nil) {
			t.Fatalf("RegisterTask = %q, %v; parser = %q, %v", got, cerr, id, err)
		}
		if cerr != nil {
			var re *RegistrationError
			if !errors.As(cerr, &re) || re.Temporary() || !errors.Is(cerr, unwrapSentinel(err, sentinels)) {
				t.Fatalf("RegisterTask error %v is not a permanent *RegistrationError wrapping the parser's sentinel", cerr)
			}
		}
	})
}

func isOneOf(err error, targets []error) bool {
	return unwrapSentinel(err, targets) != nil
}

func unwrapSentinel(err error, targets []error) error {
	for _, s := range targets {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

// fuzzJWTKID is the kid of the fuzz JWKS; corpus tokens signed by other keys
// use it too, so that they reach signature verification.
const fuzzJWTKID = "fuzz-kid"

// fuzzJWTNow is the verification time; minted tokens are valid then.
var fuzzJWTNow = time.Date(2026, 4, 23, 12, 0, 0, 0, time.UTC)

// fuzzJWTClaims are the claims of a valid Agent Identity JWT at fuzzJWTNow.
func fuzzJWTClaims() map[string]any {
	return map[string]any{
		"iss":                        JWTIssuer,
		"aud":                        JWTAudience,
		"iat":                        fuzzJWTNow.Add(-time.Minute).Unix(),
		"exp":                        fuzzJWTNow.Add(time.Hour).Unix(),
		"agent_runtime_id":           vecRuntime,
		"agent_private_key":          vecPKCS8v2,
		"account_id":                 "acct-1",
		"chatgpt_user_id":            "user-1",
		"email":                      "dev@example.com",
		"plan_type":                  "pro",
		"chatgpt_account_is_fedramp": true,
	}
}

func FuzzJWT(f *testing.F) {
	// One RSA key per fuzz process: generating it per input would dominate.
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &priv.PublicKey, KeyID: fuzzJWTKID, Algorithm: string(jose.RS256), Use: "sig",
	}}})
	if err != nil {
		f.Fatal(err)
	}
	keys, err := ParseJWKS(set)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: fuzzJWTKID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		f.Fatal(err)
	}
	mint := func(edit func(map[string]any)) string {
		c := fuzzJWTClaims()
		if edit != nil {
			edit(c)
		}
		tok, err := jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	// Tokens signed by this process's key cannot live in testdata.
	valid := mint(nil)
	f.Add(valid)
	f.Add(mint(func(c map[string]any) { delete(c, "email") }))
	f.Add(mint(func(c map[string]any) { c["exp"] = fuzzJWTNow.Add(-time.Hour).Unix() }))
	f.Add(mint(func(c map[string]any) { c["aud"] = []string{"other", JWTAudience} }))
	f.Add(mint(func(c map[string]any) { c["agent_private_key"] = "not-a-key" }))
	parts := strings.Split(valid, ".")
	f.Add(parts[0] + "." + parts[1] + "." + parts[2] + "=")
	f.Add(parts[0] + "." + parts[1] + ".")

	f.Fuzz(func(t *testing.T, token string) {
		dec, derr := DecodeAgentIdentityJWTUnverified(token)
		if derr != nil {
			checkJWTError(t, derr, token)
		} else if err := dec.Validate(); err != nil {
			t.Fatalf("Decode returned a record that does not validate: %v", err)
		}

		rec, err := VerifyAgentIdentityJWT(token, keys, fuzzJWTNow)
		if err != nil {
			if rec != nil {
				t.Fatal("record returned with an error")
			}
			checkJWTError(t, err, token)
			return
		}
		// Accepted: go-jose must agree that the key signed it with RS256,
		// and its claims must be the ones Verify promises to check.
		jws, perr := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
		if perr != nil {
			t.Fatalf("Verify accepted a token go-jose cannot parse: %v", perr)
		}
		payload, verr := jws.Verify(&priv.PublicKey)
		if verr != nil {
			t.Fatalf("Verify accepted a token the key did not sign: %v", verr)
		}
		if jws.Signatures[0].Header.Algorithm != string(jose.RS256) || jws.Signatures[0].Header.KeyID != fuzzJWTKID {
			t.Fatalf("accepted header %+v", jws.Signatures[0].Header)
		}
		var claims jwt.Claims
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatalf("accepted claims do not decode: %v", err)
		}
		if claims.Issuer != JWTIssuer || !claims.Audience.Contains(JWTAudience) || claims.Expiry == nil ||
			claims.Expiry.Time().Add(JWTLeeway).Before(fuzzJWTNow) {
			t.Fatalf("accepted claims iss=%q aud=%v exp=%v", claims.Issuer, claims.Audience, claims.Expiry)
		}
		if err := rec.Validate(); err != nil {
			t.Fatalf("Verify returned a record that does not validate: %v", err)
		}
		if derr != nil || *dec != *rec {
			t.Fatalf("Decode disagrees with Verify: %v, %v", dec, derr)
		}
	})
}

// checkJWTError asserts the documented error contract of the JWT functions.
func checkJWTError(t *testing.T, err error, token string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidJWT) {
		t.Fatalf("error does not wrap ErrInvalidJWT: %v", err)
	}
	msg := err.Error()
	// No message contains '.', so a token with one cannot match by chance.
	if len(token) > 16 && strings.Contains(token, ".") && strings.Contains(msg, token) {
		t.Fatalf("error repeats the token: %v", err)
	}
	if strings.Contains(msg, vecPKCS8v2) {
		t.Fatalf("error shows the private key: %v", err)
	}
}

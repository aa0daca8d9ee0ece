package federation

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// platform is a fake OIDC issuer minting subject tokens into a file.
type platform struct {
	key  ed25519.PrivateKey
	file string
}

func newPlatform(t *testing.T, srv *identitytest.Server) *platform {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddFederationRule(identitytest.FederationRule{ID: "fdrl_test", Issuer: "https://oidc.platform.test", Audience: "openai",
		Key: pub, Login: identitytest.Login{AccountID: "acct-wif", UserID: "user-wif"}}); err != nil {
		t.Fatal(err)
	}
	return &platform{key: key, file: filepath.Join(t.TempDir(), "token")}
}

// mint writes a subject token expiring at exp, signed by key.
func (p *platform) mint(t *testing.T, key ed25519.PrivateKey, exp time.Time) {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "https://oidc.platform.test", Audience: jwt.Audience{"openai"},
		Subject: "system:serviceaccount:ci", Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(time.Now())}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.file, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wifSource(t *testing.T, srv *identitytest.Server, p *platform) *Source {
	t.Helper()
	src, err := New(Config{Issuer: srv.URL(),
		Getenv: env("OPENAI_FEDERATION_RULE_ID", "fdrl_test", "OPENAI_IDENTITY_TOKEN_FILE", p.file)})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// Concurrent callers share one exchange; the token is reused until the
// refresh-ahead point, then re-exchanged with the file read again.
func TestWorkloadIdentitySingleFlightAndRefreshAhead(t *testing.T) {
	srv := newServer(t, identitytest.Options{TokenLifetime: 10 * time.Minute})
	p := newPlatform(t, srv)
	p.mint(t, p.key, time.Now().Add(time.Hour))
	src := wifSource(t, srv, p)
	var offset atomic.Int64
	src.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }

	var wg sync.WaitGroup
	toks := make([]*credentials.Token, 16)
	errs := make([]error, 16)
	for i := range toks {
		wg.Add(1)
		go func() { defer wg.Done(); toks[i], errs[i] = src.Token(testCtx(t)) }()
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i].AccessToken != toks[0].AccessToken {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if n := srv.FederationExchanges(); n != 1 {
		t.Fatalf("exchanges = %d, want 1 for 16 concurrent callers", n)
	}
	if toks[0].AccountID != "acct-wif" || toks[0].UserID != "user-wif" {
		t.Errorf("token routing = %q %q", toks[0].AccountID, toks[0].UserID)
	}
	req, _ := http.NewRequest("GET", srv.URL()+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+toks[0].AccessToken.Reveal())
	req.Header.Set("ChatGPT-Account-ID", toks[0].AccountID)
	c := &http.Client{}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	if resp.StatusCode != 200 {
		t.Fatalf("the exchanged token is refused at a protected resource: %d", resp.StatusCode)
	}
	offset.Store(int64(7 * time.Minute)) // before the 8-minute refresh point
	if _, err := src.Token(testCtx(t)); err != nil || srv.FederationExchanges() != 1 {
		t.Fatalf("token re-exchanged before its refresh point: %v, %d", err, srv.FederationExchanges())
	}
	offset.Store(int64(8*time.Minute + time.Second))
	p.mint(t, p.key, time.Now().Add(time.Hour)) // the platform rotated the file
	t2, err := src.Token(testCtx(t))
	if err != nil || srv.FederationExchanges() != 2 || t2.AccessToken == toks[0].AccessToken {
		t.Fatalf("refresh ahead: %v, exchanges %d", err, srv.FederationExchanges())
	}
}

// The file is read for every exchange: a rotated file with a token the
// server cannot verify fails the forced refresh; a failed refresh ahead
// keeps serving the current token until the mandatory point.
func TestWorkloadIdentityRereadsFileAndFallsBack(t *testing.T) {
	srv := newServer(t, identitytest.Options{TokenLifetime: 10 * time.Minute})
	p := newPlatform(t, srv)
	p.mint(t, p.key, time.Now().Add(time.Hour))
	src := wifSource(t, srv, p)
	var offset atomic.Int64
	src.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	first, err := src.Token(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	p.mint(t, other, time.Now().Add(time.Hour))
	_, err = src.Refresh(testCtx(t), first)
	if err == nil || !strings.Contains(err.Error(), "invalid_assertion_signature") {
		t.Fatalf("refresh with a token of another key = %v", err)
	}
	offset.Store(int64(9 * time.Minute)) // past refresh ahead, before the 9m30s mandatory point
	got, err := src.Token(testCtx(t))
	if err != nil || got.AccessToken != first.AccessToken {
		t.Fatalf("fallback to the current token: %v", err)
	}
	offset.Store(int64(9*time.Minute + 31*time.Second))
	if _, err := src.Token(testCtx(t)); err == nil {
		t.Fatal("a token past its mandatory refresh point was served")
	}
	p.mint(t, p.key, time.Now().Add(-time.Minute)) // expired subject token
	if _, err = src.Token(testCtx(t)); err == nil || !strings.Contains(err.Error(), "invalid_assertion_expiry") {
		t.Fatalf("expired subject token: %v", err)
	}
	if strings.Contains(err.Error(), first.AccessToken.Reveal()) {
		t.Error("an error carries the token")
	}
}

package identity_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// The JWKS fetch names agentauth and its version, and sends the
// originator only when the Client has one.
func TestJWKSFetchSaysWhoWeAre(t *testing.T) {
	iss, err := identitytest.NewJWTIssuer()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(iss.JWKSJSON())
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []*identity.Client{{HTTPClient: srv.Client()}, {HTTPClient: srv.Client(), Originator: "codex_cli_rs"}} {
		if _, err := c.FetchJWKS(ctx, srv.URL+"/agent-identities/jwks"); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("%d fetches seen", len(seen))
	}
	for i, want := range []string{"", "codex_cli_rs"} {
		h := seen[i]
		if h.Get("User-Agent") != identity.DefaultUserAgent || h.Get("User-Agent") != "agentauth/devel" {
			t.Errorf("fetch %d User-Agent %q", i, h.Get("User-Agent"))
		}
		if h.Get("originator") != want || (want == "" && h.Values("originator") != nil) {
			t.Errorf("fetch %d originator %v, want %q", i, h.Values("originator"), want)
		}
	}
}

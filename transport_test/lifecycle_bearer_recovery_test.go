package transport_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/testhooks"
	"github.com/agentauth/agentauth/transport"
)

// A 401 to a ChatGPT Bearer request: the first recovery reloads auth.json
// (no token request) and replays; if that is rejected too, the second
// refreshes over the network and replays once more; after that the 401
// is returned.
func TestBearer401ReloadsThenRefreshes(t *testing.T) {
	tests := []struct {
		name          string
		rejections    int // 401s the resource answers before accepting
		wantStatus    int
		wantRequests  int64 // token requests
		wantResources int   // resource requests the server saw
	}{
		{"reload suffices", 1, 200, 0, 2},
		{"refresh second", 2, 200, 1, 3},
		{"then the 401", 3, 401, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock(wholeSecondNow())
			srv := newIdentityServer(t, identitytest.Options{Now: clock.Now})
			login, err := srv.IssueLogin(identitytest.Login{AccountID: uniqueAccount("r401"), UserID: "u"})
			if err != nil {
				t.Fatal(err)
			}
			home := t.TempDir()
			login.WriteAuthJSON(home, clock.Now())
			base := newHTTPBase(t)
			src, err := credentials.NewRefreshingTokenSource(credentials.RefreshOptions{
				Coordinator: credentials.NewAuthFileCoordinator(home), TokenURL: srv.TokenURL(),
				HTTPClient: &http.Client{Transport: base}, Getenv: func(string) string { return "" }, Now: clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(src.Close)
			rt := newEnv(t, envOptions{srv: srv, base: base, plain: true, credential: transport.ChatGPT(src),
				options: func(o *transport.Options) { testhooks.Of(o).Now = clock.Now }}).rt
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if code, _, err := roundTripEcho(ctx, rt, srv.URL()+"/v1/x", ""); err != nil || code != 200 {
				t.Fatalf("warm-up: %d %v", code, err)
			}
			// The Codex CLI refreshed meanwhile.
			codex, _ := srv.IssueLogin(identitytest.Login{AccountID: login.AccountID, UserID: "u"})
			codex.WriteAuthJSON(home, clock.Now())
			srv.InjectFault(identitytest.RouteResource, identitytest.Fault{Status: 401, Body: []byte(`{"error":"token_revoked"}`), Times: tt.rejections})
			srv.ResetStats()

			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/v1/x", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if tt.wantStatus == 401 && string(body) != "{\"error\":\"token_revoked\"}\n" && string(body) != `{"error":"token_revoked"}` {
				t.Errorf("the returned 401 lost its body: %q", body)
			}
			if n := src.TokenRequests(); n != tt.wantRequests {
				t.Errorf("token requests = %d, want %d", n, tt.wantRequests)
			}
			if n := srv.Stats().FaultsServed + srv.Stats().RequestsByMode[identitytest.ModeBearer]; n != tt.wantResources {
				t.Errorf("resource requests = %d, want %d", n, tt.wantResources)
			}
		})
	}
}

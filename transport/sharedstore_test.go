package transport

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

type fixedSource struct{ tok credentials.Token }

func (s *fixedSource) Token(context.Context) (*credentials.Token, error) { return &s.tok, nil }

// The process-wide table of identities shared by transports without an
// IdentityStore holds them weakly: once the transports are gone, their
// identities (private keys included) are collected and the table shrinks.
func TestSharedIdentitiesLetUnusedOnesGo(t *testing.T) {
	const n = 300
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tok-shared-gc-%d", i)
	}
	srv, err := identitytest.NewServer(identitytest.Options{AccessTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	before := sharedCount()
	live := make([]*Transport, 0, n)
	func() {
		for i := range n {
			rt, err := newTransport(base, config{
				TokenSource: &fixedSource{credentials.Token{AccessToken: identity.Secret(tokens[i]), AccountID: fmt.Sprintf("acct-gc-%d", i), UserID: "u"}},
				Flag:        featureflag.New(true), ChatGPTBaseURL: srv.URL(), AuthAPIBaseURL: srv.URL(),
				AllowInsecureHTTP: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := rt.provisioner.agent(context.Background(), &rt.provisioner.t.bearer.src.(*fixedSource).tok); err != nil {
				t.Fatal(err)
			}
			live = append(live, rt)
		}
	}()
	if got := sharedCount(); got < before+n {
		t.Fatalf("%d shared identities while the transports live, want at least %d", got, before+n)
	}
	runtime.KeepAlive(live)
	deadline := time.Now().Add(10 * time.Second)
	for sharedCount() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := sharedCount(); got > before {
		t.Fatalf("%d shared identities left after the transports went, want %d", got, before)
	}
}

package transport_test

// Codex homes on disk: auth.json files written as the Codex CLI writes
// them, for the tests that detect a credential or keep an identity there.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// writeAuthFile writes the auth.json at path through the file store, as
// edit fills it.
func writeAuthFile(t *testing.T, path string, edit func(*credentials.AuthFile)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := credentials.NewFileStore(path).Update(ctx, func(a *credentials.AuthFile) error {
		edit(a)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeLoginFile writes a ChatGPT login's auth.json in a new Codex home
// and returns its path.
func writeLoginFile(t *testing.T, token, account string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), credentials.AuthFileName)
	writeAuthFile(t, path, func(a *credentials.AuthFile) {
		a.AuthMode = credentials.AuthModeChatGPT
		a.Tokens = &credentials.Tokens{AccessToken: token, AccountID: account}
	})
	return path
}

// envVars is an environment for Options.Getenv.
type envVars map[string]string

func (e envVars) get(k string) string { return e[k] }

// chatGPTHome is a Codex home holding a ChatGPT login srv issued for
// acct-one/user-one.
func chatGPTHome(t *testing.T, srv *identitytest.Server) (string, *identitytest.Login) {
	t.Helper()
	login, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-one", UserID: "user-one"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := login.WriteAuthJSON(home, time.Now()); err != nil {
		t.Fatal(err)
	}
	return home, login
}

// fromHome is an env whose credential, flag and identity store New finds
// in home and getenv, as a caller's zero Options do, against srv over base.
func fromHome(srv *identitytest.Server, base http.RoundTripper, home string, getenv func(string) string) envOptions {
	return envOptions{srv: srv, base: base, plain: true, codexHome: home, getenv: getenv, detect: true, flagFromHome: true, defaultStore: true}
}

// getEcho sends GET url through rt and returns the server's echo, failing
// the test unless the answer is a 200.
func getEcho(t *testing.T, rt http.RoundTripper, url string) identitytest.Echo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var e identitytest.Echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

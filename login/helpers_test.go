package login

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// testWait bounds every wait in these tests; it is a hang guard, not a
// timing assertion.
const testWait = 30 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx
}

func newServer(t *testing.T, opts identitytest.Options) *identitytest.Server {
	t.Helper()
	srv, err := identitytest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// env is a Getenv over a fixed map, so no test reads the real environment.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// outWriter collects what a flow prints and signals each write.
type outWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func newOut() *outWriter { return &outWriter{wrote: make(chan struct{}, 64)} }

func (w *outWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *outWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// await waits until re matches the output and returns its first group.
func (w *outWriter) await(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(testWait)
	for {
		if m := re.FindStringSubmatch(w.String()); m != nil {
			return m[1]
		}
		select {
		case <-w.wrote:
		case <-deadline:
			t.Fatalf("output never matched %s: %q", re, w.String())
		}
	}
}

// codexAuthDotJSON is an independent copy of the Codex CLI's AuthDotJson
// (codex-rs/login/src/auth/storage.rs) and its TokenData, decoded with no
// unknown member allowed.
type codexAuthDotJSON struct {
	AuthMode     *string `json:"auth_mode"`
	OpenAIAPIKey *string `json:"OPENAI_API_KEY"`
	Tokens       *struct {
		IDToken      string  `json:"id_token"`
		AccessToken  string  `json:"access_token"`
		RefreshToken string  `json:"refresh_token"`
		AccountID    *string `json:"account_id"`
	} `json:"tokens"`
	LastRefresh   *time.Time      `json:"last_refresh"`
	AgentIdentity json.RawMessage `json:"agent_identity"`
}

// readCodexAuth decodes home/auth.json as Codex would, and checks it
// loads through credentials.Load as a ChatGPT login of account.
func readCodexAuth(t *testing.T, home, account string) codexAuthDotJSON {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(home, "auth.json"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(home, "auth.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("auth.json mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	var a codexAuthDotJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("auth.json is not Codex's AuthDotJson: %v", err)
	}
	if a.AuthMode == nil || *a.AuthMode != "chatgpt" || a.Tokens == nil || a.LastRefresh == nil {
		t.Fatalf("auth.json lacks Codex's login members: %s", redactJSON(data))
	}
	if a.Tokens.AccountID == nil || *a.Tokens.AccountID != account {
		t.Errorf("tokens.account_id = %v, want %q", a.Tokens.AccountID, account)
	}
	if authClaims(a.Tokens.IDToken) == nil {
		t.Error("tokens.id_token is not a JWT Codex can parse")
	}
	c, err := credentials.Load(credentials.LoadOptions{CodexHome: home, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != credentials.KindChatGPT || c.ChatGPT.AccountID != account || c.ChatGPT.AccessToken != a.Tokens.AccessToken {
		t.Fatalf("credentials.Load = %v", c)
	}
	return a
}

// redactJSON shows a document's member names only.
func redactJSON(data []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return "<not JSON>"
	}
	names := make([]string, 0, len(top))
	for k := range top {
		names = append(names, k)
	}
	return strings.Join(names, ",")
}

func readFileIfAny(home string) ([]byte, error) { return os.ReadFile(filepath.Join(home, "auth.json")) }

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx, cancel
}

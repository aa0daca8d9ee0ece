package transport_test

// A Codex home without a usable credential: New says why with a typed
// error (nothing found, keyring storage, a Bedrock login), and with
// AllowNoCredential a Bedrock login passes requests through.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

func TestNewTransportExplainsMissingCredential(t *testing.T) {
	home := t.TempDir()
	o := envOptions{production: true, plain: true, codexHome: home, getenv: envVars{}.get, detect: true}
	_, err := tryEnv(t, o)
	if !errors.Is(err, transport.ErrNoCredential) {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("cli_auth_credentials_store = \"keyring\"\n"), 0o600)
	_, err = tryEnv(t, o)
	if !errors.Is(err, credentials.ErrKeyringStorage) {
		t.Fatalf("keyring storage: %v", err)
	}
}

// A Codex Bedrock login cannot call the ChatGPT backend: Detect says so
// with a typed error, or, with AllowNoCredential, finds no credential, so
// that New builds a transport that passes requests through.
func TestBedrockLoginIsNotAChatGPTCredential(t *testing.T) {
	home := t.TempDir()
	doc := `{"auth_mode":"bedrockApiKey","OPENAI_API_KEY":null,"bedrock_api_key":{"api_key":"SECRET-bedrock","region":"us-east-1"}}`
	if err := os.WriteFile(filepath.Join(home, credentials.AuthFileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := transport.Detect(ctx, transport.Options{CodexHome: home, Getenv: envVars{}.get})
	if !errors.Is(err, transport.ErrNotChatGPTLogin) || errors.Is(err, credentials.ErrUnknownAuthMode) {
		t.Fatalf("Detect = %v, want ErrNotChatGPTLogin", err)
	}
	cred, err := transport.Detect(ctx, transport.Options{CodexHome: home, Getenv: envVars{}.get, AllowNoCredential: true})
	if err != nil {
		t.Fatalf("AllowNoCredential: %v", err)
	}
	if fmt.Sprint(cred) != "no credential" {
		t.Fatalf("Detect = %q, want no credential (pass-through)", cred)
	}
}

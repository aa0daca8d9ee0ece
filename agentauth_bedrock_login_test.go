package agentauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentauth/agentauth"
	"github.com/agentauth/agentauth/internal/credentials"
)

// A Codex Bedrock login cannot call the ChatGPT backend: Load says so with
// a typed error, or, with AllowNoCredential, builds a transport that
// passes requests through.
func TestBedrockLoginIsNotAChatGPTCredential(t *testing.T) {
	home := t.TempDir()
	doc := `{"auth_mode":"bedrockApiKey","OPENAI_API_KEY":null,"bedrock_api_key":{"api_key":"SECRET-bedrock","region":"us-east-1"}}`
	if err := os.WriteFile(filepath.Join(home, credentials.AuthFileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := agentauth.Load(ctx, agentauth.Options{CodexHome: home, Getenv: env{}.get})
	if !errors.Is(err, credentials.ErrNotChatGPTLogin) || errors.Is(err, credentials.ErrUnknownAuthMode) {
		t.Fatalf("Load = %v, want ErrNotChatGPTLogin", err)
	}
	s, err := agentauth.Load(ctx, agentauth.Options{CodexHome: home, Getenv: env{}.get, AllowNoCredential: true})
	if err != nil {
		t.Fatalf("AllowNoCredential: %v", err)
	}
	defer s.Close()
	if s.Credentials.Kind != credentials.KindNone {
		t.Fatalf("kind = %v, want none (pass-through)", s.Credentials.Kind)
	}
}

package credentials_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentauth/agentauth/internal/credentials"
)

// A ChatGPT login whose id token says the account is a FedRAMP account.
func ExampleLoad() {
	home, _ := os.MkdirTemp("", "codex-home")
	defer os.RemoveAll(home)

	claims := `{"https://api.openai.com/auth":{"chatgpt_account_id":"acct-123","chatgpt_account_is_fedramp":true}}`
	idToken := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig"
	authJSON := `{"auth_mode": "chatgpt", "tokens": {"id_token": "` + idToken + `", "access_token": "secret-access-token", "refresh_token": "secret-refresh-token"}}`
	os.WriteFile(filepath.Join(home, "auth.json"), []byte(authJSON), 0o600)

	env := map[string]string{} // a fake environment: nothing set
	creds, err := credentials.Load(credentials.LoadOptions{
		CodexHome: home,
		Getenv:    func(k string) string { return env[k] },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(creds.Kind, creds.Routing().AccountID, creds.Routing().FedRAMP)
	fmt.Println(creds.ChatGPT) // tokens are redacted

	env["CODEX_API_KEY"] = "sk-from-env" // the environment API key wins
	creds, _ = credentials.Load(credentials.LoadOptions{CodexHome: home, Getenv: func(k string) string { return env[k] }})
	fmt.Println(creds.Kind, creds.Source)
	// Output:
	// chatgpt acct-123 true
	// credentials.ChatGPTLogin{AccountID:"acct-123" FedRAMP:true ExternallyManaged:false AccessToken:[REDACTED] RefreshToken:[REDACTED] IDToken:[REDACTED]}
	// apikey env CODEX_API_KEY
}

// Update rewrites auth.json atomically under a lock and keeps members it
// does not know.
func ExampleFileStore_Update() {
	home, _ := os.MkdirTemp("", "codex-home")
	defer os.RemoveAll(home)
	path := filepath.Join(home, "auth.json")
	os.WriteFile(path, []byte(`{"OPENAI_API_KEY": "sk-old", "written_by": "another tool"}`), 0o600)

	store := credentials.NewFileStore(path)
	err := store.Update(context.Background(), func(af *credentials.AuthFile) error {
		key := "sk-new"
		af.AuthMode = credentials.AuthModeAPIKey
		af.OpenAIAPIKey = &key
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ := os.ReadFile(path)
	fmt.Print(string(data))
	// Output:
	// {
	//   "auth_mode": "apikey",
	//   "OPENAI_API_KEY": "sk-new",
	//   "written_by": "another tool"
	// }
}

// The constructors of a credential given in code, each ready for
// transport.Config.Credentials: an API key, a ChatGPT access token that
// nothing refreshes (with its account and FedRAMP bit), an Agent Identity
// record as `agentauth keygen` prints it. Every one prints redacted.
func ExampleAPIKey() {
	key := credentials.APIKey("sk-example")
	login := credentials.ChatGPTToken("eyJ-access-token", "acct-123", false)
	rec, err := credentials.AgentIdentityRecord([]byte(`{
	  "agent_runtime_id": "rt-example",
	  "agent_private_key": "MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHgSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(key.Kind, key)
	fmt.Println(login.Kind, login.Routing().AccountID)
	fmt.Println(rec.Kind, rec.AgentIdentity.AgentRuntimeID)
	// Output:
	// apikey credentials.Credentials{Kind:apikey Source:"credentials.APIKey" APIKey:[REDACTED]}
	// chatgpt acct-123
	// agentIdentity rt-example
}

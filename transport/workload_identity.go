package transport

import (
	"errors"
	"net/http"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/federation"
)

// sourceWorkloadIdentity is the Source of a login made by workload
// identity federation.
const sourceWorkloadIdentity = "workload identity (OPENAI_IDENTITY_TOKEN_FILE, OPENAI_FEDERATION_RULE_ID)"

// workloadIdentity selects workload identity federation as Codex does:
// either of OPENAI_FEDERATION_RULE_ID and OPENAI_IDENTITY_TOKEN_FILE in the
// environment selects it, ahead of every other credential, and then a
// partial configuration is an error rather than a fall back. It returns
// nil, nil, nil when neither is set.
func workloadIdentity(getenv func(string) string, client *http.Client) (*credentials.Credentials, credentials.TokenSource, error) {
	src, err := federation.New(federation.Config{Getenv: getenv, Client: client})
	if errors.Is(err, federation.ErrNotConfigured) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return &credentials.Credentials{Kind: credentials.KindChatGPT, Source: sourceWorkloadIdentity}, src, nil
}

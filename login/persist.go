package login

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

// saveLogin writes a ChatGPT login to auth.json as Codex does after a
// sign-in (auth_mode "chatgpt", OPENAI_API_KEY, tokens with the account id
// of the id token, last_refresh), under agentauth's own lock. The
// credentials that belonged to the previous login (its tokens, an agent
// identity provisioned from it, a personal access token) are replaced, as
// Codex replaces the file; members agentauth does not model are kept. The
// previous login's token is then revoked, best effort, when the new login
// does not reuse it.
func (r *resolved) saveLogin(ctx context.Context, t *tokens, apiKey string) error {
	if authClaims(t.IDToken) == nil {
		return errors.New("login: the id_token is not a JWT with the https://api.openai.com/auth claim")
	}
	accountID := claimString(authClaims(t.IDToken), "chatgpt_account_id")
	var previous *credentials.AuthFile
	store := credentials.NewFileStore(r.authFile())
	err := store.Update(ctx, func(af *credentials.AuthFile) error {
		if err := ctx.Err(); err != nil {
			return err // the login ended while waiting for the lock: write nothing
		}
		prev := *af
		if af.Tokens != nil {
			tk := *af.Tokens
			prev.Tokens = &tk
		}
		previous = &prev
		now := time.Now().UTC()
		af.AuthMode = credentials.AuthModeChatGPT
		af.OpenAIAPIKey = nil
		if apiKey != "" {
			k := apiKey
			af.OpenAIAPIKey = &k
		}
		af.Tokens = &credentials.Tokens{IDToken: t.IDToken, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, AccountID: accountID}
		af.LastRefresh = &now
		af.AgentIdentity = ""
		af.AgentIdentityRecord = nil
		af.AgentIdentityTaskID = ""
		af.PersonalAccessToken = ""
		return nil
	})
	if err != nil {
		return fmt.Errorf("login: signed in, but saving %s failed: %w", r.authFile(), err)
	}
	if tok, hint := revocable(previous); tok != "" && tok != t.RefreshToken && tok != t.AccessToken {
		_ = r.revoke(ctx, tok, hint, previous.Tokens.IDToken) // best effort, as Codex does
	}
	return nil
}

package transport_test

// Codex homes on disk: auth.json files written as the Codex CLI writes
// them, for the tests that detect a credential or keep an identity there.

import (
	"context"
	"testing"

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

// serve --issue-login: the ChatGPT login serve writes as a Codex home's auth.json.

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// checkIssueLogin rejects login flags without --issue-login and login
// fields that cannot go into a token.
func checkIssueLogin(set map[string]bool, dir string, c identitytest.Login) error {
	if !set["issue-login"] {
		for _, n := range []string{"account-id", "user-id", "email", "plan-type"} {
			if set[n] {
				return fmt.Errorf("--%s goes with --issue-login", n)
			}
		}
		return nil
	}
	if dir == "" {
		return errors.New("--issue-login needs a directory")
	}
	for _, f := range []struct{ name, v string }{{"--account-id", c.AccountID}, {"--user-id", c.UserID}, {"--plan-type", c.PlanType}} {
		if err := validateID(f.name, f.v); err != nil {
			return err
		}
	}
	if c.Email != "" {
		return validateID("--email", c.Email)
	}
	return nil
}

// writeIssuedLogin issues a login at srv and writes it to dir/auth.json,
// refusing to replace an auth.json that is already there: dir may be a
// real Codex home, and its login is not ours to destroy.
func writeIssuedLogin(srv *identitytest.Server, dir string, c identitytest.Login) (string, error) {
	path := filepath.Join(dir, credentials.AuthFileName)
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("--issue-login: %s already exists; remove it or choose another directory (serve does not overwrite a login)", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--issue-login: %w", err)
	}
	l, err := srv.IssueLogin(c)
	if err != nil {
		return "", fmt.Errorf("--issue-login: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("--issue-login: %w", err)
	}
	// O_EXCL: a file that appeared since the check is not replaced either.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("--issue-login: %w", err)
	}
	_, werr := f.Write(l.AuthJSON(time.Now()))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return "", fmt.Errorf("--issue-login: writing %s failed", path)
	}
	return path, nil
}

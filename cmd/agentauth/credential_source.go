package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
)

// codexHomeDefault is how the Codex home was chosen when neither
// --codex-home nor $CODEX_HOME names it.
const codexHomeDefault = "the default ~/.codex"

// checkCodexHome says how do's Codex home was chosen (--codex-home,
// $CODEX_HOME or the default) and refuses a named one that is not a
// directory: "log in with codex login" would send the user to the wrong
// fix for a typo in a path.
func checkCodexHome(flagSet bool, flagValue string) (how string, err error) {
	dir, how := flagValue, "--codex-home"
	if !flagSet {
		dir, how = os.Getenv("CODEX_HOME"), "$CODEX_HOME"
		if dir == "" {
			return codexHomeDefault, nil
		}
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s %q: no such directory", how, truncate(dir))
	case err != nil:
		return "", fmt.Errorf("%s %q: %s", how, truncate(dir), rootCause(errors.Unwrap(err)))
	case !fi.IsDir():
		return "", fmt.Errorf("%s %q is not a directory", how, truncate(dir))
	}
	return how, nil
}

// describeCredential says which credential a run uses and where it came
// from, never its value: "the ChatGPT login from /x/auth.json
// (--codex-home)", "the API key from env CODEX_API_KEY".
func describeCredential(c *credentials.Credentials, homeHow string) string {
	if c == nil {
		return "using no credential"
	}
	what := "a credential"
	switch c.Kind {
	case credentials.KindAPIKey:
		what = "the API key"
	case credentials.KindChatGPT:
		what = "the ChatGPT login"
		switch {
		case c.PersonalAccessToken:
			what = "the personal access token"
		case c.ChatGPT != nil && c.ChatGPT.ExternallyManaged:
			what = "the ChatGPT tokens an outside host manages"
		}
	case credentials.KindAgentIdentity:
		what = "the Agent Identity"
	}
	where := c.Source
	if where == "" {
		where = "an unnamed source"
	}
	if homeHow != "" && !strings.HasPrefix(where, "env ") {
		where += " (" + homeHow + ")"
	}
	return "using " + what + " from " + where
}

// describeLoadError words a failure to read the Codex home for the person
// who ran do: the library's advice names its options, do's names its
// flags, and a broken auth.json or config.toml gets its remedy.
func describeLoadError(err error) (msg string) {
	defer func() {
		if recover() != nil {
			msg = errText(err)
		}
	}()
	if isNil(err) {
		return "reading the Codex home failed: " + errUnknown
	}
	if what, ok := describeRefresh(err); ok {
		return what
	}
	if errors.Is(err, transport.ErrNoCredential) {
		return strings.TrimPrefix(errText(err), "agentauth: ") + "; or pass --api-key, --access-token or --record"
	}
	msg = strings.ReplaceAll(errText(err), "Options.InsecureSkipJWTVerify skips verification", "--insecure-unverified-jwt skips verification")
	var le *credentials.LoadError
	if errors.Is(err, credentials.ErrInvalidAuthFile) && errors.As(err, &le) && le != nil && le.Path != "" {
		if fi, serr := os.Stat(le.Path); serr == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			return fmt.Sprintf("%s is empty: log in again with 'codex login' (it writes the file), or delete it to use $%s or $%s",
				le.Path, credentials.EnvCodexAPIKey, credentials.EnvOpenAIAPIKey)
		}
		return msg + "; fix it, or log in again with 'codex login' (it rewrites the file)"
	}
	if strings.HasPrefix(msg, "featureflag: ") && strings.Contains(msg, "config.toml") {
		return msg + "; or pass --use-agent-identity=true or =false, or set $" + "AGENTAUTH_USE_AGENT_IDENTITY"
	}
	return msg
}

package credentials

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

// FuzzParseAuthFile feeds arbitrary bytes to ParseAuthFile. The seed corpus
// in testdata/fuzz/FuzzParseAuthFile holds the fixtures of testdata/*.json
// and a few edge cases; `.ci/fuzz.sh` explores from there.
//
// Properties: errors are *LoadError values wrapping ErrInvalidAuthFile,
// short, and free of the input's secrets; a file that parses survives
// Marshal → ParseAuthFile with every modelled member and every unknown
// member unchanged, Marshal is a fixed point after one round, and no
// rendering of the parsed file shows a secret.
func FuzzParseAuthFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		secrets := inputSecrets(data)
		a, err := ParseAuthFile(data)
		if err != nil {
			if a != nil {
				t.Fatal("non-nil file with an error")
			}
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrInvalidAuthFile) {
				t.Fatalf("error is not a *LoadError wrapping ErrInvalidAuthFile: %v", err)
			}
			msg := err.Error()
			if len(msg) >= 300 {
				t.Fatalf("error is %d bytes long: %.300q...", len(msg), msg)
			}
			// le.Field names a member, possibly one the input made up;
			// the rest of the text is the package's own wording.
			for _, s := range secrets {
				if strings.Contains(le.Err.Error(), s) || strings.Contains(strings.ReplaceAll(msg, le.Field, ""), s) {
					t.Fatalf("error shows a secret (%.6s...): %q", s, msg)
				}
			}
			return
		}

		b1, err := a.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed file: %v", err)
		}
		a2, err := ParseAuthFile(b1)
		if err != nil {
			t.Fatalf("ParseAuthFile(Marshal()) = %v\ninput:   %q\nmarshal: %q", err, data, b1)
		}
		b2, err := a2.Marshal()
		if err != nil {
			t.Fatalf("second Marshal: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("Marshal is not idempotent:\nfirst:  %q\nsecond: %q", b1, b2)
		}
		if diff := authFileDiff(a, a2); diff != "" {
			t.Fatalf("round trip changed %s\ninput: %q", diff, data)
		}

		// Renderings must not show a secret, unless the same text also shows
		// up with every secret blanked (it is then a non-secret value that
		// happens to equal one, such as an account id).
		blank := *a
		blank.OpenAIAPIKey, blank.AgentIdentity, blank.AgentIdentityRecord = nil, "", nil
		if a.Tokens != nil {
			tk := *a.Tokens
			tk.IDToken, tk.AccessToken, tk.RefreshToken = "", "", ""
			blank.Tokens = &tk
		}
		if a.AgentIdentityRecord != nil {
			r := *a.AgentIdentityRecord
			r.AgentPrivateKey = ""
			blank.AgentIdentityRecord = &r
		}
		got, innocent := renderAll(a), renderAll(&blank)
		for _, s := range secrets {
			if strings.Contains(got, s) && !strings.Contains(innocent, s) {
				t.Fatalf("a rendering of the file shows a secret (%.6s...): %s", s, got)
			}
		}
	})
}

// plainWords matches strings made only of the lowercase words and
// punctuation that fixed error texts use ("invalid auth.json: ..."); such
// a "secret" could appear in a message by coincidence, so it is not judged.
var plainWords = regexp.MustCompile(`^[a-z0-9 ._:,()#-]*$`)

// inputSecrets returns the secret values in data (API key, tokens, agent
// identity JWT, record private key) that are long and distinctive enough to
// search for, read leniently so that it works on files ParseAuthFile
// rejects.
func inputSecrets(data []byte) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return nil
	}
	str := func(raw json.RawMessage) string {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	vals := []string{str(top["OPENAI_API_KEY"]), str(top["agent_identity"])}
	var tokens, record map[string]json.RawMessage
	if json.Unmarshal(top["tokens"], &tokens) == nil {
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			vals = append(vals, str(tokens[k]))
		}
	}
	if json.Unmarshal(top["agent_identity_record"], &record) == nil {
		vals = append(vals, str(record["agent_private_key"]))
	}
	var out []string
	for _, v := range vals {
		if len(v) > 8 && !plainWords.MatchString(v) {
			out = append(out, v)
		}
	}
	return out
}

// renderAll renders a through every fmt verb, encoding/json and both slog
// handlers.
func renderAll(a *AuthFile) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v|%+v|%#v|%s|%q|%v|%+v|", *a, *a, *a, *a, *a, a, a)
	if j, err := json.Marshal(a); err == nil {
		b.Write(j)
	}
	slog.New(slog.NewTextHandler(&b, nil)).Info("m", "file", a, "tokens", a.Tokens)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("m", "file", a, "nested", []any{a})
	return b.String()
}

// authFileDiff describes the first difference between two parsed files, or
// returns "". Unknown members compare by their compacted JSON.
func authFileDiff(a, b *AuthFile) string {
	switch {
	case a.AuthMode != b.AuthMode:
		return "auth_mode"
	case (a.OpenAIAPIKey == nil) != (b.OpenAIAPIKey == nil) || (a.OpenAIAPIKey != nil && *a.OpenAIAPIKey != *b.OpenAIAPIKey):
		return "OPENAI_API_KEY"
	case a.AgentIdentity != b.AgentIdentity:
		return "agent_identity"
	case (a.LastRefresh == nil) != (b.LastRefresh == nil) || (a.LastRefresh != nil && !a.LastRefresh.Equal(*b.LastRefresh)):
		return "last_refresh"
	case (a.AgentIdentityRecord == nil) != (b.AgentIdentityRecord == nil) ||
		(a.AgentIdentityRecord != nil && *a.AgentIdentityRecord != *b.AgentIdentityRecord):
		return "agent_identity_record"
	case (a.Tokens == nil) != (b.Tokens == nil):
		return "tokens presence"
	}
	if a.Tokens != nil {
		ta, tb := *a.Tokens, *b.Tokens
		if ta.IDToken != tb.IDToken || ta.AccessToken != tb.AccessToken || ta.RefreshToken != tb.RefreshToken || ta.AccountID != tb.AccountID {
			return "a modelled tokens member"
		}
		if d := fieldsDiff("tokens.", ta.extra, tb.extra); d != "" {
			return d
		}
	}
	return fieldsDiff("", a.extra, b.extra)
}

func fieldsDiff(where string, a, b []field) string {
	if len(a) != len(b) {
		return fmt.Sprintf("the number of unknown %smembers (%d → %d)", where, len(a), len(b))
	}
	for i := range a {
		var ca, cb bytes.Buffer
		if a[i].name != b[i].name || json.Compact(&ca, a[i].value) != nil || json.Compact(&cb, b[i].value) != nil ||
			!bytes.Equal(ca.Bytes(), cb.Bytes()) {
			return fmt.Sprintf("unknown member %s%q", where, a[i].name)
		}
	}
	return ""
}

package credentials

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretHolders returns every type of this package that holds a secret,
// filled from the fixtures, as values and as pointers.
func secretHolders(t *testing.T) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, fixture := range []string{"apikey.json", "chatgpt.json", "agent_identity.json", "agent_identity_record.json"} {
		c, err := Load(LoadOptions{CodexHome: homeWith(t, fixture), Getenv: fakeEnv(nil), DecodeAgentIdentityJWT: decodeUnverified})
		if err != nil {
			t.Fatal(err)
		}
		out["*Credentials/"+fixture] = c
		out["Credentials/"+fixture] = *c
		if c.ChatGPT != nil {
			out["*ChatGPTLogin"] = c.ChatGPT
			out["ChatGPTLogin"] = *c.ChatGPT
		}
		data, _ := os.ReadFile(filepath.Join("testdata", fixture))
		af, err := ParseAuthFile(data)
		if err != nil {
			t.Fatal(err)
		}
		out["*AuthFile/"+fixture] = af
		out["AuthFile/"+fixture] = *af
		if af.Tokens != nil {
			out["*Tokens"] = af.Tokens
			out["Tokens"] = *af.Tokens
		}
	}
	tok := Token{AccessToken: fixtureAccessToken, AccountID: "acct", FedRAMP: true}
	out["Token"] = tok
	out["*Token"] = &tok
	out["[]*Token"] = []*Token{&tok}
	out["map"] = map[string]any{"creds": out["*Credentials/chatgpt.json"]}
	return out
}

func TestNoSecretInFmt(t *testing.T) {
	for name, v := range secretHolders(t) {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T"} {
			got := fmt.Sprintf(verb, v)
			assertNoSecret(t, name+" "+verb, got)
		}
		assertNoSecret(t, name+" Sprint", fmt.Sprint(v))
		js, err := json.Marshal(v)
		if err != nil {
			t.Errorf("%s: json.Marshal: %v", name, err)
		}
		assertNoSecret(t, name+" json.Marshal", string(js))
		assertNoSecret(t, name+" Sprintln", fmt.Sprintln(v))
	}
	// The redacted forms still say what is there.
	c, _ := Load(LoadOptions{CodexHome: homeWith(t, "chatgpt.json"), Getenv: fakeEnv(nil)})
	s := fmt.Sprintf("%+v", c)
	for _, want := range []string{"Kind:chatgpt", `AccountID:"acct-claim-123"`, "FedRAMP:true", "AccessToken:[REDACTED]"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q missing from %s", want, s)
		}
	}
}

func TestNoSecretInSlog(t *testing.T) {
	holders := secretHolders(t)
	for _, mk := range []struct {
		name string
		h    func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler {
			return slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		}},
		{"json", func(b *bytes.Buffer) slog.Handler {
			return slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		}},
	} {
		for name, v := range holders {
			var buf bytes.Buffer
			log := slog.New(mk.h(&buf))
			log.Debug("msg", "value", v, slog.Group("g", slog.Any("nested", v)))
			log.With("w", v).Info("with")
			out := buf.String()
			if !strings.Contains(out, "msg") {
				t.Fatalf("%s/%s: nothing logged", mk.name, name)
			}
			assertNoSecret(t, mk.name+" slog "+name, out)
		}
	}
	var buf bytes.Buffer
	c, _ := Load(LoadOptions{CodexHome: homeWith(t, "chatgpt.json"), Getenv: fakeEnv(nil)})
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "creds", c)
	if !strings.Contains(buf.String(), `"account_id":"acct-claim-123"`) || !strings.Contains(buf.String(), `"kind":"chatgpt"`) {
		t.Errorf("slog output lacks the useful fields: %s", buf.String())
	}
}

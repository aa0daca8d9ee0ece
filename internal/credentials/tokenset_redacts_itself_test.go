// credentials.TokenSet, the value every RefreshCoordinator (auth.json,
// Redis, any third-party store or wrapper) receives in Load and
// CompareAndSwap, redacts its three tokens in every fmt verb, in
// encoding/json and in log/slog's handlers, while still saying which
// account it is.
package credentials_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

func TestTokenSetRedactsItself(t *testing.T) {
	set := credentials.TokenSet{
		IDToken:      "id-SECRET-tokenset",
		AccessToken:  "at-SECRET-tokenset",
		RefreshToken: "rt-SECRET-tokenset",
		AccountID:    "acct-ts",
		LastRefresh:  time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	}
	var logs, text bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("swap", "next", set, "sets", []*credentials.TokenSet{&set})
	slog.New(slog.NewTextHandler(&text, nil)).Info("swap", "next", set, "prev", &set)
	js, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	jsPtr, _ := json.Marshal(map[string]any{"set": &set})
	outputs := map[string]string{
		"%v":          fmt.Sprintf("%v", set),
		"%+v":         fmt.Sprintf("%+v", set),
		"%#v":         fmt.Sprintf("%#v", set),
		"%s":          fmt.Sprintf("%s", set),
		"%q":          fmt.Sprintf("%q", set),
		"%v of ptr":   fmt.Sprintf("%v", &set),
		"%+v of ptr":  fmt.Sprintf("%+v", &set),
		"%#v of ptr":  fmt.Sprintf("%#v", &set),
		"wrapped":     fmt.Errorf("swap %v: %w", set, errors.New("boom")).Error(),
		"json":        string(js),
		"json of ptr": string(jsPtr),
		"slog JSON":   logs.String(),
		"slog text":   text.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, "SECRET") {
			t.Errorf("TokenSet printed with %s shows a token: %.160s", how, out)
		}
		if !strings.Contains(out, "acct-ts") {
			t.Errorf("TokenSet printed with %s lost its account: %.160s", how, out)
		}
	}
}

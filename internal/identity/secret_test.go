package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A struct holding a Secret in an exported field needs no method of its own:
// no fmt verb, slog handler or json.Marshal shows the secret, and the
// struct's other fields stay visible.
func TestSecretRedactsInsideAnyStruct(t *testing.T) {
	const token = "eyJ.secret-access-token.sig"
	type holder struct {
		Name  string
		Token Secret
		Inner struct{ Token Secret }
		Ptr   *Secret
	}
	tok := Secret(token)
	h := holder{Name: "visible", Token: token, Ptr: &tok}
	h.Inner.Token = token
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h), fmt.Sprintf(verb, tok))
	}
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(js))
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(newHandler(&b)).Info("x", "h", h, "tok", tok, "m", map[string]any{"t": tok})
		outs = append(outs, b.String())
	}
	for _, out := range outs {
		if strings.Contains(out, token) || strings.Contains(out, fmt.Sprintf("%x", token)) {
			t.Errorf("output leaks the secret: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprintf("%+v", h), "visible") || !strings.Contains(string(js), `"Token":"[REDACTED]"`) {
		t.Errorf("non-secret fields or the redaction marker missing: %+v / %s", h, js)
	}
	if tok.Reveal() != token || Secret("").String() != "" {
		t.Errorf("Reveal = %q, empty String = %q", tok.Reveal(), Secret("").String())
	}
	var back holder
	if err := json.Unmarshal([]byte(`{"Token":"abc"}`), &back); err != nil || back.Token.Reveal() != "abc" {
		t.Errorf("a JSON string does not decode into a Secret: %v %q", err, back.Token.Reveal())
	}
}

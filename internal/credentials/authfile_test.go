package credentials

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// genericJSON decodes data into maps, keeping numbers as written.
func genericJSON(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return v
}

func TestAuthFileRoundTripKeepsUnknownFields(t *testing.T) {
	orig, err := os.ReadFile("testdata/chatgpt.json")
	if err != nil {
		t.Fatal(err)
	}
	af, err := ParseAuthFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	out, err := af.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(genericJSON(t, orig), genericJSON(t, out)); diff != "" {
		t.Errorf("round trip changed the JSON object (-orig +out):\n%s", diff)
	}
	// Token bytes of unknown values are kept exactly: number spellings,
	// escapes and HTML characters.
	for _, tok := range []string{`12345678901234567890123456789`, `1.0e3`, `"\u00e9<&>\/"`, `2.50`, `1E+2`, `"x<y>&z"`} {
		if !bytes.Contains(out, []byte(tok)) {
			t.Errorf("output lost the token %s:\n%s", tok, out)
		}
	}
	// Codex layout: two-space indent, modelled members first in Codex's
	// order, then unknown members in file order, trailing newline.
	if !bytes.HasPrefix(out, []byte("{\n  \"auth_mode\": \"chatgpt\",\n  \"OPENAI_API_KEY\": null,\n  \"tokens\": {\n    \"id_token\": ")) {
		t.Errorf("unexpected layout:\n%s", out)
	}
	if !bytes.HasSuffix(out, []byte("\n}\n")) {
		t.Error("no trailing newline")
	}
	order := []string{`"auth_mode"`, `"OPENAI_API_KEY"`, `"tokens"`, `"access_token"`, `"token_extra"`, `"last_refresh"`, `"codex_custom"`, `"zzz_big_number"`}
	last := -1
	for _, k := range order {
		i := bytes.Index(out, []byte(k))
		if i < last {
			t.Errorf("%s out of order", k)
		}
		last = i
	}
	// A second round trip is byte-identical.
	af2, err := ParseAuthFile(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := af2.Marshal()
	if !bytes.Equal(out, out2) {
		t.Errorf("second round trip differs:\n%s\n---\n%s", out, out2)
	}
}

func TestAuthFileFields(t *testing.T) {
	data, _ := os.ReadFile("testdata/chatgpt.json")
	af, err := ParseAuthFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if af.AuthMode != AuthModeChatGPT || af.OpenAIAPIKey != nil || af.Tokens == nil ||
		af.Tokens.AccessToken != fixtureAccessToken || af.Tokens.RefreshToken != fixtureRefreshToken || af.Tokens.AccountID != "" {
		t.Fatalf("parsed %v", af)
	}
	if want := time.Date(2026, 4, 20, 10, 11, 12, 123456000, time.UTC); af.LastRefresh == nil || !af.LastRefresh.Equal(want) {
		t.Errorf("LastRefresh = %v", af.LastRefresh)
	}
	if raw, ok := af.Extra("codex_custom"); !ok || !json.Valid(raw) {
		t.Errorf("Extra(codex_custom) = %s, %v", raw, ok)
	}
	if _, ok := af.Extra("tokens"); ok {
		t.Error("a modelled member is reported as extra")
	}
}

func TestAuthFileEmptyAndRecord(t *testing.T) {
	out, err := (&AuthFile{}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "{\n  \"OPENAI_API_KEY\": null\n}\n" {
		t.Errorf("empty file = %q", out)
	}
	key := "sk-a<b>&c"
	lr := time.Date(2026, 4, 23, 0, 0, 0, 0, time.UTC)
	af := &AuthFile{AuthMode: AuthModeAgentIdentity, OpenAIAPIKey: &key, LastRefresh: &lr,
		AgentIdentity: "x.y.z", AgentIdentityRecord: testRecord("acct-1")}
	out, err = af.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"sk-a<b>&c"`)) || !bytes.Contains(out, []byte(`"last_refresh": "2026-04-23T00:00:00Z"`)) {
		t.Errorf("unexpected encoding:\n%s", out)
	}
	back, err := ParseAuthFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(af, back, cmp.AllowUnexported(AuthFile{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestAuthFileSetExtra(t *testing.T) {
	af, err := ParseAuthFile([]byte(`{"a": 1, "b": {"x": [1, 2]}, "c": "s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := af.SetExtra("b", json.RawMessage(`{ "y" : true }`)); err != nil {
		t.Fatal(err)
	}
	if err := af.SetExtra("d", json.RawMessage(`4`)); err != nil {
		t.Fatal(err)
	}
	if err := af.SetExtra("a", nil); err != nil {
		t.Fatal(err)
	}
	if err := af.SetExtra("missing", nil); err != nil {
		t.Fatal(err)
	}
	if err := af.SetExtra("tokens", json.RawMessage(`{}`)); err == nil {
		t.Error("SetExtra accepted a modelled name")
	}
	if err := af.SetExtra("e", json.RawMessage(`{bad`)); err == nil {
		t.Error("SetExtra accepted invalid JSON")
	}
	out, _ := af.Marshal()
	want := "{\n  \"OPENAI_API_KEY\": null,\n  \"b\": {\n    \"y\": true\n  },\n  \"c\": \"s\",\n  \"d\": 4\n}\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestParseAuthFileErrorsNameFieldNotValue(t *testing.T) {
	for _, tc := range []struct {
		in, field string
	}{
		{`{"OPENAI_API_KEY": ["sk-SECRET"]}`, "OPENAI_API_KEY"},
		{`{"tokens": {"refresh_token": {"v": "rt-SECRET"}}}`, "tokens.refresh_token"},
		{`{"tokens": {"id_token": true, "x": "SECRET"}}`, "tokens.id_token"},
		{`{"tokens": {"access_token": "a", "access_token": "SECRET"}}`, "tokens.access_token"},
		{`{"agent_identity": 1}`, "agent_identity"},
		{`{"agent_identity_record": "SECRET"}`, "agent_identity_record"},
		{`{"agent_identity_record": {"chatgpt_account_is_fedramp": "SECRET"}}`, "agent_identity_record.chatgpt_account_is_fedramp"},
		{`{"last_refresh": 5}`, "last_refresh"},
		{`{"OPENAI_API_KEY": "sk-SECRET"`, ""},
		{`{"OPENAI_API_KEY": SECRET}`, ""},
		{`SECRET`, ""},
		{``, ""},
	} {
		_, err := ParseAuthFile([]byte(tc.in))
		var le *LoadError
		if !errors.As(err, &le) || !errors.Is(err, ErrInvalidAuthFile) {
			t.Errorf("%s: err = %v", tc.in, err)
			continue
		}
		if le.Field != tc.field {
			t.Errorf("%s: Field = %q, want %q", tc.in, le.Field, tc.field)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error leaks the value: %v", tc.in, err)
		}
	}
}

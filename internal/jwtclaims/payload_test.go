package jwtclaims_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/internal/jwtclaims"
)

func TestPayloadDecodesTheMiddlePart(t *testing.T) {
	p := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u"}`))
	for _, tok := range []string{"h." + p + ".s", "h." + base64.URLEncoding.EncodeToString([]byte(`{"sub":"u"}`)) + ".s"} {
		got, err := jwtclaims.Payload(tok)
		if err != nil || string(got) != `{"sub":"u"}` {
			t.Errorf("Payload(%q) = %q, %v", tok, got, err)
		}
	}
}

func TestPayloadRejectsWhatIsNotACompactJWT(t *testing.T) {
	p := base64.RawURLEncoding.EncodeToString([]byte(`{"secret":"s3cr3t"}`))
	for _, tt := range []struct {
		tok  string
		want error
	}{
		{"", jwtclaims.ErrNotJWT},
		{"h." + p, jwtclaims.ErrNotJWT},
		{"h." + p + ".s.x", jwtclaims.ErrNotJWT},
		{"." + p + ".s", jwtclaims.ErrNotJWT},
		{"h..s", jwtclaims.ErrNotJWT},
		{"h." + p + ".", jwtclaims.ErrNotJWT},
		{"h.***.s", jwtclaims.ErrPayloadEncoding},
	} {
		_, err := jwtclaims.Payload(tt.tok)
		if !errors.Is(err, tt.want) {
			t.Errorf("Payload(%q) err = %v, want %v", tt.tok, err, tt.want)
		}
		if err != nil && tt.tok != "" && strings.Contains(err.Error(), p) {
			t.Errorf("error %q carries the token", err)
		}
	}
}

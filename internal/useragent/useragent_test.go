package useragent

import (
	"net/http"
	"runtime/debug"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestVersionFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "devel"},
		{"checkout", &debug.BuildInfo{Main: debug.Module{Path: ModulePath, Version: "(devel)"}}, true, "devel"},
		{"main module", &debug.BuildInfo{Main: debug.Module{Path: ModulePath, Version: "v1.2.3"}}, true, "v1.2.3"},
		{"dependency", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app", Version: "v9.9.9"},
			Deps: []*debug.Module{{Path: "other", Version: "v0.0.1"}, {Path: ModulePath, Version: "v0.4.0"}}}, true, "v0.4.0"},
		{"replaced dependency", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: ModulePath, Version: "v0.4.0", Replace: &debug.Module{Path: "../agentauth"}}}}, true, "v0.4.0"},
		{"not a dependency", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app", Version: "v9.9.9"}}, true, "devel"},
	} {
		got := version(func() (*debug.BuildInfo, bool) { return tc.bi, tc.ok })
		if got != tc.want {
			t.Errorf("%s: version = %q, want %q", tc.name, got, tc.want)
		}
	}
	if v := Value(); v != "agentauth/devel" {
		t.Errorf("Value in tests = %q, want agentauth/devel", v)
	}
}

func TestOriginator(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvOriginatorOverride {
				return v
			}
			return ""
		}
	}
	if got := Originator("", nil); got != "" {
		t.Errorf("default = %q, want none", got)
	}
	if got := Originator("", env(" codex_cli_rs ")); got != "codex_cli_rs" {
		t.Errorf("env = %q", got)
	}
	if got := Originator("codex_vscode", env("codex_cli_rs")); got != "codex_cli_rs" {
		t.Errorf("the override variable wins, as in Codex: %q", got)
	}
	if got := Originator("codex_vscode", env(" ")); got != "codex_vscode" {
		t.Errorf("explicit without the variable: %q", got)
	}
	if got := Originator("bad\nvalue", nil); got != "" {
		t.Errorf("unsendable value kept: %q", got)
	}
	h := http.Header{}
	Set(h, "")
	if h.Get("User-Agent") != Value() || h.Values(HeaderOriginator) != nil {
		t.Errorf("headers = %v", h)
	}
	Set(h, "codex_cli_rs")
	if h.Get(HeaderOriginator) != "codex_cli_rs" {
		t.Errorf("headers = %v", h)
	}
}

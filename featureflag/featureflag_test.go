package featureflag

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNilAndZeroFlag(t *testing.T) {
	var nilFlag *Flag
	if nilFlag.Enabled() {
		t.Error("nil flag is enabled")
	}
	var zero Flag
	if zero.Enabled() {
		t.Error("zero flag is enabled")
	}
	if f := New(true); !f.Enabled() {
		t.Error("New(true) is off")
	}
}

func TestParseBool(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"1", true}, {"true", true}, {"TRUE", true}, {" Yes ", true}, {"on", true}, {"On", true},
		{"0", false}, {"false", false}, {"False", false}, {"no", false}, {"OFF", false},
	} {
		got, err := parseBool(envVar, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseBool(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "2", "enable", "sk-secret-value", "truee"} {
		_, err := parseBool(envVar, bad)
		if err == nil {
			t.Errorf("parseBool(%q): no error", bad)
			continue
		}
		if !strings.Contains(err.Error(), envVar) {
			t.Errorf("error %q does not name %s", err, envVar)
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error %q quotes the value", err)
		}
	}
}

func TestFromConfigTOML(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		value, ok     bool
		wantErr       string
	}{
		{name: "on", content: "[features]\nuse_agent_identity = true\n", value: true, ok: true},
		{name: "off", content: "[features]\nuse_agent_identity = false\n", value: false, ok: true},
		{name: "dotted key", content: "features.use_agent_identity = true\n", value: true, ok: true},
		{name: "other keys", content: "model = \"o3\"\n[features]\nweb_search = true\n", ok: false},
		{name: "empty", content: "", ok: false},
		{name: "string value", content: "[features]\nuse_agent_identity = \"true\"\n", wantErr: "features.use_agent_identity is not a boolean"},
		{name: "int value", content: "[features]\nuse_agent_identity = 1\n", wantErr: "not a boolean"},
		{name: "features not a table", content: "features = 1\n", wantErr: "features is not a table"},
		{name: "syntax error hides content", content: "token = \"sk-secret-config\" junk\n", wantErr: "invalid TOML at line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeConfig(t, tc.content)
			v, ok, err := fromConfigTOML(filepath.Join(dir, "config.toml"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "sk-secret") {
					t.Fatalf("error quotes file content: %v", err)
				}
				return
			}
			if err != nil || v != tc.value || ok != tc.ok {
				t.Fatalf("got (%v, %v, %v), want (%v, %v, nil)", v, ok, err, tc.value, tc.ok)
			}
		})
	}
	v, ok, err := fromConfigTOML(filepath.Join(t.TempDir(), "missing.toml"))
	if v || ok || err != nil {
		t.Errorf("missing file: got (%v, %v, %v), want (false, false, nil)", v, ok, err)
	}
	if _, _, err := fromConfigTOML(t.TempDir()); err == nil {
		t.Error("a directory: no error")
	}
}

func TestLoadPrecedence(t *testing.T) {
	on := writeConfig(t, "[features]\nuse_agent_identity = true\n")
	off := writeConfig(t, "[features]\nuse_agent_identity = false\n")
	bad := writeConfig(t, "[features]\nuse_agent_identity = \"maybe\"\n")
	empty := t.TempDir()
	for _, tc := range []struct {
		name    string
		opts    loadArgs
		want    bool
		wantErr bool
	}{
		{name: "default off", opts: loadArgs{CodexHome: empty, Getenv: fakeEnv(nil)}, want: false},
		{name: "config on", opts: loadArgs{CodexHome: on, Getenv: fakeEnv(nil)}, want: true},
		{name: "config via CODEX_HOME", opts: loadArgs{Getenv: fakeEnv(map[string]string{"CODEX_HOME": on})}, want: true},
		{name: "CodexHome wins over CODEX_HOME", opts: loadArgs{CodexHome: off, Getenv: fakeEnv(map[string]string{"CODEX_HOME": on})}, want: false},
		{name: "env beats config", opts: loadArgs{CodexHome: on, Getenv: fakeEnv(map[string]string{envVar: "off"})}, want: false},
		{name: "env on beats config off", opts: loadArgs{CodexHome: off, Getenv: fakeEnv(map[string]string{envVar: "1"})}, want: true},
		{name: "env beats broken config", opts: loadArgs{CodexHome: bad, Getenv: fakeEnv(map[string]string{envVar: "yes"})}, want: true},
		{name: "blank env ignored", opts: loadArgs{CodexHome: on, Getenv: fakeEnv(map[string]string{envVar: "  "})}, want: true},
		{name: "invalid env", opts: loadArgs{CodexHome: on, Getenv: fakeEnv(map[string]string{envVar: "bogus"})}, wantErr: true},
		{name: "invalid config", opts: loadArgs{CodexHome: bad, Getenv: fakeEnv(nil)}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Load(tc.opts.CodexHome, tc.opts.Getenv)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error; flag %v", f)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Enabled() != tc.want {
				t.Fatalf("Enabled() = %v, want %v", f.Enabled(), tc.want)
			}
		})
	}
}

// TestRunTimeFlip checks that Set is seen by concurrent readers and that
// readers and writers do not race (run with -race).
func TestRunTimeFlip(t *testing.T) {
	f, err := Load(t.TempDir(), fakeEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if f.Enabled() {
		t.Fatal("default should be off")
	}
	f.Set(true)
	if !f.Enabled() {
		t.Fatal("Set(true) not visible")
	}

	const readers, flips = 8, 1000
	f.Set(false)
	var wg sync.WaitGroup
	final := make(chan struct{})
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-final:
					// close(final) happens after the last Set(true).
					if !f.Enabled() {
						t.Error("reader did not see the final Set(true)")
					}
					return
				default:
					_ = f.Enabled() // concurrent with the flipper below
				}
			}
		}()
	}
	var flipper sync.WaitGroup
	flipper.Add(1)
	go func() {
		defer flipper.Done()
		for i := range flips {
			f.Set(i%2 == 0)
			_ = f.Enabled()
		}
	}()
	flipper.Wait()
	f.Set(true)
	close(final)
	wg.Wait()
	if !f.Enabled() {
		t.Fatal("final Set(true) lost")
	}
	f.Set(false)
	if f.Enabled() {
		t.Fatal("Set(false) not visible")
	}
}

// loadArgs are the two arguments of Load, named for the table.
type loadArgs struct {
	CodexHome string
	Getenv    func(string) string
}

package featureflag

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/BurntSushi/toml"
)

// name is the flag's key in config.toml's [features] table, as in Codex;
// envVar is the environment variable that sets the flag.
const (
	name   = "use_agent_identity"
	envVar = "AGENTAUTH_USE_AGENT_IDENTITY"
)

// Flag is the use_agent_identity switch. It is safe for concurrent use; the
// zero value is off. A nil *Flag reads as off.
type Flag struct {
	on atomic.Bool
}

// New returns a flag set to on.
func New(on bool) *Flag {
	f := &Flag{}
	f.on.Store(on)
	return f
}

// Enabled reports whether the flag is on; false for a nil *Flag.
func (f *Flag) Enabled() bool {
	return f != nil && f.on.Load()
}

// Set switches the flag; requests that start afterwards see the new value.
// f must not be nil.
func (f *Flag) Set(on bool) { f.on.Store(on) }

// parseBool parses a boolean setting named name: 1, true, yes, on and 0,
// false, no, off, ignoring case and surrounding space. Any other value is an
// error that names the setting (not the value, in case a secret was put
// there by mistake).
func parseBool(name, value string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("featureflag: %s is not a boolean (want 1/true/yes/on or 0/false/no/off)", name)
}

// fromConfigTOML reads [features] use_agent_identity from the Codex
// config.toml at path. ok is false (with a nil error) when the file does not
// exist or does not set the key. A file that is not valid TOML, a
// "features" that is not a table, or a value that is not a boolean is an
// error; errors give a line number, never file content (config.toml can
// hold tokens).
func fromConfigTOML(path string) (value, ok bool, err error) {
	var doc map[string]any
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, false, nil
		}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return false, false, fmt.Errorf("featureflag: %s: invalid TOML at line %d", path, pe.Position.Line)
		}
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			return false, false, fmt.Errorf("featureflag: %s: %w", path, err)
		}
		return false, false, fmt.Errorf("featureflag: %s: invalid TOML", path)
	}
	raw, present := doc["features"]
	if !present {
		return false, false, nil
	}
	features, isTable := raw.(map[string]any)
	if !isTable {
		return false, false, fmt.Errorf("featureflag: %s: features is not a table", path)
	}
	v, present := features[name]
	if !present {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, false, fmt.Errorf("featureflag: %s: features.%s is not a boolean (want true or false, unquoted)", path, name)
	}
	return b, true, nil
}

// Load returns a new flag whose initial value is, in order of precedence:
// env AGENTAUTH_USE_AGENT_IDENTITY when non-empty (1/true/yes/on or
// 0/false/no/off, any case); [features] use_agent_identity in
// codexHome/config.toml ("" means $CODEX_HOME, else ~/.codex); off. getenv
// reads the environment (nil means os.Getenv). An invalid environment
// value or config.toml is an error rather than a silent default; errors
// name the setting, never its value or the file's content.
func Load(codexHome string, getenv func(string) string) (*Flag, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(envVar); strings.TrimSpace(v) != "" {
		on, err := parseBool(envVar, v)
		if err != nil {
			return nil, err
		}
		return New(on), nil
	}
	home := codexHome
	if home == "" {
		home = strings.TrimSpace(getenv("CODEX_HOME"))
	}
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return New(false), nil
		}
		home = filepath.Join(h, ".codex")
	}
	on, ok, err := fromConfigTOML(filepath.Join(home, "config.toml"))
	if err != nil {
		return nil, err
	}
	return New(ok && on), nil
}

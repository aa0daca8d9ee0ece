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

// Name is the flag's key in config.toml's [features] table, as in Codex.
const Name = "use_agent_identity"

// EnvVar is the environment variable that sets the flag.
const EnvVar = "AGENTAUTH_USE_AGENT_IDENTITY"

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

// String returns "use_agent_identity=true" or "use_agent_identity=false".
func (f *Flag) String() string { return fmt.Sprintf("%s=%t", Name, f.Enabled()) }

// ParseBool parses a boolean setting named name: 1, true, yes, on and 0,
// false, no, off, ignoring case and surrounding space. Any other value is an
// error that names the setting (not the value, in case a secret was put
// there by mistake).
func ParseBool(name, value string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("featureflag: %s is not a boolean (want 1/true/yes/on or 0/false/no/off)", name)
}

// FromConfigTOML reads [features] use_agent_identity from the Codex
// config.toml at path. ok is false (with a nil error) when the file does not
// exist or does not set the key. A file that is not valid TOML, a
// "features" that is not a table, or a value that is not a boolean is an
// error; errors give a line number, never file content (config.toml can
// hold tokens).
func FromConfigTOML(path string) (value, ok bool, err error) {
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
	v, present := features[Name]
	if !present {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, false, fmt.Errorf("featureflag: %s: features.%s is not a boolean (want true or false, unquoted)", path, Name)
	}
	return b, true, nil
}

// Options says where [Load] looks for the flag. The zero value reads the
// real environment and $CODEX_HOME/config.toml.
type Options struct {
	// CodexHome is the directory holding config.toml. Default: $CODEX_HOME
	// (read through Getenv), else ~/.codex; when no home directory can be
	// found, config.toml is skipped.
	CodexHome string
	// Getenv reads environment variables. Default: os.Getenv.
	Getenv func(string) string
	// Value, when non-nil, is the flag's value set in code; it wins over
	// the environment and config.toml, which are then not read.
	Value *bool
}

// Load returns a new flag whose initial value is, in order of precedence:
// opts.Value; the environment variable [EnvVar] when non-empty (parsed by
// [ParseBool]); [features] use_agent_identity in $CODEX_HOME/config.toml;
// off. An invalid environment value or config.toml is an error rather
// than a silent default.
func Load(opts Options) (*Flag, error) {
	if opts.Value != nil {
		return New(*opts.Value), nil
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvVar); strings.TrimSpace(v) != "" {
		on, err := ParseBool(EnvVar, v)
		if err != nil {
			return nil, err
		}
		return New(on), nil
	}
	home := opts.CodexHome
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
	on, ok, err := FromConfigTOML(filepath.Join(home, "config.toml"))
	if err != nil {
		return nil, err
	}
	return New(ok && on), nil
}

package featureflag_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentauth/agentauth/featureflag"
)

func Example() {
	home, _ := os.MkdirTemp("", "codex-home")
	defer os.RemoveAll(home)
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[features]\nuse_agent_identity = true\n"), 0o600)

	env := map[string]string{} // a fake environment
	getenv := func(k string) string { return env[k] }
	flag, err := featureflag.Load(home, getenv)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("from config.toml:", flag.Enabled())

	env["AGENTAUTH_USE_AGENT_IDENTITY"] = "off" // the environment beats config.toml
	flag, _ = featureflag.Load(home, getenv)
	fmt.Println("from env:", flag.Enabled())

	flag.Set(true) // flipped at run time; clients holding flag see it at once
	fmt.Println("after Set:", flag.Enabled())
	// Output:
	// from config.toml: true
	// from env: false
	// after Set: true
}

// do's credential source: which one flag, standard input or variable
// gives the credential, by the name the user gave it.

package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// doSourceFlags are the flags that each name a credential source.
var doSourceFlags = []string{"codex-home", "record", "api-key", "api-key-stdin", "access-token", "access-token-stdin"}

// pickSource finds the one credential source and returns its name as the
// user gave it ("--codex-home" when none is given): a credential read from
// standard input or from $AGENTAUTH_API_KEY / $AGENTAUTH_ACCESS_TOKEN is
// stored in a as if its flag had been given. stdin reports which flag
// reads standard input.
func (a *doArgs) pickSource(r io.Reader) (source string, stdin *stdinClaim, err error) {
	var sources []string
	for _, n := range doSourceFlags {
		if a.set[n] {
			sources = append(sources, "--"+n)
		}
	}
	if len(sources) > 1 {
		return "", nil, fmt.Errorf("%s are exclusive: give one credential source", strings.Join(sources, " and "))
	}
	stdin = &stdinClaim{}
	switch {
	case a.apiKeyStdin || a.accessTokenStdin:
		name, err := a.readStdinSecret(r, stdin)
		if err != nil {
			return "", nil, err
		}
		sources = []string{name}
	case len(sources) == 0:
		env, err := a.secretFromEnv()
		if err != nil {
			return "", nil, err
		}
		if env != "" {
			sources = []string{env}
		}
	}
	if a.set["record"] && a.recordPath == "-" {
		if err := stdin.take("--record -"); err != nil {
			return "", nil, err
		}
	}
	source = "--codex-home"
	if len(sources) == 1 {
		source = sources[0]
	}
	return source, stdin, nil
}

// readStdinSecret reads the credential of --api-key-stdin or
// --access-token-stdin and returns that flag's name.
func (a *doArgs) readStdinSecret(r io.Reader, stdin *stdinClaim) (string, error) {
	name := "--api-key-stdin"
	if a.accessTokenStdin {
		name = "--access-token-stdin"
	}
	if err := stdin.take(name); err != nil {
		return "", err
	}
	v, err := readSecretLine(r)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if a.apiKeyStdin {
		a.apiKey, a.set["api-key"] = v, true
	} else {
		a.accessToken, a.set["access-token"] = v, true
	}
	return name, nil
}

// secretFromEnv takes the credential from $AGENTAUTH_API_KEY or
// $AGENTAUTH_ACCESS_TOKEN and returns the variable's name, or "" when
// neither is set.
func (a *doArgs) secretFromEnv() (string, error) {
	key, tok := os.Getenv(envDoAPIKey), os.Getenv(envDoAccessToken)
	switch {
	case key != "" && tok != "":
		return "", fmt.Errorf("$%s and $%s are both set: unset one or give a credential flag", envDoAPIKey, envDoAccessToken)
	case key != "":
		a.apiKey, a.set["api-key"] = key, true
		return "$" + envDoAPIKey, nil
	case tok != "":
		a.accessToken, a.set["access-token"] = tok, true
		return "$" + envDoAccessToken, nil
	}
	return "", nil
}

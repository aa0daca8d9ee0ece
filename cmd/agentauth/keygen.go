package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/agentauth/agentauth/internal/headers"
	"github.com/agentauth/agentauth/internal/identity"
)

const keygenSynopsis = "agentauth keygen [--runtime-id ID]"

func init() {
	register(command{
		name:    "keygen",
		summary: "print a new Agent Identity record (runtime id, private key, public key) as JSON",
		run:     runKeygen,
	})
}

// keygenRecord is what keygen prints and what assertion reads back.
type keygenRecord struct {
	AgentRuntimeID  string `json:"agent_runtime_id"`
	AgentPrivateKey string `json:"agent_private_key"`
	PublicKeySSH    string `json:"public_key_ssh"`
}

// runKeygen prints a fresh key and its runtime id. Printing the private key
// is the command's job; nothing else ever does.
func runKeygen(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen")
	runtimeID := fs.String("runtime-id", "", `agent_runtime_id of the record (default: a random "rt-..." id)`)
	if code, done := parseFlags(fs, keygenSynopsis, args, stdout, stderr); done {
		return code
	}
	if *runtimeID == "" {
		id, err := randomRuntimeID()
		if err != nil {
			return failure(stderr, fs.Name(), err)
		}
		*runtimeID = id
	} else if err := validateID("--runtime-id", *runtimeID); err != nil {
		return usageError(stderr, fs.Name(), err)
	}
	key, err := identity.GenerateKey(nil)
	if err != nil {
		return failure(stderr, fs.Name(), err)
	}
	out, err := json.MarshalIndent(keygenRecord{
		AgentRuntimeID:  *runtimeID,
		AgentPrivateKey: key.MarshalPrivateKey(),
		PublicKeySSH:    key.SSHPublicKey(),
	}, "", "  ")
	if err != nil {
		return failure(stderr, fs.Name(), errors.New("encoding the record failed"))
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", out); err != nil {
		return failure(stderr, fs.Name(), errors.New("writing the record failed"))
	}
	return exitOK
}

// randomRuntimeID returns "rt-" and 16 random hex digits.
func randomRuntimeID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errors.New("reading randomness failed")
	}
	return "rt-" + hex.EncodeToString(b[:]), nil
}

// validateID checks an id given on the command line: non-empty, valid
// UTF-8, no control characters (it ends up in JSON and headers).
func validateID(flagName, v string) error {
	if v == "" {
		return fmt.Errorf("%s must not be empty", flagName)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", flagName)
	}
	if err := headers.ValidateValue(flagName, v); err != nil {
		return fmt.Errorf("%s has a control character", flagName)
	}
	return nil
}

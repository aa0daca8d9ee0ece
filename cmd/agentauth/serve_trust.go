// serve --trust-record: runtimes the server knows from the start.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// trustedRuntime is a runtime serve knows from --trust-record.
type trustedRuntime struct {
	id        string
	publicKey string // "ssh-ed25519 ..."
}

// loadTrustRecord reads a keygen JSON or an Agent Identity record and
// returns its runtime id and public key. A record with a private key has
// its public key derived (and checked against public_key_ssh when both are
// present); a record with only agent_runtime_id and public_key_ssh is
// enough. Errors name fields, never values.
func loadTrustRecord(path string, stdin io.Reader) (trustedRuntime, error) {
	data, err := readRecord(path, stdin)
	if err != nil {
		return trustedRuntime{}, err
	}
	var rec struct {
		AgentRuntimeID  string `json:"agent_runtime_id"`
		AgentPrivateKey string `json:"agent_private_key"`
		PublicKeySSH    string `json:"public_key_ssh"`
	}
	if json.Unmarshal(data, &rec) != nil {
		return trustedRuntime{}, errors.New("record is not a JSON object with string fields agent_runtime_id and public_key_ssh or agent_private_key")
	}
	if rec.AgentPrivateKey != "" {
		id, key, err := parseRecord(data)
		if err != nil {
			return trustedRuntime{}, err
		}
		return trustedRuntime{id: id, publicKey: key.SSHPublicKey()}, nil
	}
	switch {
	case rec.AgentRuntimeID == "":
		return trustedRuntime{}, errors.New("record has no agent_runtime_id")
	case rec.PublicKeySSH == "":
		return trustedRuntime{}, errors.New("record has neither public_key_ssh nor agent_private_key")
	}
	if err := validateID("agent_runtime_id", rec.AgentRuntimeID); err != nil {
		return trustedRuntime{}, fmt.Errorf("record: %w", err)
	}
	return trustedRuntime{id: rec.AgentRuntimeID, publicKey: rec.PublicKeySSH}, nil
}

// loadTrustRecords loads each --trust-record file; "-" reads standard
// input, which claim must still have free.
func loadTrustRecords(paths []string, stdin io.Reader, claim *stdinClaim) ([]trustedRuntime, error) {
	var runtimes []trustedRuntime
	for _, path := range paths {
		if path == "-" {
			if err := claim.take("--trust-record -"); err != nil {
				return nil, err
			}
		}
		rt, err := loadTrustRecord(path, stdin)
		if err != nil {
			return nil, fmt.Errorf("--trust-record %s: %w", truncate(path), err)
		}
		runtimes = append(runtimes, rt)
	}
	return runtimes, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

const assertionSynopsis = "agentauth assertion --record FILE --task-id ID [--at RFC3339]"

// maxRecordBytes bounds what assertion reads as a record.
const maxRecordBytes = 1 << 20

func init() {
	register(command{
		name:    "assertion",
		summary: "print the AgentAssertion header value for a record and task at a second",
		run:     runAssertion,
	})
}

// runAssertion prints "AgentAssertion <token>" for the record's runtime and
// key, the task and the second of --at (default now). Printing the
// assertion is the command's job; errors never quote the record.
func runAssertion(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("assertion")
	recordPath := fs.String("record", "", "keygen JSON or Agent Identity record JSON (agent_runtime_id, agent_private_key); - reads stdin")
	taskID := fs.String("task-id", "", "task id the assertion is bound to")
	atFlag := fs.String("at", "", "time to sign, RFC 3339 with any offset; fractions are truncated to whole seconds (default: now)")
	if code, done := parseFlags(fs, assertionSynopsis, args, stdout, stderr); done {
		return code
	}
	switch {
	case *recordPath == "":
		return usageError(stderr, fs.Name(), errors.New("--record is required"))
	case *taskID == "":
		return usageError(stderr, fs.Name(), errors.New("--task-id is required"))
	}
	if err := validateID("--task-id", *taskID); err != nil {
		return usageError(stderr, fs.Name(), err)
	}
	at := time.Now()
	if *atFlag != "" {
		t, err := parseAt(*atFlag)
		if err != nil {
			return usageError(stderr, fs.Name(), err)
		}
		at = t
	}

	// A record named on the command line that cannot be read or used is
	// bad input (exit 2), as in do and serve.
	data, err := readRecord(*recordPath, stdin)
	if err != nil {
		return usageError(stderr, fs.Name(), err)
	}
	runtimeID, key, err := parseRecord(data)
	if err != nil {
		return usageError(stderr, fs.Name(), err)
	}
	header, err := identity.SignAssertion(key, runtimeID, *taskID, at)
	if err != nil {
		// SignAssertion's errors name the problem, never the key.
		return failure(stderr, fs.Name(), fmt.Errorf("cannot sign: %w", err))
	}
	if _, err := fmt.Fprintln(stdout, header); err != nil {
		return failure(stderr, fs.Name(), errors.New("writing the header failed"))
	}
	return exitOK
}

// parseAt accepts RFC 3339 with or without a fraction and with any offset,
// and truncates to the whole second the protocol signs.
func parseAt(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q is not an RFC 3339 time such as 2026-04-23T00:00:00Z", truncate(s))
	}
	// The header carries the time in UTC with a four-digit year.
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("--at %q is outside the years 0000-9999 in UTC", truncate(s))
	}
	return t.UTC().Truncate(time.Second), nil
}

// readRecord reads the record file, or stdin for "-".
func readRecord(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	name := path
	if path == "-" {
		if stdin == nil {
			return nil, errors.New("no standard input to read the record from")
		}
		r, name = stdin, "standard input"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("cannot open record: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxRecordBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read record from %s", name)
	}
	if len(data) > maxRecordBytes {
		return nil, fmt.Errorf("record in %s is larger than %d bytes", name, maxRecordBytes)
	}
	return data, nil
}

// parseRecord extracts the runtime id and key from a keygen JSON or an
// Agent Identity record. When public_key_ssh is present it must belong to
// the private key, so a hand-edited file cannot sign for the wrong key
// silently. Error texts name fields, never values: a JSON syntax error
// could otherwise quote part of the private key.
func parseRecord(data []byte) (string, *identity.PrivateKey, error) {
	var rec struct {
		AgentRuntimeID  *string `json:"agent_runtime_id"`
		AgentPrivateKey *string `json:"agent_private_key"`
		PublicKeySSH    *string `json:"public_key_ssh"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return "", nil, errors.New("record is not a JSON object with string fields agent_runtime_id and agent_private_key")
	}
	switch {
	case rec.AgentRuntimeID == nil || *rec.AgentRuntimeID == "":
		return "", nil, errors.New("record has no agent_runtime_id")
	case rec.AgentPrivateKey == nil || *rec.AgentPrivateKey == "":
		return "", nil, errors.New("record has no agent_private_key")
	}
	if err := validateID("agent_runtime_id", *rec.AgentRuntimeID); err != nil {
		return "", nil, fmt.Errorf("record: %w", err)
	}
	key, err := identity.ParsePrivateKey(*rec.AgentPrivateKey)
	if err != nil {
		return "", nil, fmt.Errorf("record agent_private_key: %w", err)
	}
	if rec.PublicKeySSH != nil && *rec.PublicKeySSH != key.SSHPublicKey() {
		return "", nil, errors.New("record public_key_ssh does not belong to agent_private_key")
	}
	return *rec.AgentRuntimeID, key, nil
}

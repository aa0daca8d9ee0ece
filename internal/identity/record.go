package identity

import (
	"encoding/json"
	"fmt"
)

// Record is an Agent Identity: a registered agent runtime and its signing
// key, plus the ChatGPT account it acts for. It is what an Agent Identity
// JWT carries and what provisioning from a ChatGPT login produces.
//
// AgentPrivateKey (standard base64 PKCS#8) is a [Secret], so a Record
// prints, logs and marshals with the key redacted; stores write it with
// [Record.StorageJSON].
type Record struct {
	AgentRuntimeID  string `json:"agent_runtime_id"`
	AgentPrivateKey Secret `json:"agent_private_key"`
	AccountID       string `json:"account_id"`
	ChatGPTUserID   string `json:"chatgpt_user_id"`
	Email           string `json:"email,omitempty"`
	PlanType        string `json:"plan_type"`
	IsFedRAMP       bool   `json:"chatgpt_account_is_fedramp"`
}

// Key parses the record's private key.
func (r *Record) Key() (*PrivateKey, error) {
	return ParsePrivateKey(r.AgentPrivateKey.Reveal())
}

// Validate checks that the record names a runtime and holds a usable key.
func (r *Record) Validate() error {
	if r.AgentRuntimeID == "" {
		return fmt.Errorf("%w: record has no agent_runtime_id", ErrInvalidKey)
	}
	_, err := r.Key()
	return err
}

// recordFields is a Record without methods, for [Record.Format].
type recordFields Record

// Format prints the record's fields under verb, the key redacted by its
// [Secret]. It is the one method the redaction needs here: without it fmt
// prints a *Record nested in a slice, map or struct under a verb such as
// %s or %q as a bad verb, a path that skips every field's own Format.
func (r Record) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), recordFields(r))
}

// StorageJSON encodes the record with its private key in clear, for the
// stores that must keep it (sealed or in a file only its owner reads).
// Everything else prints, logs and marshals a Record with the key redacted,
// because AgentPrivateKey is a [Secret]; this is the one way around that.
// [json.Unmarshal] into a Record reads what StorageJSON wrote.
func (r Record) StorageJSON() ([]byte, error) {
	return json.Marshal(struct {
		Record
		// The outer field shadows the embedded, redacting one.
		AgentPrivateKey string `json:"agent_private_key"`
	}{r, r.AgentPrivateKey.Reveal()})
}

package identity

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Record is an Agent Identity: a registered agent runtime and its signing
// key, plus the ChatGPT account it acts for. It is what an Agent Identity
// JWT carries and what provisioning from a ChatGPT login produces.
//
// AgentPrivateKey is a secret (standard base64 PKCS#8); Record redacts it in
// every fmt verb and in log/slog output.
type Record struct {
	AgentRuntimeID  string `json:"agent_runtime_id"`
	AgentPrivateKey string `json:"agent_private_key"`
	AccountID       string `json:"account_id"`
	ChatGPTUserID   string `json:"chatgpt_user_id"`
	Email           string `json:"email,omitempty"`
	PlanType        string `json:"plan_type"`
	IsFedRAMP       bool   `json:"chatgpt_account_is_fedramp"`
}

// Key parses the record's private key.
func (r *Record) Key() (*PrivateKey, error) {
	return ParsePrivateKey(r.AgentPrivateKey)
}

// Validate checks that the record names a runtime and holds a usable key.
func (r *Record) Validate() error {
	if r.AgentRuntimeID == "" {
		return fmt.Errorf("%w: record has no agent_runtime_id", ErrInvalidKey)
	}
	_, err := r.Key()
	return err
}

// String describes the record with its private key redacted.
func (r Record) String() string {
	return fmt.Sprintf("identity.Record{AgentRuntimeID:%q AccountID:%q ChatGPTUserID:%q Email:%q PlanType:%q IsFedRAMP:%t AgentPrivateKey:[REDACTED]}",
		r.AgentRuntimeID, r.AccountID, r.ChatGPTUserID, r.Email, r.PlanType, r.IsFedRAMP)
}

// GoString is [Record.String].
func (r Record) GoString() string { return r.String() }

// Format makes every fmt verb print [Record.String].
func (r Record) Format(f fmt.State, _ rune) { io.WriteString(f, r.String()) }

// LogValue logs the record without its private key.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("agent_runtime_id", r.AgentRuntimeID),
		slog.String("account_id", r.AccountID),
		slog.String("plan_type", r.PlanType),
		slog.Bool("fedramp", r.IsFedRAMP),
	)
}

// MarshalJSON writes the record with its private key redacted, so a record
// that reaches a JSON log (slog's JSON handler marshals values nested in
// maps and slices) does not leak it. Code that must store a record copies
// the fields into a struct of its own, as credentials.FileStore does.
func (r Record) MarshalJSON() ([]byte, error) {
	type public struct {
		AgentRuntimeID  string `json:"agent_runtime_id"`
		AgentPrivateKey string `json:"agent_private_key"`
		AccountID       string `json:"account_id"`
		ChatGPTUserID   string `json:"chatgpt_user_id"`
		Email           string `json:"email,omitempty"`
		PlanType        string `json:"plan_type"`
		IsFedRAMP       bool   `json:"chatgpt_account_is_fedramp"`
	}
	return json.Marshal(public{r.AgentRuntimeID, "[REDACTED]", r.AccountID, r.ChatGPTUserID, r.Email, r.PlanType, r.IsFedRAMP})
}

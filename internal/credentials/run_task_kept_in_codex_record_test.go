package credentials

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The run task is the task_id of Codex's agent_identity record: read for
// the record's runtime only, written when absent or when it replaces the
// task the server refused, and otherwise left as another process stored
// it. What is written reads back in Codex's record schema.
func TestRunTaskKeptInCodexRecord(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(codexHome(t, "chatgpt_record.json"), AuthFileName)
	s := NewFileStore(path)
	if id, err := s.LoadRunTask(ctx, "rt-codex-1"); err != nil || id != "task-codex-1" {
		t.Fatalf("LoadRunTask = %q, %v; want Codex's task", id, err)
	}
	if id, _ := s.LoadRunTask(ctx, "rt-other"); id != "" {
		t.Fatalf("another runtime's task: %q", id)
	}
	// Another process stored a task meanwhile: it is kept.
	if err := s.SaveRunTask(ctx, "rt-codex-1", "task-mine", ""); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.LoadRunTask(ctx, "rt-codex-1"); id != "task-codex-1" {
		t.Fatalf("a stored task was overwritten: %q", id)
	}
	// The server refused Codex's task: the replacement is written.
	if err := s.SaveRunTask(ctx, "rt-codex-1", "task-new", "task-codex-1"); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.LoadRunTask(ctx, "rt-codex-1"); id != "task-new" {
		t.Fatalf("replacement not written: %q", id)
	}
	// A record of another runtime is never given this runtime's task.
	if err := s.SaveRunTask(ctx, "rt-other", "task-x", ""); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("task-x")) {
		t.Fatal("task of another runtime written")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	var codexRecord struct {
		AgentRuntimeID  string `json:"agent_runtime_id"`
		AgentPrivateKey string `json:"agent_private_key"`
		AccountID       string `json:"account_id"`
		ChatGPTUserID   string `json:"chatgpt_user_id"`
		Email           string `json:"email"`
		PlanType        string `json:"plan_type"`
		IsFedRAMP       bool   `json:"chatgpt_account_is_fedramp"`
		TaskID          string `json:"task_id"`
		Future          bool   `json:"future_record_member"` // the fixture's own unknown member, kept
	}
	dec := json.NewDecoder(bytes.NewReader(top["agent_identity"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&codexRecord); err != nil || codexRecord.TaskID != "task-new" || codexRecord.AgentRuntimeID != "rt-codex-1" {
		t.Fatalf("record %+v, %v", codexRecord.TaskID, err)
	}
}

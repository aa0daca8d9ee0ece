package identity

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRecordStorageJSONKeepsTheKey: json.Marshal of a Record redacts the
// private key (a Secret), while StorageJSON, the stores' path, writes it in
// clear under the same member name, and json.Unmarshal reads it back into
// an equal record.
func TestRecordStorageJSONKeepsTheKey(t *testing.T) {
	rec := Record{AgentRuntimeID: vecRuntime, AgentPrivateKey: vecPKCS8v2, AccountID: "acct", ChatGPTUserID: "user",
		Email: "a@example.com", PlanType: "pro", IsFedRAMP: true}
	public, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(public), vecPKCS8v2) || !strings.Contains(string(public), `"agent_private_key":"[REDACTED]"`) {
		t.Fatalf("json.Marshal did not redact the key: %s", public)
	}
	stored, err := rec.StorageJSON()
	if err != nil {
		t.Fatal(err)
	}
	var members map[string]any
	if err := json.Unmarshal(stored, &members); err != nil {
		t.Fatal(err)
	}
	if members["agent_private_key"] != vecPKCS8v2 || len(members) != 7 {
		t.Fatalf("StorageJSON wrote %d members, key present %t; want the 7 members with the key in clear",
			len(members), members["agent_private_key"] == vecPKCS8v2)
	}
	var back Record
	if err := json.Unmarshal(stored, &back); err != nil {
		t.Fatal(err)
	}
	if back != rec {
		t.Fatalf("round trip changed the record: %+v", back)
	}
	if _, err := back.Key(); err != nil {
		t.Fatalf("the stored key does not parse: %v", err)
	}
}

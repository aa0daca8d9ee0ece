package credentials

import (
	"os"
	"path/filepath"
	"testing"
)

// RemoveIfEmpty removes a file holding nothing and keeps one holding any
// member, known or not.
func TestRemoveIfEmpty(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, AuthFileName)
	for _, tc := range []struct {
		doc     string
		removed bool
	}{
		{`{"OPENAI_API_KEY": null}`, true},
		{`{}`, true},
		{`{"OPENAI_API_KEY": null, "future": 1}`, false},
		{`{"personal_access_token": "at-x"}`, false},
	} {
		if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := NewFileStore(path).RemoveIfEmpty(testCtx(t))
		if err != nil || got != tc.removed {
			t.Errorf("%s: removed = %v, %v; want %v", tc.doc, got, err, tc.removed)
		}
		if _, err := os.Stat(path); os.IsNotExist(err) != tc.removed {
			t.Errorf("%s: file present = %v", tc.doc, !os.IsNotExist(err))
		}
	}
	os.Remove(path)
	if got, err := NewFileStore(path).RemoveIfEmpty(testCtx(t)); err != nil || got {
		t.Errorf("missing file: %v, %v", got, err)
	}
}

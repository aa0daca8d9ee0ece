//go:build unix

package credentials

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A FIFO named auth.json is refused without opening it (opening a FIFO for
// reading would block until a writer appears).
func TestLoadRefusesFIFO(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, AuthFileName)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, err := Load(LoadOptions{CodexHome: home, Getenv: fakeEnv(nil)})
	if !errors.Is(err, ErrInvalidAuthFile) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v", err)
	}
	if _, err := NewFileStore(path).Load(); !errors.Is(err, ErrInvalidAuthFile) {
		t.Fatalf("FileStore.Load: err = %v", err)
	}
	if _, err := NewFileTokenSource(path).Token(testCtx(t)); !errors.Is(err, ErrInvalidAuthFile) {
		t.Fatalf("file token source: err = %v", err)
	}
}

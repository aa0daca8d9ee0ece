package login

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A caller that cancels while the auth command runs gets a context error
// (errors.Is context.Canceled), not the killed command's exit status.
func TestCommandTokenSourceReportsCallerCancellation(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	ts, err := CommandTokenSource([]string{script(t, "touch '"+marker+"'\nexec sleep 30")}, "", testWait, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		for deadline := time.Now().Add(testWait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(marker); err == nil || ctx.Err() != nil {
				return
			}
		}
	}()
	_, err = ts.Token(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if strings.Contains(err.Error(), "status") {
		t.Errorf("err = %v names an exit status", err)
	}
}

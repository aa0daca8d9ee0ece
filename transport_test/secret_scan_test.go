package transport_test

// The secret scans: logs and error texts searched for every credential a
// test knows.

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncLog is a goroutine-safe buffer for slog handlers.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// debugLoggers returns a debug logger that writes text records to one buffer
// and JSON records to another.
func debugLoggers() (*slog.Logger, *syncLog, *syncLog) {
	text, js := &syncLog{}, &syncLog{}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	return slog.New(slog.NewMultiHandler(slog.NewTextHandler(text, opts), slog.NewJSONHandler(js, opts))), text, js
}

// errTexts renders err with every verb a caller might log it with.
func errTexts(err error) []string {
	if err == nil {
		return nil
	}
	return []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%s", err)}
}

// checkNoSecret fails when text contains any of secrets. It never prints a
// secret, only its length and position in the list.
func checkNoSecret(t testing.TB, what, text string, secrets []string) {
	t.Helper()
	for i, s := range secrets {
		if len(s) < 8 {
			continue // too short to be a credential; would match by chance
		}
		if strings.Contains(text, s) {
			t.Errorf("%s contains secret #%d (%d bytes)", what, i, len(s))
		}
	}
}

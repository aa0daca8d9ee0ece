package redisstore

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logRecorder is a slog.Handler that keeps every record's level and message.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many records start with level (e.g. "WARN").
func (l *logRecorder) count(level string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if strings.HasPrefix(r, level+" ") {
			n++
		}
	}
	return n
}

func (l *logRecorder) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.recs, "\n")
}

const testOpTimeout = 2 * time.Second

func newStore(tb testing.TB, addr string, opts Options) *Store {
	tb.Helper()
	if opts.Prefix == "" {
		opts.Prefix = uniquePrefix(tb)
	}
	if opts.OpTimeout == 0 {
		// Generous, because the race detector and several replica processes
		// share a small CI machine; the outage tests exercise short timeouts.
		opts.OpTimeout = testOpTimeout
	}
	s, err := New(newClient(tb, addr), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// fixedID registers by returning id and counting calls.
func fixedID(id string, calls *atomic.Int32) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		calls.Add(1)
		return id, nil
	}
}

// waitUntil polls cond, which observes another goroutine's progress
// through counters that have no channel, for at most limit.
func waitUntil(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/internal/taskcache"
)

// With no Redis at all every Resolve registers locally; the outage is
// counted and logged once, and Forget reports a temporary *Error.
func TestUnreachableRedisFallsBackLocally(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens there
	logs := &logRecorder{}
	s := newStore(t, addr, Options{Logger: slog.New(logs), OpTimeout: DefaultOpTimeout})
	var calls atomic.Int32
	for i := range 5 {
		id, err := s.Resolve(context.Background(), taskcache.StoreKey{RuntimeID: "rt", ExternalRef: fmt.Sprint(i)}, fixedID("local", &calls))
		if err != nil || id != "local" {
			t.Fatalf("Resolve = %q, %v", id, err)
		}
	}
	err := s.Forget(context.Background(), taskcache.StoreKey{RuntimeID: "rt", ExternalRef: "0"}, "local")
	var se *Error
	if !errors.As(err, &se) || se.Op != "forget" || !se.Temporary() {
		t.Fatalf("Forget err = %v", err)
	}
	st := s.Stats()
	if calls.Load() != 5 || st.LocalFallbacks != 5 || st.Outages != 1 || !st.Down || st.Errors != 6 {
		t.Fatalf("stats %+v after %d registrations", st, calls.Load())
	}
	if n := logs.count("WARN"); n != 1 {
		t.Fatalf("%d outage warnings, want 1:\n%s", n, logs.all())
	}
}

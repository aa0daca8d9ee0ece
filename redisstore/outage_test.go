package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/identitytest"
)

// Acceptance 3: Redis stops in the middle of the run, frozen (SIGSTOP, so
// every call times out) or killed and later restarted on the same port
// (calls are refused, and the data is gone). No request fails; only threads
// first seen during the outage register once per replica; the outage is
// logged once per replica; after Redis returns, de-duplication resumes.
func TestRedisOutageMidRun(t *testing.T) {
	for _, mode := range []string{"paused", "killed"} {
		t.Run(mode, func(t *testing.T) { testOutage(t, mode) })
	}
}

func testOutage(t *testing.T, mode string) {
	const replicas, keys, requests = 2, 5, 2
	r := startRedis(t, 0)
	srv := newServer(t)
	rec := newIdentity(t, srv)
	prefix := uniquePrefix(t)
	type node struct {
		*replica
		store *Store
		logs  *logRecorder
	}
	nodes := make([]node, replicas)
	for i := range nodes {
		logs := &logRecorder{}
		s := newStore(t, r.addr, Options{Prefix: prefix, Logger: slog.New(logs), OpTimeout: time.Second})
		nodes[i] = node{replica: newReplica(t, srv.URL(), rec, s, nil), store: s, logs: logs}
	}

	// phase sends requests on every thread of every group from every
	// replica at once and fails the test if any request fails.
	phase := func(groups ...string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, replicas*len(groups)*keys*requests)
		for _, n := range nodes {
			for _, g := range groups {
				for k := range keys {
					wg.Go(func() {
						for range requests {
							if _, err := n.do(context.Background(), srv.URL(), fmt.Sprintf("%s-%d", g, k)); err != nil {
								errs <- err
							}
						}
					})
				}
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("request failed: %v", err)
		}
	}
	checkRegs := func(group string, want int) {
		t.Helper()
		st := srv.Stats()
		for k := range keys {
			ref := fmt.Sprintf("%s-%d", group, k)
			if got := st.RegistrationsByExternalRef[ref]; got != want {
				t.Fatalf("%s: %d registrations, want %d (%s)", ref, got, want, mode)
			}
		}
	}

	phase("before")
	checkRegs("before", 1)

	switch mode {
	case "paused":
		r.pause()
	case "killed":
		r.kill()
	}
	phase("before", "during")
	checkRegs("before", 1)        // cached in every replica: no new registration
	checkRegs("during", replicas) // first seen in the outage: one per replica
	for i, n := range nodes {
		st := n.store.Stats()
		if st.LocalFallbacks != keys || st.Outages != 1 || !st.Down {
			t.Fatalf("replica %d during the outage: %+v", i, st)
		}
		if w := n.logs.count("WARN"); w != 1 {
			t.Fatalf("replica %d logged %d outage warnings for %d fallbacks, want 1:\n%s", i, w, keys, n.logs.all())
		}
	}

	switch mode {
	case "paused":
		r.resume()
	case "killed":
		r.restart()
	}
	phase("before", "during", "after")
	checkRegs("before", 1)
	checkRegs("during", replicas)
	checkRegs("after", 1) // de-duplicated again
	for i, n := range nodes {
		st := n.store.Stats()
		if st.Down || st.Outages != 1 || st.LocalFallbacks != keys {
			t.Fatalf("replica %d after the outage: %+v", i, st)
		}
		if n.logs.count("WARN") != 1 || n.logs.count("INFO") != 1 {
			t.Fatalf("replica %d: want one outage warning and one recovery record:\n%s", i, n.logs.all())
		}
		if ts := n.rt.Stats(); ts.Failures != 0 {
			t.Fatalf("replica %d: %d failed requests", i, ts.Failures)
		}
	}
	st := srv.Stats()
	if want := 3*keys*1 + keys*(replicas-1); st.ThreadTaskRegistrations != want {
		t.Fatalf("%d registrations, want %d", st.ThreadTaskRegistrations, want)
	}
	if st.RequestsByMode[identitytest.ModeAssertion] != replicas*keys*requests*(1+2+3) {
		t.Fatalf("accepted requests %v", st.RequestsByMode)
	}
	t.Logf("%s: %d registrations for %d threads on %d replicas; %d only for the %d threads first seen during the outage",
		mode, st.ThreadTaskRegistrations, 3*keys, replicas, keys*replicas, keys)
}

package workload_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// TestColdCompare runs the cold-path comparison with a few threads on the
// in-process server: both paths completed every thread, each cost one
// registration at the server (checked by the workload), and the figures
// are real measurements.
func TestColdCompare(t *testing.T) {
	r, err := workload.ColdCompare(workload.ColdCompareOptions{Threads: 12, Concurrency: []int{1, 4}, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !r.ServerInProcess {
		t.Error("ServerInProcess is false for the in-process server")
	}
	for _, p := range workload.ColdPaths {
		if r.Registrations[p] != 12*2+4 {
			t.Errorf("%s: %d registrations, want %d (two levels of 12 and a warm-up of 4)", p, r.Registrations[p], 12*2+4)
		}
		for _, c := range r.Concurrency {
			if l := r.Levels[p][c]; l.Threads != 12 || !(l.PerSecond > 0) {
				t.Errorf("%s at %d: %+v", p, c, l)
			}
		}
	}
	if !(r.RateRatio(1) > 0) {
		t.Errorf("rate ratio %v", r.RateRatio(1))
	}
}

// TestColdCompareServerProcess runs the reference server in another
// process (this test binary, re-run), as the report does so that CPU time
// is the client's alone.
func TestColdCompareServerProcess(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), serveReferenceEnv+"=1")
	cmd.Stderr = os.Stderr
	srv, err := workload.StartReferenceProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	r, err := workload.ColdCompare(workload.ColdCompareOptions{Threads: 6, Concurrency: []int{2}, Rounds: 1, Server: srv})
	if cerr := srv.Close(); cerr != nil {
		t.Errorf("server process: %v", cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.ServerInProcess || r.Registrations[workload.ColdOurs] != -1 {
		t.Errorf("in process %v, registrations %v; want another process, counts unknown", r.ServerInProcess, r.Registrations)
	}
	if l := r.Levels[workload.ColdOurs][2]; l.Threads != 6 || !(l.CPU > 0) {
		t.Errorf("ours: %+v", l)
	}
}

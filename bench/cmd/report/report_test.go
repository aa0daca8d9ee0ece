package main

import (
	"encoding/xml"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// synthetic returns a report whose cached modes are fast and scale, so
// that every check passes, for the tests to perturb.
func synthetic() *report {
	rep := &report{
		Cases: workload.Cases(), CPUs: []int{1, 2}, SweepLevels: []int{1, 2, 4},
		Micro: map[microKey]figure{}, Sweep: map[string]map[int]figure{}, SweepMaxProcs: 2, ReadPathGoroutines: 4,
		Stampede: workload.StampedeResult{Requests: 10_000, Latency: 2 * time.Millisecond,
			Single: 2 * time.Millisecond, Total: 20 * time.Millisecond, Warm: 10 * time.Millisecond,
			Registrations: 1, Signatures: 1},
		Memory:     workload.MemoryResult{Keys: 100_000, KeyLen: 17, Cached: 100_000, Registrations: 100_000, HeapDelta: 15_000_000, BusyHeapDelta: 50_000_000},
		MemoryUUID: workload.MemoryResult{Keys: 100_000, KeyLen: 36, Cached: 100_000, Registrations: 100_000, HeapDelta: 17_000_000, BusyHeapDelta: 52_000_000},
		Contention: []workload.ContentionResult{
			{Goroutines: 64, Duration: 5 * time.Second, GOMAXPROCS: 1, Requests: 1_000_000, Signatures: 6, Seconds: 6},
			{Goroutines: 64, Duration: 5 * time.Second, GOMAXPROCS: 2, Requests: 1_000_000, Signatures: 5, Seconds: 6},
		},
		Many: &manyFigures{Keys: 100_000, Random: figure{NsOp: 1400}, Hot: figure{NsOp: 1000}},
		ColdCompare: &workload.ColdCompareResult{Concurrency: []int{1, 8}, Levels: map[string]map[int]workload.ColdLevel{
			workload.ColdOurs:   {1: {Threads: 100, PerSecond: 1000, CPU: 100 * time.Microsecond}, 8: {Threads: 100, PerSecond: 3000, CPU: 110 * time.Microsecond}},
			workload.ColdByHand: {1: {Threads: 100, PerSecond: 1010, CPU: 95 * time.Microsecond}, 8: {Threads: 100, PerSecond: 3100, CPU: 100 * time.Microsecond}},
		}},
		Loopback: workload.LoopbackResult{Paths: map[string]workload.PathResult{
			workload.PathBare: {RPS: 10_000}, workload.PathWire: {RPS: 9_900}, workload.PathFloor: {RPS: 9_700},
			workload.PathOurs: {RPS: 9_800}}},
		ColdThread: workload.ColdThreadResult{Keys: 1000, Rounds: 10, RedisAddr: "127.0.0.1:6379", RedisStarted: true,
			InMemory: workload.ColdPathResult{Median: 400 * time.Microsecond, Mean: 450 * time.Microsecond, Registrations: 1000, OnceRegistered: 1000},
			Redis:    workload.ColdPathResult{Median: 500 * time.Microsecond, Mean: 540 * time.Microsecond, Registrations: 1000, OnceRegistered: 1000}},
	}
	for _, c := range rep.Cases {
		ns, allocs := 2000.0, int64(10)
		switch {
		case c.Name == "bare":
			ns, allocs = 3, 0
		case c.Kind == workload.Ours:
			ns, allocs = 1500, 8
		}
		for _, cpu := range rep.CPUs {
			rep.Micro[microKey{c.Name, cpu, false}] = figure{NsOp: ns, AllocsOp: allocs}
			rep.Micro[microKey{c.Name, cpu, true}] = figure{NsOp: ns / float64(cpu), AllocsOp: allocs}
		}
		rep.Sweep[c.Name] = map[int]figure{}
		for _, g := range rep.SweepLevels {
			rep.Sweep[c.Name][g] = figure{NsOp: ns / 2}
		}
	}
	return rep
}

func failed(cs []check) []string {
	var out []string
	for _, c := range cs {
		if !c.OK {
			out = append(out, c.Target)
		}
	}
	return out
}

func TestChecks(t *testing.T) {
	rep := synthetic()
	if f := failed(checks(rep)); len(f) != 0 {
		t.Fatalf("synthetic report fails %v", f)
	}

	slow := synthetic()
	slow.Micro[microKey{"thread", 2, true}] = figure{NsOp: 1200, AllocsOp: 8} // 1.2× floor's 1000
	if f := failed(checks(slow)); len(f) != 2 || !strings.Contains(f[0], "floor") || !strings.Contains(f[1], "oauth2") {
		t.Errorf("1.2× the floor and the peer: failed %v, want the floor and oauth2 checks", f)
	}

	allocs := synthetic()
	allocs.Micro[microKey{"bearer", 1, false}] = figure{NsOp: 1500, AllocsOp: 12}
	if f := failed(checks(allocs)); len(f) != 1 || !strings.Contains(f[0], "allocs") {
		t.Errorf("floor+2 allocations: failed %v", f)
	}

	noScale := synthetic()
	noScale.Micro[microKey{"process", 2, true}] = figure{NsOp: 1600, AllocsOp: 8} // worse than -cpu 1's 1500
	if f := failed(checks(noScale)); len(f) != 3 || !strings.Contains(f[2], "-cpu 2") {
		t.Errorf("no scaling: failed %v", f)
	}

	other := synthetic()
	other.Stampede.Signatures = 2
	other.MemoryUUID.HeapDelta = 25_000_000
	other.Loopback.Paths[workload.PathOurs] = workload.PathResult{RPS: 9_500} // 0.96× wire
	other.ReadPathLocks = 2
	if f := failed(checks(other)); len(f) != 4 {
		t.Errorf("lock, stampede, memory and loopback misses: failed %v", f)
	}

	rest := synthetic()
	rest.Contention[0].Signatures = 7
	rest.Many.Random.NsOp = 1600
	rest.ColdCompare.Levels[workload.ColdOurs][8] = workload.ColdLevel{Threads: 100, PerSecond: 2800, CPU: 120 * time.Microsecond}
	f := failed(checks(rest))
	want := []string{"2. contention", "4. cold thread: CPU", "4. cold thread: new threads", "5. many threads"}
	if len(f) != len(want) {
		t.Fatalf("contention, cold and many-threads misses: failed %v", f)
	}
	for i, w := range want {
		if !strings.HasPrefix(f[i], w) {
			t.Errorf("miss %d is %q, want %q", i, f[i], w)
		}
	}
}

func TestRender(t *testing.T) {
	rep := synthetic()
	rep.ChartPath = "overhead.svg"
	md := renderMarkdown(rep)
	for _, want := range []string{"### Targets", "| thread |", "![per-request overhead versus concurrency](overhead.svg)", "**missed**"} {
		if want == "**missed**" {
			if strings.Contains(md, want) {
				t.Errorf("passing report shows a miss")
			}
			continue
		}
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	for _, want := range []string{
		"| cold thread with the Redis store ÷ in-memory | 1.25× by median (500µs vs 400µs: +100µs per new thread) | reported | — |",
		"Redis 127.0.0.1:6379 (started by the report) | in memory: median 400µs, mean 450µs; with the Redis store: median 500µs, mean 540µs; added +100µs per new thread, 1.25× by median (1.20× by mean)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	skipped := synthetic()
	skipped.ColdThread = workload.ColdThreadResult{Skipped: true, SkipReason: "no Redis here"}
	md = renderMarkdown(skipped)
	for _, want := range []string{
		"| cold thread with the Redis store ÷ in-memory | skipped: no Redis here | reported | — |",
		"| cold thread: first request of a new thread key, in memory and with the Redis store | skipped: no Redis here |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown of a skipped cold thread lacks %q", want)
		}
	}
	if f := failed(checks(skipped)); len(f) != 0 {
		t.Errorf("a skipped cold thread fails %v", f)
	}
	svg := renderSVG(rep)
	dec := xml.NewDecoder(strings.NewReader(svg))
	lines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if want := len(rep.Cases) - 1; lines != want {
		t.Errorf("%d series in the chart, want %d (every case but bare)", lines, want)
	}
}

// TestRunTiny runs the whole report pipeline with tiny settings.
func TestRunTiny(t *testing.T) {
	old := flag.Lookup("test.benchtime").Value.String()
	if err := flag.Set("test.benchtime", "50x"); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("test.benchtime", old)
	rep, err := run(config{
		Rounds: 1, StampedeN: 200, StampedeDelay: time.Millisecond, MemoryKeys: 300, MemoryWorkers: 2,
		ManyKeys: 300, Contention: 50 * time.Millisecond,
		ColdCompare: &workload.ColdCompareOptions{Threads: 8, Concurrency: []int{1, 4}, Rounds: 2},
		Loopback:    workload.LoopbackOptions{Concurrency: 2, Rounds: 1, Round: 20 * time.Millisecond},
		SweepLevels: []int{1, 4}, CPUs: []int{1, 2}, SweepMaxProcs: 2, LoopbackChecks: true,
		ColdThread: &workload.ColdThreadOptions{Keys: 10, Rounds: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Micro), 2*2*len(rep.Cases); got != want {
		t.Errorf("%d per-request figures, want %d", got, want)
	}
	if rep.Stampede.Registrations != 1 || rep.Stampede.Signatures != 1 {
		t.Errorf("stampede: %d registrations, %d signatures", rep.Stampede.Registrations, rep.Stampede.Signatures)
	}
	if rep.ReadPathLocks != 0 {
		t.Errorf("read path: %d contended locks", rep.ReadPathLocks)
	}
	if rep.Memory.Cached != 300 {
		t.Errorf("memory: %d cached, want 300", rep.Memory.Cached)
	}
	if len(rep.Contention) != 2 || rep.Many == nil || rep.ColdCompare == nil || rep.ColdClient == nil || rep.MemoryUUID.KeyLen != 36 {
		t.Errorf("contention %d runs, many %v, cold compare %v, UUID keys of %d bytes", len(rep.Contention), rep.Many != nil, rep.ColdCompare != nil, rep.MemoryUUID.KeyLen)
	}
	md := renderMarkdown(rep)
	for _, want := range []string{"| flag-on |", "2. contention", "4. cold thread", "5. many threads"} {
		if !strings.Contains(md, want) {
			t.Errorf("rendered report lacks %q", want)
		}
	}
	if !strings.Contains(md, "| flag-off |") {
		t.Error("rendered report lacks a case")
	}
	if c := rep.ColdThread; !c.Skipped && (c.Redis.OnceRegistered != 10 || c.Ratio() <= 0) {
		t.Errorf("cold thread: %d keys registered once with Redis, ratio %v", c.Redis.OnceRegistered, c.Ratio())
	}
	if !strings.Contains(md, "| cold thread with the Redis store ÷ in-memory |") {
		t.Error("rendered report lacks the cold-thread target")
	}
}

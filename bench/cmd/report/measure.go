package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// run measures everything cfg asks for, in order: the per-request cost,
// the read-path locks and the concurrency sweep on the cases' targets,
// then the stampede, memory, contention, many threads, the cold path,
// loopback and the cold thread.
func run(cfg config) (*report, error) {
	logf := progressLog(cfg.Progress)
	rep := newReport(cfg)
	defer func() { rep.LoadAfter = loadAverage() }()
	ctx, cancel := workload.HandlerContext()
	defer cancel()
	targets, err := buildTargets(ctx, rep.Cases)
	if err != nil {
		return nil, err
	}
	prevProcs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prevProcs)
	if err := measureTargets(cfg, rep, targets, logf); err != nil {
		return nil, err
	}
	targets = nil
	if err := measureFleetShapes(cfg, rep, logf); err != nil {
		return nil, err
	}
	stopReference, err := measureColdPath(cfg, rep, logf)
	defer stopReference()
	if err != nil {
		return nil, err
	}
	if err := measureLoopback(cfg, rep, logf); err != nil {
		return nil, err
	}
	if err := measureColdThread(cfg, rep, logf); err != nil {
		return nil, err
	}
	return rep, nil
}

// progressLog returns the logger of run's progress lines on w (nil: none),
// each stamped with the seconds since the run began.
func progressLog(w io.Writer) func(format string, args ...any) {
	began := time.Now()
	return func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, "report: [%5.1fs] "+format+"\n",
				append([]any{time.Since(began).Seconds()}, args...)...)
		}
	}
}

// newReport is the report of a run of cfg before anything is measured.
func newReport(cfg config) *report {
	return &report{
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		Rounds: cfg.Rounds, SweepRounds: max(cfg.SweepRounds, 1), Benchtime: cfg.Benchtime, SweepMaxProcs: cfg.SweepMaxProcs,
		Cases: workload.Cases(), CPUs: cfg.CPUs, SweepLevels: cfg.SweepLevels,
		Micro: map[microKey]figure{}, Sweep: map[string]map[int]figure{},
		LoadBefore: loadAverage(),
	}
}

// buildTargets builds the target of every case.
func buildTargets(ctx context.Context, cases []workload.Case) ([]*workload.Target, error) {
	targets := make([]*workload.Target, len(cases))
	for i, c := range cases {
		t, err := c.Build(ctx, workload.Env{})
		if err != nil {
			return nil, err
		}
		targets[i] = t
	}
	return targets, nil
}

// measureTargets measures the per-request cost, the read-path locks and
// the concurrency sweep, then checks that every cached target stayed
// cached.
func measureTargets(cfg config, rep *report, targets []*workload.Target, logf func(string, ...any)) error {
	if err := measurePerRequest(cfg, rep, targets, logf); err != nil {
		return err
	}
	if err := measureReadPathLocks(cfg, rep, logf); err != nil {
		return err
	}
	if err := measureSweep(cfg, rep, targets, logf); err != nil {
		return err
	}
	for _, t := range targets {
		if err := t.CheckCached(); err != nil {
			return fmt.Errorf("%s: %w", t.Case.Name, err)
		}
	}
	return nil
}

// measurePerRequest measures the per-request cost of every target at
// each of cfg.CPUs, serial and parallel, in interleaved rounds.
func measurePerRequest(cfg config, rep *report, targets []*workload.Target, logf func(string, ...any)) error {
	samples := map[microKey][]testing.BenchmarkResult{}
	for _, cpu := range cfg.CPUs {
		runtime.GOMAXPROCS(cpu)
		for r := range cfg.Rounds {
			logf("per-request, -cpu %d, round %d/%d", cpu, r+1, cfg.Rounds)
			for _, i := range rotation(len(targets), r) {
				t := targets[i]
				for _, par := range []bool{false, true} {
					fn := workload.Serial
					if par {
						fn = workload.Parallel
					}
					res, err := bench(func(b *testing.B) { fn(b, t) })
					if err != nil {
						return fmt.Errorf("%s: %w", t.Case.Name, err)
					}
					k := microKey{t.Case.Name, cpu, par}
					samples[k] = append(samples[k], res)
				}
			}
		}
	}
	for k, rs := range samples {
		rep.Micro[k] = median(rs)
	}
	return nil
}

// measureReadPathLocks counts, by the mutex profile, the locks on the read
// path (GOMAXPROCS 2 and up).
func measureReadPathLocks(cfg config, rep *report, logf func(string, ...any)) error {
	runtime.GOMAXPROCS(cfg.SweepMaxProcs)
	rep.ReadPathLocks, rep.ReadPathGoroutines = -1, 4
	if cfg.SweepMaxProcs >= 2 {
		logf("read-path locks: %d goroutines per cached mode", rep.ReadPathGoroutines)
		n, err := workload.ReadPathLocks(rep.ReadPathGoroutines, 20_000)
		if err != nil {
			return err
		}
		rep.ReadPathLocks = n
	}
	return nil
}

// measureSweep measures the overhead of every target at each concurrency
// level, in interleaved rounds.
func measureSweep(cfg config, rep *report, targets []*workload.Target, logf func(string, ...any)) error {
	sweep := map[string]map[int][]testing.BenchmarkResult{}
	for r := range max(cfg.SweepRounds, 1) {
		logf("concurrency sweep, round %d/%d", r+1, max(cfg.SweepRounds, 1))
		for _, g := range cfg.SweepLevels {
			for _, i := range rotation(len(targets), r) {
				t := targets[i]
				res, err := bench(func(b *testing.B) { workload.Concurrent(g)(b, t) })
				if err != nil {
					return fmt.Errorf("%s at %d goroutines: %w", t.Case.Name, g, err)
				}
				if sweep[t.Case.Name] == nil {
					sweep[t.Case.Name] = map[int][]testing.BenchmarkResult{}
				}
				sweep[t.Case.Name][g] = append(sweep[t.Case.Name][g], res)
			}
		}
	}
	for name, byG := range sweep {
		rep.Sweep[name] = map[int]figure{}
		for g, rs := range byG {
			rep.Sweep[name][g] = median(rs)
		}
	}
	return nil
}

// measureFleetShapes measures the stampede, the memory per thread, the
// contention on one thread and many threads.
func measureFleetShapes(cfg config, rep *report, logf func(string, ...any)) error {
	logf("stampede: %d first requests, %v registrations", cfg.StampedeN, cfg.StampedeDelay)
	var err error
	if rep.Stampede, err = workload.Stampede(cfg.StampedeN, cfg.StampedeDelay); err != nil {
		return err
	}
	logf("memory: %d thread keys of 17 and of 36 bytes", cfg.MemoryKeys)
	if rep.Memory, err = workload.Memory(workload.MemoryOptions{Keys: cfg.MemoryKeys, Workers: cfg.MemoryWorkers}); err != nil {
		return err
	}
	if rep.MemoryUUID, err = workload.Memory(workload.MemoryOptions{Keys: cfg.MemoryKeys, Workers: cfg.MemoryWorkers, UUIDKeys: true}); err != nil {
		return err
	}
	if cfg.Contention > 0 {
		for _, cpu := range cfg.CPUs {
			logf("contention: 64 goroutines on one thread for %v at -cpu %d", cfg.Contention, cpu)
			r, err := workload.Contention(64, cpu, cfg.Contention)
			if err != nil {
				return err
			}
			rep.Contention = append(rep.Contention, r)
		}
	}
	if cfg.ManyKeys > 0 {
		logf("many threads: %d warm keys, random versus hot", cfg.ManyKeys)
		if rep.Many, err = manyThreads(cfg); err != nil {
			return err
		}
	}
	return nil
}

// measureColdPath measures the cold-path comparison, ours versus by hand,
// with and without network. stop ends the reference server (the run
// keeps it until its end); it is never nil.
func measureColdPath(cfg config, rep *report, logf func(string, ...any)) (stop func(), err error) {
	stop = func() {}
	if cfg.ColdCompare != nil {
		logf("cold client: ours versus by hand without network")
		if rep.ColdClient, err = coldClient(cfg); err != nil {
			return stop, err
		}
		opts := *cfg.ColdCompare
		if len(cfg.ReferenceCommand) > 0 {
			srv, err := workload.StartReferenceProcess(exec.Command(cfg.ReferenceCommand[0], cfg.ReferenceCommand[1:]...))
			if err != nil {
				return stop, err
			}
			stop = func() { srv.Close() }
			opts.Server = srv
		}
		logf("cold path: ours versus by hand, %d new threads per path and concurrency", opts.Threads)
		cc, err := workload.ColdCompare(opts)
		if err != nil {
			return stop, err
		}
		rep.ColdCompare = &cc
	}
	return stop, nil
}

// measureLoopback measures the keep-alive loopback paths and checks that
// the server saw both asserted and bare requests.
func measureLoopback(cfg config, rep *report, logf func(string, ...any)) error {
	var err error
	logf("loopback: %d rounds of %v per path", cfg.Loopback.Rounds, cfg.Loopback.Round)
	if rep.Loopback, err = workload.Loopback(cfg.Loopback); err != nil {
		return err
	}
	if cfg.LoopbackChecks && (rep.Loopback.Asserted == 0 || rep.Loopback.Unauthenticated == 0) {
		return fmt.Errorf("loopback: the server saw %d asserted and %d bare requests; both must be non-zero",
			rep.Loopback.Asserted, rep.Loopback.Unauthenticated)
	}
	return nil
}

// measureColdThread measures the first request of new threads in memory
// and with the Redis store, and checks that each key registered once.
func measureColdThread(cfg config, rep *report, logf func(string, ...any)) error {
	var err error
	if cfg.ColdThread == nil {
		rep.ColdThread = workload.ColdThreadResult{Skipped: true, SkipReason: "not measured (-cold-threads 0)"}
		return nil
	}
	logf("cold thread: first requests of new thread keys, in memory and with the Redis store")
	if rep.ColdThread, err = workload.ColdThread(*cfg.ColdThread); err != nil {
		return err
	}
	if c := rep.ColdThread; c.Skipped {
		logf("cold thread: skipped: %s", c.SkipReason)
	} else if c.InMemory.OnceRegistered != c.Keys || c.Redis.OnceRegistered != c.Keys ||
		c.InMemory.Registrations != c.Keys || c.Redis.Registrations != c.Keys {
		// A key registered twice or never means the transport or the store
		// is wrong, and the latencies measure something else.
		return fmt.Errorf("cold thread: %d keys per path, but the server registered %d (%d keys once) in memory and %d (%d keys once) with Redis",
			c.Keys, c.InMemory.Registrations, c.InMemory.OnceRegistered, c.Redis.Registrations, c.Redis.OnceRegistered)
	}
	return nil
}

// coldClient runs workload.ColdClient's two benchmarks at GOMAXPROCS 1 in
// interleaved rounds.
func coldClient(cfg config) (*coldClientFigures, error) {
	c, err := workload.NewColdClient(10_000)
	if err != nil {
		return nil, err
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var ours, hand []testing.BenchmarkResult
	for r := range max(cfg.Rounds, 1) {
		fns := []func(*testing.B){c.Ours, c.ByHand}
		outs := []*[]testing.BenchmarkResult{&ours, &hand}
		for j := range fns {
			k := (j + r) % len(fns)
			res, err := bench(fns[k])
			if err != nil {
				return nil, fmt.Errorf("cold client: %w", err)
			}
			*outs[k] = append(*outs[k], res)
		}
	}
	return &coldClientFigures{Ours: median(ours), ByHand: median(hand)}, nil
}

// manyThreads runs the random and the hot case of the many-threads
// measurement at GOMAXPROCS 1 in interleaved rounds.
func manyThreads(cfg config) (*manyFigures, error) {
	m, cancel, err := workload.NewManyThreads(cfg.ManyKeys)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var random, hot []testing.BenchmarkResult
	for r := range max(cfg.Rounds, 1) {
		fns := []func(*testing.B){m.Random, m.Hot}
		outs := []*[]testing.BenchmarkResult{&random, &hot}
		for j := range fns {
			k := (j + r) % len(fns)
			res, err := bench(fns[k])
			if err != nil {
				return nil, fmt.Errorf("many threads: %w", err)
			}
			*outs[k] = append(*outs[k], res)
		}
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("many threads: %w", err)
	}
	return &manyFigures{Keys: cfg.ManyKeys, Random: median(random), Hot: median(hot)}, nil
}

// Command report runs every agentauth benchmark workload in one process and
// prints a Markdown table of the figures and of their ratios to the
// targets, and writes a chart (SVG) of the per-request overhead versus
// concurrency for our transport and its peers.
//
// Run it from the bench module:
//
//	go run -C bench ./cmd/report                 # table on stdout, chart in bench/overhead.svg
//	(cd bench && go run ./cmd/report -chart /tmp/c.svg -rounds 5)
//
// Progress goes to stderr. The per-request figures are medians over
// -rounds interleaved rounds (every case once per round, in a rotating
// order), so slow drift of a shared machine hits every case alike.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

func main() {
	testing.Init()
	var (
		chart     = flag.String("chart", "", "path of the SVG chart (default bench/overhead.svg from the repository root, overhead.svg from bench/)")
		rounds    = flag.Int("rounds", 5, "interleaved rounds per per-request figure (the median is reported)")
		sweepRnds = flag.Int("sweep-rounds", 3, "interleaved rounds per point of the concurrency sweep (the median is reported)")
		benchtime = flag.Duration("benchtime", 200*time.Millisecond, "target duration of each benchmark run")
		stampede  = flag.Int("stampede", 10_000, "concurrent first requests in the stampede")
		regDelay  = flag.Duration("registration-latency", 2*time.Millisecond, "stub registration latency in the stampede")
		memKeys   = flag.Int("memory-keys", 100_000, "thread keys in the memory measurement")
		manyKeys  = flag.Int("many-keys", 100_000, "warm thread keys in the many-threads measurement (0 skips it)")
		contDur   = flag.Duration("contention", 5*time.Second, "duration of the 64-goroutine contention run at each -cpu (0 skips it)")
		coldCmp   = flag.Int("cold-compare", 600, "new threads per path and concurrency in the cold-path comparison (0 skips it)")
		serveRef  = flag.Bool("serve-reference", false, "internal: run the reference server for the cold-path comparison on stdin/stdout")
		lbRounds  = flag.Int("loopback-rounds", 16, "rounds of each loopback path (bare, wire, floor, ours), in rotating order")
		lbRound   = flag.Duration("loopback-round", 250*time.Millisecond, "duration of each loopback round")
		lbConc    = flag.Int("loopback-concurrency", 8, "client goroutines on loopback")
		coldKeys  = flag.Int("cold-threads", 1000, "new thread keys per path (in-memory, Redis store) in the cold-thread measurement; 0 skips it")
		redisAddr = flag.String("redis", "", "Redis (host:port) of the cold-thread measurement (default $"+workload.RedisAddrEnv+", else a redis-server from PATH on a free loopback port)")
	)
	flag.Parse()
	if *serveRef {
		if err := workload.ServeReference(os.Stdin, os.Stdout); err != nil {
			fatal(err)
		}
		return
	}
	if *chart == "" {
		*chart = "overhead.svg"
		if _, err := os.Stat(filepath.Join("bench", "go.mod")); err == nil {
			*chart = filepath.Join("bench", "overhead.svg")
		}
	}
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		fatal(err)
	}
	cfg := config{
		Rounds:         *rounds,
		SweepRounds:    *sweepRnds,
		Benchtime:      *benchtime,
		StampedeN:      *stampede,
		StampedeDelay:  *regDelay,
		MemoryKeys:     *memKeys,
		Loopback:       workload.LoopbackOptions{Concurrency: *lbConc, Rounds: *lbRounds, Round: *lbRound},
		SweepLevels:    workload.SweepLevels,
		CPUs:           []int{1, 2},
		SweepMaxProcs:  runtime.GOMAXPROCS(0),
		Progress:       os.Stderr,
		MemoryWorkers:  runtime.GOMAXPROCS(0),
		LoopbackChecks: true,
		ManyKeys:       *manyKeys,
		Contention:     *contDur,
	}
	if *coldCmp > 0 {
		cfg.ColdCompare = &workload.ColdCompareOptions{Threads: *coldCmp}
		// The reference server runs in a process of its own (this
		// command, re-run), so that CPU time is the client's alone.
		self, err := os.Executable()
		if err != nil {
			fatal(err)
		}
		cfg.ReferenceCommand = []string{self, "-serve-reference"}
	}
	if *coldKeys > 0 {
		cfg.ColdThread = &workload.ColdThreadOptions{Keys: *coldKeys, RedisAddr: *redisAddr}
	}
	start := time.Now()
	rep, err := run(cfg)
	if err != nil {
		fatal(err)
	}
	rep.Elapsed = time.Since(start)
	if err := os.WriteFile(*chart, []byte(renderSVG(rep)), 0o644); err != nil {
		fatal(err)
	}
	rep.ChartPath = *chart
	fmt.Print(renderMarkdown(rep))
	fmt.Fprintf(os.Stderr, "report: done in %v; chart written to %s\n", rep.Elapsed.Round(time.Second), *chart)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

// config is what one run measures.
type config struct {
	Rounds         int
	SweepRounds    int
	Benchtime      time.Duration
	StampedeN      int
	StampedeDelay  time.Duration
	MemoryKeys     int
	MemoryWorkers  int
	Loopback       workload.LoopbackOptions
	SweepLevels    []int
	CPUs           []int // GOMAXPROCS values of the per-request table
	SweepMaxProcs  int   // GOMAXPROCS of the concurrency sweep
	Progress       io.Writer
	LoopbackChecks bool
	// ColdThread configures the cold-thread measurement; nil skips it.
	ColdThread *workload.ColdThreadOptions
	// ManyKeys is the number of warm keys of the many-threads
	// measurement; 0 skips it.
	ManyKeys int
	// Contention is the duration of the contention run at each of CPUs;
	// 0 skips it.
	Contention time.Duration
	// ColdCompare configures the cold-path comparison; nil skips it.
	// ReferenceCommand, if set, runs its reference server in another
	// process (a command that calls workload.ServeReference).
	ColdCompare      *workload.ColdCompareOptions
	ReferenceCommand []string
}

// coldClientFigures is the in-process cold-path benchmark.
type coldClientFigures struct{ Ours, ByHand figure }

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

// manyFigures is the many-threads measurement.
type manyFigures struct {
	Keys        int
	Random, Hot figure
}

// microKey names one per-request figure.
type microKey struct {
	Case     string
	CPU      int
	Parallel bool
}

// figure is the median of a benchmark's rounds; allocations are exact.
type figure struct {
	NsOp     float64
	CPUNsOp  float64 // median process CPU time per op; 0 if unavailable
	BOp      int64
	AllocsOp int64
	Samples  []float64
}

// report is everything one run measured.
type report struct {
	GoVersion, GOOS, GOARCH string
	NumCPU                  int
	Rounds, SweepRounds     int
	Benchtime               time.Duration
	SweepMaxProcs           int
	Cases                   []workload.Case
	CPUs                    []int
	Micro                   map[microKey]figure
	SweepLevels             []int
	Sweep                   map[string]map[int]figure // case → goroutines → figure
	// ReadPathLocks is the number of contended mutexes in agentauth code
	// while ReadPathGoroutines goroutines sent cached requests in every
	// cached mode (-1: not measured, GOMAXPROCS < 2).
	ReadPathLocks      int64
	ReadPathGoroutines int
	Stampede           workload.StampedeResult
	Memory             workload.MemoryResult // 17-byte keys
	MemoryUUID         workload.MemoryResult // 36-byte keys
	// Contention holds the 64-goroutine run at each of CPUs (nil: skipped).
	Contention []workload.ContentionResult
	// Many is the many-threads measurement (nil: skipped): medians of
	// interleaved rounds, random keys and the hot key.
	Many *manyFigures
	// ColdCompare is the cold-path comparison (nil: skipped).
	ColdCompare *workload.ColdCompareResult
	// ColdClient is its client side without network or server: ours
	// and by hand (nil: skipped with ColdCompare).
	ColdClient *coldClientFigures
	Loopback   workload.LoopbackResult
	// ColdThread is the first request of new threads with and without the
	// Redis store; Skipped when not measured.
	ColdThread workload.ColdThreadResult
	Elapsed    time.Duration
	ChartPath  string
	// LoadBefore and LoadAfter are the 1-minute load averages when the run
	// began and ended ("" where unavailable): a figure taken on a busy
	// machine says so.
	LoadBefore, LoadAfter string
}

func run(cfg config) (*report, error) {
	began := time.Now()
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "report: [%5.1fs] "+format+"\n",
				append([]any{time.Since(began).Seconds()}, args...)...)
		}
	}
	rep := &report{
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		Rounds: cfg.Rounds, SweepRounds: max(cfg.SweepRounds, 1), Benchtime: cfg.Benchtime, SweepMaxProcs: cfg.SweepMaxProcs,
		Cases: workload.Cases(), CPUs: cfg.CPUs, SweepLevels: cfg.SweepLevels,
		Micro: map[microKey]figure{}, Sweep: map[string]map[int]figure{},
		LoadBefore: loadAverage(),
	}
	defer func() { rep.LoadAfter = loadAverage() }()
	ctx, cancel := workload.HandlerContext()
	defer cancel()
	targets := make([]*workload.Target, len(rep.Cases))
	for i, c := range rep.Cases {
		t, err := c.Build(ctx, workload.Env{})
		if err != nil {
			return nil, err
		}
		targets[i] = t
	}
	prevProcs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prevProcs)

	// Per-request cost, at each GOMAXPROCS, serial and parallel.
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
						return nil, fmt.Errorf("%s: %w", t.Case.Name, err)
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

	// No lock on the read path, by the mutex profile.
	runtime.GOMAXPROCS(cfg.SweepMaxProcs)
	rep.ReadPathLocks, rep.ReadPathGoroutines = -1, 4
	if cfg.SweepMaxProcs >= 2 {
		logf("read-path locks: %d goroutines per cached mode", rep.ReadPathGoroutines)
		n, err := workload.ReadPathLocks(rep.ReadPathGoroutines, 20_000)
		if err != nil {
			return nil, err
		}
		rep.ReadPathLocks = n
	}

	// Overhead versus concurrency.
	sweep := map[string]map[int][]testing.BenchmarkResult{}
	for r := range max(cfg.SweepRounds, 1) {
		logf("concurrency sweep, round %d/%d", r+1, max(cfg.SweepRounds, 1))
		for _, g := range cfg.SweepLevels {
			for _, i := range rotation(len(targets), r) {
				t := targets[i]
				res, err := bench(func(b *testing.B) { workload.Concurrent(g)(b, t) })
				if err != nil {
					return nil, fmt.Errorf("%s at %d goroutines: %w", t.Case.Name, g, err)
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
	for _, t := range targets {
		if err := t.CheckCached(); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Case.Name, err)
		}
	}
	targets = nil

	logf("stampede: %d first requests, %v registrations", cfg.StampedeN, cfg.StampedeDelay)
	var err error
	if rep.Stampede, err = workload.Stampede(cfg.StampedeN, cfg.StampedeDelay); err != nil {
		return nil, err
	}
	logf("memory: %d thread keys of 17 and of 36 bytes", cfg.MemoryKeys)
	if rep.Memory, err = workload.Memory(workload.MemoryOptions{Keys: cfg.MemoryKeys, Workers: cfg.MemoryWorkers}); err != nil {
		return nil, err
	}
	if rep.MemoryUUID, err = workload.Memory(workload.MemoryOptions{Keys: cfg.MemoryKeys, Workers: cfg.MemoryWorkers, UUIDKeys: true}); err != nil {
		return nil, err
	}
	if cfg.Contention > 0 {
		for _, cpu := range cfg.CPUs {
			logf("contention: 64 goroutines on one thread for %v at -cpu %d", cfg.Contention, cpu)
			r, err := workload.Contention(64, cpu, cfg.Contention)
			if err != nil {
				return nil, err
			}
			rep.Contention = append(rep.Contention, r)
		}
	}
	if cfg.ManyKeys > 0 {
		logf("many threads: %d warm keys, random versus hot", cfg.ManyKeys)
		if rep.Many, err = manyThreads(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.ColdCompare != nil {
		logf("cold client: ours versus by hand without network")
		if rep.ColdClient, err = coldClient(cfg); err != nil {
			return nil, err
		}
		opts := *cfg.ColdCompare
		if len(cfg.ReferenceCommand) > 0 {
			srv, err := workload.StartReferenceProcess(exec.Command(cfg.ReferenceCommand[0], cfg.ReferenceCommand[1:]...))
			if err != nil {
				return nil, err
			}
			defer srv.Close()
			opts.Server = srv
		}
		logf("cold path: ours versus by hand, %d new threads per path and concurrency", opts.Threads)
		cc, err := workload.ColdCompare(opts)
		if err != nil {
			return nil, err
		}
		rep.ColdCompare = &cc
	}
	logf("loopback: %d rounds of %v per path", cfg.Loopback.Rounds, cfg.Loopback.Round)
	if rep.Loopback, err = workload.Loopback(cfg.Loopback); err != nil {
		return nil, err
	}
	if cfg.LoopbackChecks && (rep.Loopback.Asserted == 0 || rep.Loopback.Unauthenticated == 0) {
		return nil, fmt.Errorf("loopback: the server saw %d asserted and %d bare requests; both must be non-zero",
			rep.Loopback.Asserted, rep.Loopback.Unauthenticated)
	}
	if cfg.ColdThread == nil {
		rep.ColdThread = workload.ColdThreadResult{Skipped: true, SkipReason: "not measured (-cold-threads 0)"}
		return rep, nil
	}
	logf("cold thread: first requests of new thread keys, in memory and with the Redis store")
	if rep.ColdThread, err = workload.ColdThread(*cfg.ColdThread); err != nil {
		return nil, err
	}
	if c := rep.ColdThread; c.Skipped {
		logf("cold thread: skipped: %s", c.SkipReason)
	} else if c.InMemory.OnceRegistered != c.Keys || c.Redis.OnceRegistered != c.Keys ||
		c.InMemory.Registrations != c.Keys || c.Redis.Registrations != c.Keys {
		// A key registered twice or never means the transport or the store
		// is wrong, and the latencies measure something else.
		return nil, fmt.Errorf("cold thread: %d keys per path, but the server registered %d (%d keys once) in memory and %d (%d keys once) with Redis",
			c.Keys, c.InMemory.Registrations, c.InMemory.OnceRegistered, c.Redis.Registrations, c.Redis.OnceRegistered)
	}
	return rep, nil
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

// loadAverage returns the 1-minute load average, or "" off Linux.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// rotation returns 0..n-1 rotated by r, so each round starts with another case.
func rotation(n, r int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = (i + r) % n
	}
	return out
}

// bench runs fn with testing.Benchmark and reports a failed benchmark
// (which testing.Benchmark returns as a zero result) as an error.
func bench(fn func(b *testing.B)) (testing.BenchmarkResult, error) {
	res := testing.Benchmark(fn)
	if res.N == 0 {
		return res, fmt.Errorf("benchmark failed")
	}
	return res, nil
}

// median returns the median ns/op of rs with the allocation figures of the
// run that produced it (they are the same in every run up to rounding).
func median(rs []testing.BenchmarkResult) figure {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b testing.BenchmarkResult) int {
		return cmpFloat(nsPerOp(a), nsPerOp(b))
	})
	m := s[len(s)/2]
	f := figure{NsOp: nsPerOp(m), BOp: m.AllocedBytesPerOp(), AllocsOp: m.AllocsPerOp()}
	var cpu []float64
	for _, r := range rs {
		f.Samples = append(f.Samples, nsPerOp(r))
		if v, ok := r.Extra[workload.CPUMetric]; ok {
			cpu = append(cpu, v)
		}
	}
	if len(cpu) == len(rs) {
		slices.Sort(cpu)
		f.CPUNsOp = cpu[len(cpu)/2]
	}
	return f
}

// nsPerOp is the fractional ns/op (BenchmarkResult.NsPerOp truncates,
// which matters for the few-ns bare base).
func nsPerOp(r testing.BenchmarkResult) float64 {
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

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
	"path/filepath"
	"runtime"
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
		*chart = defaultChartPath()
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

// defaultChartPath is bench/overhead.svg from the repository root,
// overhead.svg from bench/.
func defaultChartPath() string {
	if _, err := os.Stat(filepath.Join("bench", "go.mod")); err == nil {
		return filepath.Join("bench", "overhead.svg")
	}
	return "overhead.svg"
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

package main

import (
	"time"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// coldClientFigures is the in-process cold-path benchmark.
type coldClientFigures struct{ Ours, ByHand figure }

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

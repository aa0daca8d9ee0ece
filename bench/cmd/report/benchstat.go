package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

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

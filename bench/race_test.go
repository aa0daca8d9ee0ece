//go:build race

package bench_test

// The race detector allows at most 8128 live goroutines, so under -race the
// stampede smoke test releases fewer first requests.
const stampedeRequests = 4_000

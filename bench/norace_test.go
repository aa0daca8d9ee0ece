//go:build !race

package bench_test

// stampedeRequests is the stampede size of the smoke test: the report's
// 10,000 (fewer under -race, see race_test.go).
const stampedeRequests = 10_000

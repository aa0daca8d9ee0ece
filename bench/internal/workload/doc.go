// Package workload holds the measured workloads of the agentauth benchmark
// suite, so that `go test -bench` in bench/ and the report command in
// bench/cmd/report run exactly the same code: the per-request round trips of
// our transport in each cached mode and of the baselines (the bare base, the
// req.Clone floor and golang.org/x/oauth2's Transport) over a no-op base and
// eight ordinary request headers; the concurrency sweep; the first-request
// stampede; the memory held per cached thread; a keep-alive loopback
// server driven alternately through our transport and the bare one; and the
// first request of new threads with and without the Redis task store.
// Registrations go to an in-process stub ([Registrar]) whose latency the
// caller controls, so no figure but the last depends on a network or a
// reference server: [ColdThread] registers at the reference server
// (identitytest) on 127.0.0.1 and talks to a real Redis.
package workload

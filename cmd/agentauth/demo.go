// The demo command: it runs the workload and turns the summary into an exit code.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
)

func init() {
	register(command{
		name:    "demo",
		summary: "drive thread and background requests through the transport against the reference server and summarise",
		run:     runDemo,
	})
}

// runDemo runs the demo workload and prints its summary: a table (or one
// JSON object with --json) on stdout, and the first error of each kind on
// stderr. It exits 1 when any request failed or was rejected, when the
// registrations are not the workload's (one agent, one task per thread, one
// process task), when the reference server's echo or counters disagree
// with the client's, or when the run was interrupted or timed out.
func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo")
	server := fs.String("server", "", "base URL of a server offering agent registration (accepting any Bearer token), task registration and POST /v1/responses (default: start the reference server on loopback); plain http only for loopback hosts")
	threads := fs.Int("threads", 8, fmt.Sprintf("number of thread keys (thread-1 .. thread-N), 1 to %d", demoMaxThreads))
	requests := fs.Int("requests", 25, fmt.Sprintf("requests per thread key; threads×requests+background is at most %d", demoMaxTotal))
	background := fs.Int("background", 20, "requests without a thread key (process task); may be 0; counts toward the total")
	concurrency := fs.Int("concurrency", 8, fmt.Sprintf("number of concurrent workers, 1 to %d", demoMaxConcurrency))
	timeout := fs.Duration("timeout", demoDefaultTimeout, fmt.Sprintf("give up after this long (at most %s)", demoMaxTimeout))
	asJSON := fs.Bool("json", false, "print the summary as one JSON object instead of a table")
	logins := fs.Int("logins", 0, "run the pool scenario instead: this many logins (2 or more) on the reference server behind one pool, one of them limited mid-run")
	if code, done := parseFlags(fs, demoSynopsis, args, stdout, stderr); done {
		return code
	}
	if *logins != 0 {
		// demo_pool.go: the pool scenario has its own workload and summary.
		return runPoolDemo(ctx, *logins, *threads, *requests, stdout, stderr)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	opts := demoOptions{server: *server, threads: *threads, requests: *requests, background: *background, concurrency: *concurrency, timeout: *timeout, json: *asJSON}
	if err := opts.validate(set); err != nil {
		return usageError(stderr, fs.Name(), err)
	}

	ctx, cancel := context.WithTimeoutCause(ctx, opts.timeout, errDemoTimeout)
	defer cancel()
	sum, err := runDemoWorkload(ctx, opts, stderr)
	if err != nil {
		return failure(stderr, fs.Name(), err)
	}
	if opts.json {
		out, err := json.Marshal(sum)
		if err != nil {
			return failure(stderr, fs.Name(), errors.New("encoding the summary failed"))
		}
		fmt.Fprintf(stdout, "%s\n", out)
	} else {
		printDemoTable(stdout, sum)
	}
	printDemoDiagnostics(stderr, sum)

	switch {
	case sum.Canceled > 0 || sum.Requests.Total < sum.Planned:
		cause := "interrupted"
		if context.Cause(ctx) == errDemoTimeout {
			cause = "timed out after --timeout " + opts.timeout.String()
		}
		return failure(stderr, fs.Name(), fmt.Errorf("%s: %d of %d requests completed, %d canceled in flight, %d never sent",
			cause, sum.Requests.Total-sum.Canceled, sum.Planned, sum.Canceled, sum.Planned-sum.Requests.Total))
	case sum.Rejections > 0 || sum.Failures > 0:
		return failure(stderr, fs.Name(), fmt.Errorf("%d of %d requests did not succeed: %d rejected (non-2xx), %d failed", sum.Rejections+sum.Failures, sum.Requests.Total, sum.Rejections, sum.Failures))
	case sum.Registrations != sum.Expected:
		return failure(stderr, fs.Name(), fmt.Errorf("registrations agent %d, thread %d, process %d; the workload needs exactly %d, %d, %d",
			sum.Registrations.Agent, sum.Registrations.Thread, sum.Registrations.Process, sum.Expected.Agent, sum.Expected.Thread, sum.Expected.Process))
	case sum.EchoMismatches > 0:
		return failure(stderr, fs.Name(), fmt.Errorf("%d responses of the reference server echo a credential other than the expected AgentAssertion", sum.EchoMismatches))
	case sum.Server != nil && !sum.Server.Consistent:
		return failure(stderr, fs.Name(), errors.New("the server's counters disagree with the transport's"))
	}
	return exitOK
}

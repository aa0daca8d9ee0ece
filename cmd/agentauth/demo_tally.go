// demo's tally: what the workers counted, and the summary built from it.

package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// demoServerView is the embedded server's count of the run, checked
// against the transport's stats st and the client's summary sum.
func demoServerView(srv *identitytest.Server, st transport.Stats, sum *demoSummary) *demoServerCounts {
	ss := srv.Stats()
	accepted := 0
	for _, n := range ss.RequestsByMode {
		accepted += n
	}
	c := &demoServerCounts{
		AgentRegistrations:   ss.AgentRegistrations,
		ThreadRegistrations:  ss.ThreadTaskRegistrations,
		ProcessRegistrations: ss.ProcessTaskRegistrations,
		Accepted:             accepted,
		Rejections:           ss.Rejections,
	}
	// A canceled request may still have been answered by the server
	// (and a registration it was waiting for may still have
	// completed there): when the run was cut short, the server may
	// count up to the canceled requests more than the client.
	slack := sum.Canceled
	c.Unsettled = slack > 0
	within := func(server, client int64) bool { return server >= client && server-client <= slack }
	c.Consistent = within(int64(ss.AgentRegistrations), int64(st.AgentRegistrations)) &&
		within(int64(ss.ThreadTaskRegistrations), int64(st.ThreadRegistrations)) &&
		within(int64(ss.ProcessTaskRegistrations), int64(st.ProcessRegistrations)) &&
		within(int64(accepted), sum.Requests.Accepted)
	return c
}

// demoTally is what the workers count, safe for concurrent use; each
// request index has its own latency slot.
type demoTally struct {
	counts                    progressCounts // shown by the progress reporter
	threadN, backgroundN, okN atomic.Int64
	canceledN, mismatchN      atomic.Int64
	echoedN                   atomic.Int64
	// One latency sample per request; -1 (no sample) until the request
	// got a response, so requests that were never sent or got none
	// (canceled, failed) do not count as 0 ms.
	added []time.Duration
	errs  *demoErrors
	base  string // the server, for wording network errors
}

// newDemoTally returns the tally of total requests against base.
func newDemoTally(total int64, errs *demoErrors, base string) *demoTally {
	t := &demoTally{added: make([]time.Duration, total), errs: errs, base: base}
	for i := range t.added {
		t.added[i] = -1
	}
	return t
}

// record counts the outcome r of request i, whose timing is tm.
func (t *demoTally) record(i int64, r demoResult, tm *requestTiming) {
	switch {
	case r.canceled:
		t.canceledN.Add(1)
	case r.err != nil:
		t.counts.failures.Add(1)
		t.errs.add(demoErrorKindOf(r.err), describeDoError(r.err, t.base))
	case !r.ok:
		t.added[i] = tm.added()
		t.counts.rejections.Add(1)
		t.errs.add(fmt.Sprintf("rejected with HTTP %d", r.status), fmt.Sprintf("%d %s: %s", r.status, http.StatusText(r.status), r.body))
	default:
		t.added[i] = tm.added()
		t.okN.Add(1)
		if r.mismatch {
			t.mismatchN.Add(1)
		}
		if r.echoed {
			t.echoedN.Add(1)
		}
	}
	t.counts.done.Add(1)
}

// summary is the run's summary from the tally, the transport's stats st
// and the registration latencies regs, for a run of opts that took elapsed.
func (t *demoTally) summary(opts demoOptions, embedded bool, st transport.Stats, regs *registrationTimes, elapsed time.Duration) *demoSummary {
	sum := &demoSummary{ServerURL: t.base, Embedded: embedded, Planned: opts.total(), Scenario: opts.scenario(embedded)}
	sum.Requests.Thread = t.threadN.Load()
	sum.Requests.Background = t.backgroundN.Load()
	sum.Requests.Total = sum.Requests.Thread + sum.Requests.Background
	sum.Requests.Accepted = t.okN.Load()
	sum.Modes.ThreadTask = st.Requests[resolver.ModeThreadTask]
	sum.Modes.ProcessTask = st.Requests[resolver.ModeProcessTask]
	sum.Modes.Bearer = st.Requests[resolver.ModeBearer]
	sum.Registrations.Agent = st.AgentRegistrations
	sum.Registrations.Thread = st.ThreadRegistrations
	sum.Registrations.Process = st.ProcessRegistrations
	sum.Signatures = st.Signatures
	sum.Failures = t.counts.failures.Load()
	sum.Rejections = t.counts.rejections.Load()
	sum.Canceled = t.canceledN.Load()
	sum.EchoMismatches = t.mismatchN.Load()
	sum.Replays = st.Replays
	sum.BearerFallbacks = st.BearerFallbacks
	if p50, p99, ok := latencyPercentiles(t.added); ok {
		sum.LatencyMS.P50, sum.LatencyMS.P99 = &p50, &p99
	}
	if samples := regs.snapshot(); len(samples) > 0 {
		p50, p99, _ := latencyPercentiles(samples)
		sum.RegistrationLatencyMS.P50, sum.RegistrationLatencyMS.P99 = &p50, &p99
		sum.RegistrationLatencyMS.Samples = len(samples)
	}
	sum.ElapsedMS = roundMS(elapsed)
	sum.PassThrough = st.Requests[resolver.ModePassThrough]
	sum.EchoChecked = t.echoedN.Load() > 0
	sum.Expected.Agent, sum.Expected.Thread = 1, uint64(opts.threads)
	if opts.background > 0 {
		sum.Expected.Process = 1
	}
	if sum.Canceled > 0 || sum.Requests.Total < sum.Planned {
		// A cut-short run registers only what it reached.
		sum.Expected = sum.Registrations
	}
	sum.Errors, sum.Warnings = t.errs.snapshot()
	return sum
}

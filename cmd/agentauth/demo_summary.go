// demo's summary: what a run counted, its errors and warnings, and its latencies.

package main

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/agentauth/agentauth/resolver"
	"github.com/agentauth/agentauth/transport"
)

// demoSummary is what demo prints, as a table or (with --json) as one JSON
// object. Counts are of this run only.
type demoSummary struct {
	// Scenario says in one sentence what the run did: the credential, the
	// workload and the server.
	Scenario  string `json:"scenario"`
	ServerURL string `json:"server_url"`
	Embedded  bool   `json:"embedded"`
	Planned   int64  `json:"planned"`
	Requests  struct {
		Thread     int64 `json:"thread"`
		Background int64 `json:"background"`
		Total      int64 `json:"total"`
		Accepted   int64 `json:"accepted"` // answered 2xx
	} `json:"requests"`
	// Modes are the transport's counts of how requests were sent
	// (replays after a 401 included): AgentAssertion on a thread task or on
	// the process task, or Bearer while provisioning was unavailable.
	Modes struct {
		ThreadTask  uint64 `json:"thread_task"`
		ProcessTask uint64 `json:"process_task"`
		Bearer      uint64 `json:"bearer"`
	} `json:"modes"`
	Registrations struct {
		Agent   uint64 `json:"agent"`
		Thread  uint64 `json:"thread"`
		Process uint64 `json:"process"`
	} `json:"registrations"`
	Signatures      uint64 `json:"signatures"`
	Failures        int64  `json:"failures"`   // requests that returned an error
	Rejections      int64  `json:"rejections"` // requests answered non-2xx
	Canceled        int64  `json:"canceled"`   // requests cut short by interruption or the run's timeout
	EchoMismatches  int64  `json:"echo_mismatches"`
	Replays         uint64 `json:"replays"`
	BearerFallbacks uint64 `json:"bearer_fallbacks"`
	// PassThrough counts requests the transport sent without a credential
	// because their origin was not first-party.
	PassThrough uint64 `json:"pass_through"`
	// LatencyMS is measured over the requests that got a response; both
	// are null when none did.
	LatencyMS struct {
		P50 *float64 `json:"p50"`
		P99 *float64 `json:"p99"`
	} `json:"latency_ms"`
	// RegistrationLatencyMS is the duration of each successful thread
	// task registration as the transport reported it to its Observer (one
	// AuthAPI round trip, signing included); null when there was none.
	RegistrationLatencyMS struct {
		P50     *float64 `json:"p50"`
		P99     *float64 `json:"p99"`
		Samples int      `json:"samples"`
	} `json:"registration_latency_ms"`
	// Expected is what the demo's workload must register: one agent, one
	// task per thread key, one process task when there is background work.
	Expected struct {
		Agent   uint64 `json:"agent"`
		Thread  uint64 `json:"thread"`
		Process uint64 `json:"process"`
	} `json:"expected_registrations"`
	// EchoChecked says whether responses were compared with the request:
	// only the reference server's echo (which it marks with a header) is
	// understood; other servers are judged by status codes and counts.
	EchoChecked bool    `json:"echo_checked"`
	ElapsedMS   float64 `json:"elapsed_ms"`
	// Errors are the first failure of each kind (redacted), with counts.
	Errors []demoErrorKind `json:"errors,omitempty"`
	// Warnings are what the transport logged at warn level (first of each
	// message), such as why it fell back to Bearer.
	Warnings []demoErrorKind `json:"warnings,omitempty"`
	// Server holds the embedded server's own counters; nil with --server.
	Server *demoServerCounts `json:"server,omitempty"`
}

// demoErrorKind is one kind of failure: its count and the first message.
type demoErrorKind struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
	First string `json:"first"`
}

// demoServerCounts is the embedded reference server's view of the run.
type demoServerCounts struct {
	AgentRegistrations   int  `json:"agent_registrations"`
	ThreadRegistrations  int  `json:"thread_registrations"`
	ProcessRegistrations int  `json:"process_registrations"`
	Accepted             int  `json:"accepted"`
	Rejections           int  `json:"rejections"`
	Consistent           bool `json:"consistent"` // the server counted what the client did
	// Unsettled is set when the run was cut short: the server may have
	// answered up to Canceled requests the client stopped waiting for, so
	// its accepted count may exceed the client's by that much.
	Unsettled bool `json:"unsettled,omitempty"`
}

// demoErrors keeps the first message of each kind of failure and warning,
// redacted and bounded, with counts. Safe for concurrent use.
type demoErrors struct {
	secrets  []string
	mu       sync.Mutex
	errs     []demoErrorKind
	warnings []demoErrorKind
}

func (d *demoErrors) add(kind, msg string) { d.record(&d.errs, kind, msg) }

func (d *demoErrors) warn(msg string) { d.record(&d.warnings, msg, msg) }

func (d *demoErrors) record(list *[]demoErrorKind, kind, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range *list {
		if (*list)[i].Kind == kind {
			(*list)[i].Count++
			return
		}
	}
	if len(*list) >= demoMaxErrorKinds {
		kind = "other"
		for i := range *list {
			if (*list)[i].Kind == kind {
				(*list)[i].Count++
				return
			}
		}
	}
	msg = oneLine(scrub(msg, d.secrets))
	if len(msg) > demoMaxErrorText {
		msg = msg[:demoMaxErrorText] + "..."
	}
	*list = append(*list, demoErrorKind{Kind: kind, Count: 1, First: msg})
}

func (d *demoErrors) snapshot() (errs, warnings []demoErrorKind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.errs), slices.Clone(d.warnings)
}

// demoErrorKindOf names the kind of a request error for grouping: the
// transport's error class, else a network or other failure.
func demoErrorKindOf(err error) (kind string) {
	defer func() {
		if recover() != nil {
			kind = "failed: other"
		}
	}()
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case isNil(err):
		return "failed: other"
	case errors.Is(err, transport.ErrProvisioning):
		return "failed: agent provisioning"
	case errors.Is(err, transport.ErrRegistration):
		var te *transport.Error
		if errors.As(err, &te) && te.Mode == resolver.ModeThreadTask {
			return "failed: thread-task registration"
		}
		return "failed: process-task registration"
	case errors.Is(err, transport.ErrCredential):
		return "failed: credential"
	case errors.Is(err, context.DeadlineExceeded):
		return "failed: timeout"
	case errors.As(err, &dns) && dns != nil:
		return "failed: network (dns)"
	case errors.As(err, &op) && op != nil && op.Op != "":
		return "failed: network (" + op.Op + ")"
	case errors.As(err, &op) && op != nil:
		return "failed: network"
	}
	return "failed: other"
}

// demoWarnHandler returns the slog.Handler that collects the transport's
// warn-level records, with their error attribute, into errs.
func demoWarnHandler(errs *demoErrors) slog.Handler {
	return &logHandler{
		enabled: func(l slog.Level) bool { return l >= slog.LevelWarn },
		emit: func(r slog.Record, attrs []slog.Attr) error {
			msg := r.Message
			eachAttr(r, attrs, func(a slog.Attr) {
				if a.Key == "error" {
					msg += ": " + a.Value.Resolve().String()
				}
			})
			errs.warn(msg)
			return nil
		},
	}
}

// demoMaxRegistrationSamples bounds the registration durations a run
// keeps: one per thread (at most 10,000) plus re-registrations.
const demoMaxRegistrationSamples = 100_000

// registrationTimes collects, from the transport's Observer, the duration
// of each successful thread task registration. Events arrive on the
// goroutines that register, so it locks; it keeps at most max samples.
type registrationTimes struct {
	max int
	mu  sync.Mutex
	d   []time.Duration
}

func (r *registrationTimes) record(_ context.Context, ev transport.Event) {
	if ev.Op != transport.OpRegistration || ev.Task != "thread" || ev.Err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.d) < r.max {
		r.d = append(r.d, ev.Duration)
	}
}

func (r *registrationTimes) snapshot() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.d)
}

// latencyPercentiles returns the nearest-rank p50 and p99 of the samples
// (negative ones, meaning no sample, are skipped) in milliseconds with three
// decimals; ok is false when there is no sample at all.
func latencyPercentiles(samples []time.Duration) (p50, p99 float64, ok bool) {
	valid := make([]time.Duration, 0, len(samples))
	for _, d := range samples {
		if d >= 0 {
			valid = append(valid, d)
		}
	}
	if len(valid) == 0 {
		return 0, 0, false
	}
	slices.Sort(valid)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(valid)))) - 1
		return valid[max(i, 0)]
	}
	return roundMS(rank(0.50)), roundMS(rank(0.99)), true
}

func roundMS(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

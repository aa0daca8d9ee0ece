// demo's command line: its flags, their bounds, and the workload they describe.

package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/agentauth/agentauth/internal/identity"
)

const demoSynopsis = "agentauth demo [--server URL] [--threads N] [--requests M] [--background K] [--concurrency C] [--timeout 1m] [--json] [--logins N]"

// Workload bounds: large enough for any demonstration, small enough that a
// run finishes within the default timeout on a small machine (the embedded
// server handles about 5,000 requests a second on 2 shared CPUs) and a typo
// cannot exhaust memory (one latency sample per request is kept).
const (
	demoMaxThreads     = 10_000
	demoMaxTotal       = 100_000 // threads×requests+background
	demoMaxConcurrency = 1024
	// demoDefaultTimeout bounds the whole run; the default workload takes
	// about a second. demoMaxTimeout bounds --timeout.
	demoDefaultTimeout = 60 * time.Second
	demoMaxTimeout     = 30 * time.Minute
	// demoMaxErrorKinds bounds the distinct failure kinds the summary
	// keeps (each with its count and first message).
	demoMaxErrorKinds = 8
	// demoMaxErrorText bounds each kept message.
	demoMaxErrorText = 300
	// demoAccountID is the account of the ChatGPT-style login the demo
	// provisions its identity from.
	demoAccountID = "acct-demo"
	// demoMaxEcho bounds how much of a response the demo reads to check
	// the echo of the reference server.
	demoMaxEcho = 64 << 10
)

// errDemoTimeout is the cause of the run's own deadline, told apart from a
// caller's cancellation.
var errDemoTimeout = errors.New("demo timed out")

// demoOptions is the validated command line of demo.
type demoOptions struct {
	server      string // base URL, "" for the embedded server
	threads     int
	requests    int
	background  int
	concurrency int
	timeout     time.Duration
	json        bool
}

func (o demoOptions) total() int64 {
	return int64(o.threads)*int64(o.requests) + int64(o.background)
}

// validate checks the workload against the stated bounds. set names the
// flags the user gave, so that an error can say which values are defaults.
func (o *demoOptions) validate(set map[string]bool) error {
	switch {
	case o.threads < 1 || o.threads > demoMaxThreads:
		return fmt.Errorf("--threads must be between 1 and %d", demoMaxThreads)
	case o.requests < 1 || o.requests > demoMaxTotal:
		return fmt.Errorf("--requests must be between 1 and %d", demoMaxTotal)
	case o.background < 0 || o.background > demoMaxTotal:
		return fmt.Errorf("--background must be between 0 and %d", demoMaxTotal)
	case o.concurrency < 1 || o.concurrency > demoMaxConcurrency:
		return fmt.Errorf("--concurrency must be between 1 and %d", demoMaxConcurrency)
	case o.timeout <= 0 || o.timeout > demoMaxTimeout:
		return fmt.Errorf("--timeout must be positive and at most %s", demoMaxTimeout)
	case o.total() > demoMaxTotal:
		term := func(name string, v int) string {
			if set[name] {
				return fmt.Sprintf("--%s %d", name, v)
			}
			return fmt.Sprintf("--%s %d (the default)", name, v)
		}
		return fmt.Errorf("%s × %s + %s = %d requests; a run is limited to %d requests",
			term("threads", o.threads), term("requests", o.requests), term("background", o.background), o.total(), demoMaxTotal)
	}
	if o.server != "" {
		base, err := parseServerURL(o.server)
		if err != nil {
			return err
		}
		o.server = base
	}
	return nil
}

// parseServerURL checks --server and returns it without a trailing "/".
// Plain http is allowed only for loopback hosts: the demo sends a login
// token there.
func parseServerURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return "", fmt.Errorf("--server %q is not an http(s) URL", truncate(raw))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("--server must be a base URL without user info, query or fragment")
	case u.Scheme == "http" && !identity.IsLoopbackBase(raw):
		return "", fmt.Errorf("--server %q: plain http is allowed only for loopback hosts; use https", truncate(raw))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// scenario describes the run the options ask for.
func (o demoOptions) scenario(embedded bool) string {
	where := "the server at --server"
	if embedded {
		where = "the embedded reference server"
	}
	s := fmt.Sprintf("a ChatGPT login with use_agent_identity on provisions one Agent Identity at %s; %d thread key(s) × %d request(s) sign with their thread's task", where, o.threads, o.requests)
	if o.background > 0 {
		s += fmt.Sprintf(" and %d background request(s) with the process task", o.background)
	}
	return s + fmt.Sprintf(", on %d worker(s)", o.concurrency)
}

// demoJob says what request i of the workload is: background requests are
// spread evenly among the thread requests (Bresenham), and thread requests
// go round-robin over the thread keys, so every phase of the run mixes
// modes and keys. It returns the thread index (0-based) or -1.
func (o demoOptions) demoJob(i int64) int {
	total, bg := o.total(), int64(o.background)
	before := i * bg / total // background jobs among 0..i-1
	if (i+1)*bg/total != before {
		return -1
	}
	return int((i - before) % int64(o.threads))
}

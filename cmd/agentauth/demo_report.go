// demo's printed report: the summary table and the diagnostics on stderr.

package main

import (
	"fmt"
	"io"
	"strconv"
)

// printDemoDiagnostics tells why requests failed: the first error of each
// kind, the transport's warnings (such as the cause of a Bearer fallback)
// and requests sent without a credential. Messages are redacted already.
func printDemoDiagnostics(w io.Writer, s *demoSummary) {
	for _, e := range s.Warnings {
		fmt.Fprintf(w, "agentauth demo: transport warning (%d×): %s\n", e.Count, e.First)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "agentauth demo: %d× %s, first: %s\n", e.Count, e.Kind, e.First)
	}
	if s.PassThrough > 0 {
		fmt.Fprintf(w, "agentauth demo: %d requests went out without a credential: their origin is not first-party (ChatGPTBaseURL and AllowedOrigins decide which origins get one)\n", s.PassThrough)
	}
}

// printDemoTable prints the summary as an aligned table; the SERVER column
// appears only with the embedded server, whose counters it shows.
func printDemoTable(w io.Writer, s *demoSummary) {
	where := "server " + s.ServerURL
	if s.Embedded {
		where = "embedded reference server " + s.ServerURL
	}
	fmt.Fprintf(w, "agentauth demo: %d requests against %s in %.3fs\n", s.Requests.Total, where, s.ElapsedMS/1000)
	fmt.Fprintf(w, "scenario: %s\n\n", s.Scenario)
	srv := func(f func(*demoServerCounts) int) string {
		if s.Server == nil {
			return ""
		}
		return strconv.Itoa(f(s.Server))
	}
	rows := []struct{ name, value, server string }{
		{"requests thread", strconv.FormatInt(s.Requests.Thread, 10), ""},
		{"requests background", strconv.FormatInt(s.Requests.Background, 10), ""},
		{"requests total", strconv.FormatInt(s.Requests.Total, 10), ""},
		{"requests accepted (2xx)", strconv.FormatInt(s.Requests.Accepted, 10), srv(func(c *demoServerCounts) int { return c.Accepted })},
		{"sent with thread task", strconv.FormatUint(s.Modes.ThreadTask, 10), ""},
		{"sent with process task", strconv.FormatUint(s.Modes.ProcessTask, 10), ""},
		{"sent as Bearer (fallback)", strconv.FormatUint(s.Modes.Bearer, 10), ""},
		{"registrations agent", strconv.FormatUint(s.Registrations.Agent, 10), srv(func(c *demoServerCounts) int { return c.AgentRegistrations })},
		{"registrations thread", strconv.FormatUint(s.Registrations.Thread, 10), srv(func(c *demoServerCounts) int { return c.ThreadRegistrations })},
		{"registrations process", strconv.FormatUint(s.Registrations.Process, 10), srv(func(c *demoServerCounts) int { return c.ProcessRegistrations })},
		{"signatures", strconv.FormatUint(s.Signatures, 10), ""},
		{"failures", strconv.FormatInt(s.Failures, 10), ""},
		{"rejections", strconv.FormatInt(s.Rejections, 10), srv(func(c *demoServerCounts) int { return c.Rejections })},
		{"latency added p50 (ms)", formatMS(s.LatencyMS.P50), ""},
		{"latency added p99 (ms)", formatMS(s.LatencyMS.P99), ""},
		{"thread registration p50 (ms)", formatMS(s.RegistrationLatencyMS.P50), ""},
		{"thread registration p99 (ms)", formatMS(s.RegistrationLatencyMS.P99), ""},
	}
	if s.Canceled > 0 {
		rows = append(rows, struct{ name, value, server string }{"canceled", strconv.FormatInt(s.Canceled, 10), ""})
	}
	width := len("METRIC")
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	line := func(name, value, server string) {
		if s.Server == nil {
			fmt.Fprintf(w, "%-*s  %10s\n", width, name, value)
			return
		}
		if server == "" {
			server = "-"
		}
		fmt.Fprintf(w, "%-*s  %10s  %10s\n", width, name, value, server)
	}
	line("METRIC", "CLIENT", "SERVER")
	for _, r := range rows {
		line(r.name, r.value, r.server)
	}
	switch {
	case s.Server != nil && s.Server.Consistent && s.Server.Unsettled:
		fmt.Fprintf(w, "\nserver counters match the transport's, allowing for the %d canceled requests the server may have answered\n", s.Canceled)
	case s.Server != nil && s.Server.Consistent:
		fmt.Fprintln(w, "\nserver counters match the transport's")
	case s.Server != nil:
		fmt.Fprintln(w, "\nserver counters DISAGREE with the transport's")
	case !s.EchoChecked && s.Requests.Accepted > 0:
		fmt.Fprintln(w, "\nthe server's answers were judged by status code (they are not the reference server's echo)")
	}
}

// formatMS prints a latency, or "-" when there was no sample.
func formatMS(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 3, 64)
}

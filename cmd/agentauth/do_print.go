// do's stderr output: the -v hop printer and the transport's log lines.

package main

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/agentauth/agentauth/internal/headers"
)

// verboseRoundTripper prints each request as the agentauth transport sends
// it (resource requests, redirect hops and registrations) and each
// response's status and headers, with credentials redacted. It sits
// between the agentauth transport and the network, so it sees exactly the
// headers that go out.
type verboseRoundTripper struct {
	next    http.RoundTripper
	w       io.Writer
	secrets []string
	mu      *sync.Mutex // registrations may run on another goroutine; shared with the log handler
}

func (v *verboseRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var b strings.Builder
	// No protocol version: redirect hops do not have one until sent.
	fmt.Fprintf(&b, "> %s %s\n", req.Method, req.URL.Redacted())
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	fmt.Fprintf(&b, "> Host: %s\n", host)
	v.writeHeaders(&b, "> ", req.Header)
	b.WriteString(">\n")
	v.print(b.String())

	resp, err := v.next.RoundTrip(req)
	if err != nil {
		// A hop that got no answer is shown too, so a retried
		// registration reads as attempts, not as silence.
		v.print(fmt.Sprintf("< no response from %s %s: %s\n<\n", req.Method, req.URL.Redacted(), scrub(oneLine(errText(err)), v.secrets)))
		return resp, err
	}
	b.Reset()
	fmt.Fprintf(&b, "< %s %s\n", resp.Proto, resp.Status)
	v.writeHeaders(&b, "< ", resp.Header)
	b.WriteString("<\n")
	if u := usageSummary(resp); u != "" { // usage_summary.go
		b.WriteString(u)
	}
	v.print(b.String())
	return resp, nil
}

func (v *verboseRoundTripper) writeHeaders(b *strings.Builder, prefix string, h http.Header) {
	red := headers.RedactAll(h)
	for _, k := range slices.Sorted(maps.Keys(red)) {
		for _, val := range red[k] {
			fmt.Fprintf(b, "%s%s: %s\n", prefix, k, scrub(val, v.secrets))
		}
	}
}

func (v *verboseRoundTripper) print(s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	io.WriteString(v.w, s)
}

// CloseIdleConnections forwards to the network transport.
func (v *verboseRoundTripper) CloseIdleConnections() {
	if c, ok := v.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// doLog turns the transport's slog records into do's stderr lines:
// warnings always ("agentauth do: warning: ..."), and with -v every debug
// record as a "* ..." line between the hops. Values pass through scrub.
type doLog struct {
	w       io.Writer
	verbose bool
	secrets []string
	mu      *sync.Mutex // shared with the verbose hop printer
}

// handler returns the slog.Handler that writes to l.
func (l *doLog) handler() slog.Handler {
	return &logHandler{
		enabled: func(lv slog.Level) bool { return l.verbose || lv >= slog.LevelWarn },
		emit:    l.emit,
	}
}

func (l *doLog) emit(r slog.Record, attrs []slog.Attr) error {
	var b strings.Builder
	msg := strings.TrimPrefix(r.Message, "agentauth: ")
	warn := r.Level >= slog.LevelWarn
	if warn {
		b.WriteString("agentauth do: warning: " + msg)
	} else {
		b.WriteString("* " + msg)
	}
	var cause string
	eachAttr(r, attrs, func(a slog.Attr) {
		v := a.Value.Resolve()
		switch {
		case a.Key == "error":
			cause = v.String()
		case !warn: // a warning says what and why; details are for -v
			fmt.Fprintf(&b, " %s=%s", a.Key, v.String())
		}
	})
	if cause != "" {
		b.WriteString(": " + cause)
	}
	line := oneLine(scrub(b.String(), l.secrets)) + "\n"
	if l.mu != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
	}
	_, err := io.WriteString(l.w, line)
	return err
}

// The do command: it wires the credential into a transport, sends one request and prints the answer.

package main

import (
	"context"
	"errors"
	"io"
	"net/http"
)

func init() {
	register(command{
		name:    "do",
		summary: "send one request through the transport, like curl, and print the response body",
		run:     runDo,
	})
}

// runDo sends one request through the agentauth transport and copies the
// response body to stdout. With -v, every request the transport sends (the
// resource request, its redirects and any registration, each attempt of a
// retried one) and every response's status and headers, or the error of a
// hop that got none, go to stderr with credentials redacted, together with
// the transport's debug log. A transport error, or a response with status
// 400 or above (after its body is printed), exits 1 with one line on stderr
// that never holds a secret; warnings (such as a fallback to Bearer and its
// cause) come before it.
//
// Credentials go only to first-party origins: https://chatgpt.com,
// https://api.openai.com, the --authapi origin, the URL's origin when it is
// a loopback host, and each --allow-origin. A URL outside that list is
// refused, so a typo cannot send a login to a stranger.
func runDo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("do")
	a := defineDoFlags(fs) // do_flags.go
	positional, code, done := parseInterspersed(fs, doSynopsis, args, stdout, stderr)
	if done {
		return code
	}
	a.set = givenFlags(fs)
	source, claim, err := a.pickSource(stdin) // do_source.go
	if err != nil {
		return usageError(stderr, fs.Name(), err)
	}
	// Every value the user gave that is a credential; scrub removes them
	// from anything printed, as a second line of defence.
	secrets := []string{a.apiKey, a.accessToken}
	req, err := parseDoRequest(positional, a.set, a.doFlags(source, claim.by), stdin) // do_request.go
	if err != nil {
		return usageError(stderr, fs.Name(), errors.New(scrub(err.Error(), secrets)))
	}
	homeHow := ""
	if source == "--codex-home" {
		if homeHow, err = checkCodexHome(a.set["codex-home"], a.codexHome); err != nil {
			return usageError(stderr, fs.Name(), err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, req.timeout)
	defer cancel()
	out, base := newDoOutput(networkTransport(), stderr, req.verbose, secrets) // do_transport.go
	w := &doWiring{args: a, source: source, homeHow: homeHow, stdin: stdin, stderr: stderr, out: out}
	auth, using, closeFn, err := w.build(ctx, base, doConfig(req, out.logs))
	defer closeFn()
	if u := (doUsageError{}); errors.As(err, &u) {
		return usageError(stderr, fs.Name(), u.err)
	}
	if err != nil {
		return failure(stderr, fs.Name(), err)
	}
	if req.verbose {
		out.hops.print("* " + using + "\n")
	}
	client := &http.Client{Transport: auth}
	defer client.CloseIdleConnections()

	return sendDo(ctx, client, auth, req, using, out.secrets, stdout, stderr) // do_send.go
}

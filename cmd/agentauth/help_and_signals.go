package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
)

// helpFor answers "agentauth help COMMAND" with the command's own usage,
// as "agentauth COMMAND -h" does.
func helpFor(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 1 {
		fmt.Fprintf(stderr, "agentauth help: unexpected argument %q (run 'agentauth help COMMAND')\n", truncate(args[1]))
		return exitUsage
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "agentauth help: unknown command %q (run 'agentauth -h')\n", truncate(args[0]))
		return exitUsage
	}
	return c.run(ctx, []string{"-h"}, stdin, stdout, stderr)
}

// signalError is the cancellation cause of a run stopped by a signal.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return "interrupted by " + e.sig.String() }

// signalContext returns a context canceled, with a signalError as its
// cause, when a signal arrives on sigs; stop releases its goroutine.
func signalContext(parent context.Context, sigs <-chan os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case s := <-sigs:
			cancel(signalError{s})
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		<-exited
		cancel(nil)
	}
}

// interruptedCode is the exit status of a run: a command that failed
// because a signal stopped it exits as shells expect, 128 plus the signal
// number (130 for Ctrl-C, 143 for SIGTERM), not 1.
func interruptedCode(ctx context.Context, code int) int {
	se, ok := context.Cause(ctx).(signalError)
	if !ok || code == exitOK {
		return code
	}
	if n, ok := se.sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 128 + int(syscall.SIGINT)
}

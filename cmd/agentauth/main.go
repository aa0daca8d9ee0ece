// Command agentauth is the command-line face of the agentauth module: it
// runs the reference server, mints keys and AgentAssertion headers, and
// drives the transport. Run "agentauth -h" for the list of subcommands,
// "agentauth COMMAND -h" for each one's flags and "agentauth version" for
// the build. docs/protocol.md describes what the commands speak.
//
// Every subcommand lives in its own file and registers itself with
// [register] from an init function; main only dispatches. Bad input (flags,
// arguments, and files or standard input named on the command line that
// cannot be read or parsed) exits 2 with a single line on stderr, runtime
// failures exit 1, a run stopped by SIGINT or SIGTERM exits 130 or 143, and
// no output carries a secret the command was not asked to produce.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad subcommand, flags or arguments
)

// command is one subcommand. run receives the arguments after the
// subcommand name and returns the exit code.
type command struct {
	name    string
	summary string // one line for the top-level usage
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands is filled by register calls in each subcommand's init.
var commands = map[string]command{}

// register adds a subcommand; call it from an init function in the
// subcommand's own file.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("agentauth: duplicate command " + c.name)
	}
	commands[c.name] = c
}

func main() {
	// The signal context is created here, not in the subcommands, so that
	// run stays a pure function tests can call in-process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, stop := signalContext(context.Background(), sigs)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	signal.Stop(sigs)
	os.Exit(interruptedCode(ctx, code))
}

// run dispatches args[0] to its subcommand.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return helpFor(ctx, args[1:], stdin, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "agentauth: unknown command %q (run 'agentauth -h')\n", truncate(args[0]))
		return exitUsage
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: agentauth COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'agentauth COMMAND -h' (or 'agentauth help COMMAND') for a command's flags.")
}

// newFlagSet returns a flag set that reports nothing by itself: parseFlags
// turns its errors into one line and prints help on -h.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("agentauth "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args. It returns done=true with the exit code when the
// command must stop: after printing help for -h (exit 0) or one error line
// for bad flags or unexpected arguments (exit 2).
func parseFlags(fs *flag.FlagSet, synopsis string, args []string, stdout, stderr io.Writer) (code int, done bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: %s\n\nflags:\n", synopsis)
		printFlags(stdout, fs)
		return exitOK, true
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", truncate(fs.Arg(0)))
	}
	if err != nil {
		return usageError(stderr, fs.Name(), flagError(err)), true
	}
	return 0, false
}

// printFlags lists fs's flags as flag.PrintDefaults does, but spells long
// flags "--name" as the synopses and error messages do; one-letter flags
// keep one dash.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		kind, usage := flag.UnquoteUsage(f)
		line := "  " + dash + f.Name
		if kind != "" {
			line += " " + kind
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if d := f.DefValue; d != "" && d != "false" && d != "0" && !strings.HasSuffix(d, " value(s)") {
			if kind == "string" {
				d = strconv.Quote(d)
			}
			line += " (default " + d + ")"
		}
		fmt.Fprintln(w, line)
	})
}

// flagErrorName matches the flag name the flag package quotes in its
// errors ("flag provided but not defined: -nope", "invalid value ... for
// flag -threads: ...").
var flagErrorName = regexp.MustCompile(`(defined: |flag )-([A-Za-z][A-Za-z0-9-]+)`)

// flagError rewrites the flag package's single-dash spelling of long flags
// into the "--name" spelling that help texts and this package's own errors
// use; one-letter flags (-X, -d, -H, -v) keep one dash, as in curl.
func flagError(err error) error {
	return errors.New(flagErrorName.ReplaceAllString(err.Error(), "${1}--${2}"))
}

// usageError prints "agentauth CMD: message (run 'agentauth CMD -h')" and
// returns exitUsage.
func usageError(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "%s: %s (run '%s -h')\n", name, oneLine(err.Error()), name)
	return exitUsage
}

// failure prints "agentauth CMD: message" and returns exitFailure. err must
// not carry a secret; every error built in this package names fields, not
// values.
func failure(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err.Error()))
	return exitFailure
}

// oneLine keeps an error to a single line whatever it wraps.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncate bounds user input quoted back in an error.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return fmt.Sprintf("%d value(s)", len(*s)) }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

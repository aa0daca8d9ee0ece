package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/agentauth/agentauth/internal/identity"
)

const versionSynopsis = "agentauth version"

func init() {
	register(command{
		name:    "version",
		summary: "print the module version, commit and Go version of this build (also --version)",
		run:     runVersion,
	})
}

// runVersion prints one line: "agentauth VERSION (COMMIT[, modified]) GO
// OS/ARCH". VERSION is the module version recorded by "go install
// module@version" (or the pseudo-version a checkout's VCS stamp gives);
// a build that has none ("(devel)": go run, go test, -buildvcs=false) says
// the version the source declares, identity.Version, marked "-devel".
// COMMIT comes from the VCS stamp and is omitted when there is none.
func runVersion(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("version")
	if code, done := parseFlags(fs, versionSynopsis, args, stdout, stderr); done {
		return code
	}
	fmt.Fprintln(stdout, versionLine(debug.ReadBuildInfo))
	return exitOK
}

// versionLine formats the build information that read returns.
func versionLine(read func() (*debug.BuildInfo, bool)) string {
	version, commit, modified := "v"+identity.Version+"-devel", "", false
	if bi, ok := read(); ok && bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	line := "agentauth " + version
	if commit != "" {
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if modified {
			commit += ", modified"
		}
		line += " (" + commit + ")"
	}
	return line + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

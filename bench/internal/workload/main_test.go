package workload_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// serveReferenceEnv makes the test binary act as a reference-server
// process (see TestColdCompareServerProcess).
const serveReferenceEnv = "WORKLOAD_TEST_SERVE_REFERENCE"

func TestMain(m *testing.M) {
	if os.Getenv(serveReferenceEnv) == "1" {
		if err := workload.ServeReference(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

package agentauth_test

import (
	"os"
	"strings"
	"testing"
)

// The README is a front page: at most 1,800 words (as wc -w counts them),
// one install line, and the two set-up commands that .ci/run also runs.
func TestREADMEIsAFrontPage(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	if n := len(strings.Fields(readme)); n > 1800 {
		t.Errorf("README.md has %d words; keep it at most 1,800 and move the detail to docs/", n)
	}
	for _, line := range []string{
		"go get github.com/agentauth/agentauth@latest",
		"go run ./cmd/agentauth demo",
		"go test -race -count=1 ./...",
	} {
		if strings.Count(readme, line) != 1 {
			t.Errorf("README.md has %q %d times, want once", line, strings.Count(readme, line))
		}
	}
	if strings.Contains(readme, "SPEC") {
		t.Error("README.md cites SPEC")
	}
}

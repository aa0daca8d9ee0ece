package usage_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agentauth/agentauth/usage"
)

// A 429 that reports a usage limit: the headers give the windows, the body
// the kind of limit and its reset; the body is put back for the caller.
func ExampleFromResponse() {
	resp := &http.Response{
		StatusCode: http.StatusTooManyRequests,
		Header: http.Header{
			"X-Codex-Primary-Used-Percent":   {"100"},
			"X-Codex-Primary-Window-Minutes": {"300"},
			"X-Codex-Active-Limit":           {"codex"},
		},
		Body: io.NopCloser(strings.NewReader(`{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_at":1767225600}}`)),
	}
	snap := usage.FromResponse(resp)
	used, _ := snap.MaxUsedPercent()
	fmt.Println(snap.Limits[0].ID, used, snap.Limits[0].Primary.WindowMinutes)
	fmt.Println(snap.LimitReached, snap.PlanType, snap.LimitResetsAt.UTC())
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(len(body) > 0)
	// Output:
	// codex 100 300
	// usage_limit_reached plus 2026-01-01 00:00:00 +0000 UTC
	// true
}

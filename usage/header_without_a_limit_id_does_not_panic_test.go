package usage

import (
	"net/http"
	"testing"
)

// A header named x-primary-used-percent carries no limit id between "x-"
// and the suffix. The server chooses the names, so reading them must not
// panic; the default limit's own headers are still read.
func TestHeaderWithoutALimitIDDoesNotPanic(t *testing.T) {
	h := http.Header{}
	h.Set("X-Primary-Used-Percent", "12.5")
	h.Set("X-Secondary-Used-Percent", "3")
	h.Set("X-Codex-Primary-Used-Percent", "40")
	s := FromHeader(h)
	if got, ok := s.MaxUsedPercent(); !ok || got != 40 {
		t.Fatalf("MaxUsedPercent = %v, %v; want 40 from the codex limit", got, ok)
	}
	if len(s.Limits) != 1 || s.Limits[0].ID != "codex" {
		t.Errorf("limits %+v, want only codex", s.Limits)
	}
}

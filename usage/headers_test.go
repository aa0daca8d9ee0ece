package usage_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentauth/agentauth/usage"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// The default family, a second one found by its header name (with '-'
// read as '_'), credits and the hit-limit headers all come out typed.
func TestFromHeaderReadsEveryFamily(t *testing.T) {
	h := header(
		"x-codex-primary-used-percent", "12.5",
		"x-codex-primary-window-minutes", "300",
		"x-codex-primary-reset-at", "1704069000",
		"x-codex-secondary-used-percent", "40",
		"x-codex-secondary-window-minutes", "10080",
		"x-codex-bengal-fox-primary-used-percent", "80",
		"x-codex-bengal-fox-limit-name", " gpt-5.2-codex-sonic ",
		"x-codex-credits-has-credits", "TRUE",
		"x-codex-credits-unlimited", "0",
		"x-codex-credits-balance", "12.50",
		"x-codex-active-limit", "codex_bengal_fox",
		"x-codex-rate-limit-reached-type", "primary",
		"x-codex-promo-message", "upgrade",
		"x-other", "ignored",
	)
	got := usage.FromHeader(h)
	want := usage.Snapshot{
		Limits: []usage.Limit{
			{ID: "codex",
				Primary:   &usage.Window{UsedPercent: 12.5, WindowMinutes: 300, ResetsAt: time.Unix(1704069000, 0)},
				Secondary: &usage.Window{UsedPercent: 40, WindowMinutes: 10080}},
			{ID: "codex_bengal_fox", Name: "gpt-5.2-codex-sonic", Primary: &usage.Window{UsedPercent: 80}},
		},
		Credits:      &usage.Credits{HasCredits: true, Unlimited: false, Balance: "12.50"},
		ActiveLimit:  "codex_bengal_fox",
		ReachedType:  "primary",
		PromoMessage: "upgrade",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("FromHeader (-want +got):\n%s", d)
	}
	if p, ok := got.MaxUsedPercent(); !ok || p != 80 {
		t.Errorf("MaxUsedPercent = %v, %v; want 80", p, ok)
	}
}

// Values that do not parse are left out, as in Codex: a window needs a
// finite used percent, an all-zero window without a reset says nothing,
// credits need both flags.
func TestFromHeaderLeavesOutWhatDoesNotParse(t *testing.T) {
	for name, h := range map[string]http.Header{
		"nan":            header("x-codex-primary-used-percent", "NaN"),
		"inf":            header("x-codex-primary-used-percent", "+Inf"),
		"text":           header("x-codex-primary-used-percent", "lots"),
		"all zero":       header("x-codex-primary-used-percent", "0", "x-codex-primary-window-minutes", "0"),
		"no used":        header("x-codex-primary-window-minutes", "60", "x-codex-primary-reset-at", "1"),
		"credits half":   header("x-codex-credits-has-credits", "true"),
		"credits yes":    header("x-codex-credits-has-credits", "yes", "x-codex-credits-unlimited", "false"),
		"empty family":   header("x--primary-used-percent", "50"),
		"blank messages": header("x-codex-promo-message", "  ", "x-codex-active-limit", ""),
	} {
		if s := usage.FromHeader(h); !s.Empty() {
			t.Errorf("%s: FromHeader = %+v, want empty", name, s)
		}
	}
	// A zero used percent with a reset time is a window.
	s := usage.FromHeader(header("x-codex-primary-used-percent", "0", "x-codex-primary-reset-at", "5"))
	if len(s.Limits) != 1 || s.Limits[0].Primary == nil || !s.Limits[0].Primary.ResetsAt.Equal(time.Unix(5, 0)) {
		t.Errorf("zero window with reset = %+v", s)
	}
}

// The number of families one header set can add is bounded.
func TestFromHeaderBoundsFamilies(t *testing.T) {
	h := http.Header{}
	for i := range 100 {
		h.Set("x-l"+string(rune('a'+i%26))+string(rune('a'+i/26))+"-primary-used-percent", "10")
	}
	if n := len(usage.FromHeader(h).Limits); n > 16 {
		t.Errorf("FromHeader kept %d families", n)
	}
}

package usage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentauth/agentauth/usage"
)

func TestParseEvent(t *testing.T) {
	got, err := usage.ParseEvent([]byte(`{"type":"codex.rate_limits","plan_type":"plus",
		"rate_limits":{"primary":{"used_percent":42.5,"window_minutes":300,"reset_at":1767225600},"secondary":null},
		"credits":{"has_credits":true,"unlimited":false,"balance":"9"},
		"metered_limit_name":"codex-other","limit_name":"Other"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := usage.Snapshot{
		Limits:   []usage.Limit{{ID: "codex_other", Name: "Other", Primary: &usage.Window{UsedPercent: 42.5, WindowMinutes: 300, ResetsAt: time.Unix(1767225600, 0)}}},
		Credits:  &usage.Credits{HasCredits: true, Balance: "9"},
		PlanType: "plus",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ParseEvent (-want +got):\n%s", d)
	}
	// Without a name the limit is the default one.
	got, err = usage.ParseEvent([]byte(`{"type":"codex.rate_limits","rate_limits":{"secondary":{"used_percent":1}}}`))
	if err != nil || len(got.Limits) != 1 || got.Limits[0].ID != "codex" || got.Limits[0].Secondary == nil {
		t.Fatalf("unnamed event = %+v, %v", got, err)
	}
}

func TestParseEventRejects(t *testing.T) {
	if s, err := usage.ParseEvent([]byte(`{"type":"response.completed"}`)); err != nil || !s.Empty() {
		t.Errorf("other event: %+v, %v; want nothing and no error", s, err)
	}
	for name, in := range map[string]string{
		"not json":        `{"type":`,
		"array":           `[1]`,
		"no used percent": `{"type":"codex.rate_limits","rate_limits":{"primary":{"window_minutes":5}}}`,
		"half credits":    `{"type":"codex.rate_limits","credits":{"has_credits":true}}`,
		"float reset":     `{"type":"codex.rate_limits","rate_limits":{"primary":{"used_percent":1,"reset_at":1.5}}}`,
	} {
		if _, err := usage.ParseEvent([]byte(in)); !errors.Is(err, usage.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

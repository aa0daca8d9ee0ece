package usage

import (
	"encoding/json"
	"fmt"
	"time"
)

// eventType is the type of the event that carries usage in a streamed
// answer (SSE data or a WebSocket message).
const eventType = "codex.rate_limits"

type eventWindow struct {
	UsedPercent   *float64 `json:"used_percent"`
	WindowMinutes *int64   `json:"window_minutes"`
	ResetAt       *int64   `json:"reset_at"`
}

type eventCredits struct {
	HasCredits *bool   `json:"has_credits"`
	Unlimited  *bool   `json:"unlimited"`
	Balance    *string `json:"balance"`
}

type event struct {
	Type       string          `json:"type"`
	PlanType   json.RawMessage `json:"plan_type"`
	RateLimits *struct {
		Primary   *eventWindow `json:"primary"`
		Secondary *eventWindow `json:"secondary"`
	} `json:"rate_limits"`
	Credits          *eventCredits `json:"credits"`
	MeteredLimitName *string       `json:"metered_limit_name"`
	LimitName        *string       `json:"limit_name"`
}

// ParseEvent reads a codex.rate_limits event, the JSON of one SSE data
// line or WebSocket message:
//
//	{"type":"codex.rate_limits","plan_type":"plus",
//	 "rate_limits":{"primary":{"used_percent":42,"window_minutes":300,"reset_at":1767225600},"secondary":null},
//	 "credits":{"has_credits":true,"unlimited":false,"balance":"12.50"},
//	 "metered_limit_name":"codex"}
//
// The snapshot holds one limit, named by metered_limit_name, else
// limit_name, else "codex". A well-formed event of another type says
// nothing about usage: the zero Snapshot and a nil error. JSON that is not
// an object, or a window without used_percent, or credits without both
// flags, is an error wrapping [ErrMalformed], as Codex drops such an event
// whole.
func ParseEvent(data []byte) (Snapshot, error) {
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		return Snapshot{}, fmt.Errorf("%w: %s event: %v", ErrMalformed, eventType, jsonReason(err))
	}
	if ev.Type != eventType {
		return Snapshot{}, nil
	}
	var s Snapshot
	id := defaultLimitID
	switch {
	case ev.MeteredLimitName != nil:
		id = normalizeID(*ev.MeteredLimitName)
	case ev.LimitName != nil:
		id = normalizeID(*ev.LimitName)
	}
	if id == "" {
		id = defaultLimitID
	}
	l := Limit{ID: id}
	if ev.LimitName != nil {
		l.Name = *ev.LimitName
	}
	if rl := ev.RateLimits; rl != nil {
		var err error
		if l.Primary, err = ev.window(rl.Primary, "primary"); err != nil {
			return Snapshot{}, err
		}
		if l.Secondary, err = ev.window(rl.Secondary, "secondary"); err != nil {
			return Snapshot{}, err
		}
	}
	if l.Primary != nil || l.Secondary != nil {
		s.Limits = []Limit{l}
	}
	if c := ev.Credits; c != nil {
		if c.HasCredits == nil || c.Unlimited == nil {
			return Snapshot{}, fmt.Errorf("%w: %s event: credits without has_credits and unlimited", ErrMalformed, eventType)
		}
		s.Credits = &Credits{HasCredits: *c.HasCredits, Unlimited: *c.Unlimited}
		if c.Balance != nil {
			s.Credits.Balance = *c.Balance
		}
	}
	s.PlanType = planType(ev.PlanType)
	return s, nil
}

func (event) window(w *eventWindow, which string) (*Window, error) {
	if w == nil {
		return nil, nil
	}
	if w.UsedPercent == nil {
		return nil, fmt.Errorf("%w: %s event: %s window without used_percent", ErrMalformed, eventType, which)
	}
	out := &Window{UsedPercent: *w.UsedPercent}
	if w.WindowMinutes != nil {
		out.WindowMinutes = *w.WindowMinutes
	}
	if w.ResetAt != nil {
		out.ResetsAt = time.Unix(*w.ResetAt, 0)
	}
	return out, nil
}

// planType reads a plan type sent as a JSON string; anything else is
// left out.
func planType(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// jsonReason describes a JSON error without quoting the input.
func jsonReason(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at offset %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q has the wrong type", e.Field)
	}
	return "invalid JSON"
}

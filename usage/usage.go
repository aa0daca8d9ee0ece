// Package usage reads what the ChatGPT/Codex backend says about a login's
// usage limits into one [Snapshot], from the three places the Codex CLI
// reads it: the x-<limit>-… headers of every response ([FromHeader]), the
// body of a 429 that reports a usage limit rather than a plain rate limit
// ([FromResponse], which reads the headers too), and the
// codex.rate_limits event of a streamed SSE or WebSocket answer
// ([ParseEvent]). Every parser takes untrusted input: values that do not
// parse are left out, never guessed, and a malformed event is an error
// wrapping [ErrMalformed].
package usage

import (
	"errors"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// defaultLimitID is the limit whose headers carry no other name
// (x-codex-primary-used-percent, …).
const defaultLimitID = "codex"

// The kinds of usage limit a 429 body can report ([Snapshot.LimitReached]).
const (
	limitReached     = "usage_limit_reached"
	limitNotIncluded = "usage_not_included"
)

// ErrMalformed is wrapped by the error of [ParseEvent] for a
// codex.rate_limits event that is not well formed.
var ErrMalformed = errors.New("usage: malformed input")

// maxLimits bounds the limit families read from one header set.
const maxLimits = 16

// Window is one usage window of a limit.
type Window struct {
	// UsedPercent is the share of the window used, 0 to 100 (the server may
	// send more).
	UsedPercent float64
	// WindowMinutes is the window's length; 0 when not sent.
	WindowMinutes int64
	// ResetsAt is when the window resets; zero when not sent.
	ResetsAt time.Time
}

// Limit is one limit family: the x-<id>-… headers, or the limit of a
// codex.rate_limits event.
type Limit struct {
	// ID names the family in Codex's form: lower case, '-' read as '_'
	// ("codex", "codex_other"). Its headers spell it with '-'.
	ID string
	// Name is the display name the server gave (x-<id>-limit-name), if any.
	Name string
	// Primary and Secondary are the limit's windows; nil when not sent.
	Primary, Secondary *Window
}

// Credits is the login's credit balance.
type Credits struct {
	HasCredits bool
	Unlimited  bool
	Balance    string // as the server sent it; empty when not sent
}

// Snapshot is what one response or event said about the login's usage.
// The zero value means nothing was said.
type Snapshot struct {
	// Limits holds every limit family with at least one window, the
	// default ("codex") first, the others by ID.
	Limits []Limit
	// Credits is nil when not sent.
	Credits *Credits
	// PlanType is the login's plan, from an event or a 429 body.
	PlanType string
	// ActiveLimit (x-codex-active-limit) names the limit that was hit.
	ActiveLimit string
	// ReachedType (x-codex-rate-limit-reached-type) is the kind of limit
	// that was reached.
	ReachedType string
	// PromoMessage (x-codex-promo-message) is a message for the user.
	PromoMessage string
	// LimitReached is the usage limit a 429's body reported (read by
	// [FromResponse]): "usage_limit_reached" (used up until LimitResetsAt)
	// or "usage_not_included" (not in the plan); empty for any other
	// answer, a plain rate-limit 429 included.
	LimitReached string
	// LimitResetsAt is when that limit resets; zero when the body does
	// not say.
	LimitResetsAt time.Time
}

// Empty reports whether the snapshot says nothing.
func (s Snapshot) Empty() bool {
	return len(s.Limits) == 0 && s.Credits == nil && s.PlanType == "" &&
		s.ActiveLimit == "" && s.ReachedType == "" && s.PromoMessage == "" &&
		s.LimitReached == "" && s.LimitResetsAt.IsZero()
}

// MaxUsedPercent returns the largest UsedPercent of any window, and false
// when there is no window.
func (s Snapshot) MaxUsedPercent() (float64, bool) {
	best, ok := 0.0, false
	for _, l := range s.Limits {
		for _, w := range [2]*Window{l.Primary, l.Secondary} {
			if w != nil && (!ok || w.UsedPercent > best) {
				best, ok = w.UsedPercent, true
			}
		}
	}
	return best, ok
}

// FromHeader reads the usage headers of a response.
func FromHeader(h http.Header) Snapshot {
	// One pass keeps the x- headers by lower-case name (the client
	// canonicalises names, a caller-built header may not).
	vals := make(map[string]string)
	for k, vv := range h {
		if len(vv) == 0 || len(k) < 2 || (k[0] != 'x' && k[0] != 'X') || k[1] != '-' {
			continue
		}
		vals[strings.ToLower(k)] = vv[0]
	}
	var s Snapshot
	ids := []string{}
	seen := map[string]bool{}
	for k := range vals {
		rest, ok := strings.CutSuffix(k, "-primary-used-percent")
		if !ok {
			continue
		}
		// "x-primary-used-percent" has no id: its rest is "x", shorter
		// than the "x-" prefix the loop above checked on the whole name.
		rest, ok = strings.CutPrefix(rest, "x-")
		if !ok {
			continue
		}
		id := normalizeID(rest)
		if id == "" || id == defaultLimitID || seen[id] || len(ids) >= maxLimits-1 {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ids = append([]string{defaultLimitID}, ids...)
	for _, id := range ids {
		prefix := "x-" + strings.ReplaceAll(id, "_", "-")
		l := Limit{
			ID:        id,
			Name:      strings.TrimSpace(vals[prefix+"-limit-name"]),
			Primary:   headerWindow(vals, prefix+"-primary"),
			Secondary: headerWindow(vals, prefix+"-secondary"),
		}
		if l.Primary != nil || l.Secondary != nil {
			s.Limits = append(s.Limits, l)
		}
	}
	if has, ok := parseBool(vals["x-codex-credits-has-credits"]); ok {
		if unlimited, ok := parseBool(vals["x-codex-credits-unlimited"]); ok {
			s.Credits = &Credits{HasCredits: has, Unlimited: unlimited, Balance: strings.TrimSpace(vals["x-codex-credits-balance"])}
		}
	}
	s.ActiveLimit = strings.TrimSpace(vals["x-codex-active-limit"])
	s.ReachedType = strings.TrimSpace(vals["x-codex-rate-limit-reached-type"])
	s.PromoMessage = strings.TrimSpace(vals["x-codex-promo-message"])
	return s
}

// headerWindow reads <prefix>-used-percent, -window-minutes and -reset-at.
// As in Codex, a window needs a used percent, and one that is all zeros
// and has no reset time says nothing.
func headerWindow(vals map[string]string, prefix string) *Window {
	used, ok := parseFloat(vals[prefix+"-used-percent"])
	if !ok {
		return nil
	}
	minutes, hasMinutes := parseInt(vals[prefix+"-window-minutes"])
	reset, hasReset := parseInt(vals[prefix+"-reset-at"])
	if used == 0 && (!hasMinutes || minutes == 0) && !hasReset {
		return nil
	}
	w := &Window{UsedPercent: used, WindowMinutes: minutes}
	if hasReset {
		w.ResetsAt = time.Unix(reset, 0)
	}
	return w
}

// normalizeID is Codex's form of a limit id: trimmed, lower case, '-' as '_'.
func normalizeID(id string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(id)), "-", "_")
}

func parseFloat(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

func parseInt(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// parseBool accepts what Codex does: true/false in any case, 1 or 0.
func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true") || s == "1":
		return true, true
	case strings.EqualFold(s, "false") || s == "0":
		return false, true
	}
	return false, false
}

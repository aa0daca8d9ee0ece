// Package usage reads what the ChatGPT/Codex backend says about a login's
// usage limits, in the three places the Codex CLI reads it: the
// x-<limit>-… headers of every response, the codex.rate_limits event of a
// streamed (SSE or WebSocket) answer, and the body of a 429 that reports a
// usage limit rather than a plain rate limit.
//
// Every parser takes untrusted input: values that do not parse are left
// out, never guessed, and bad input is reported with an error wrapping
// [ErrMalformed].
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

// DefaultLimitID is the limit whose headers carry no other name
// (x-codex-primary-used-percent, …).
const DefaultLimitID = "codex"

// The kinds of usage limit a 429 body can report ([LimitError.Type]).
const (
	// TypeUsageLimitReached: the login used up a limit; it resets at
	// [LimitError.ResetsAt].
	TypeUsageLimitReached = "usage_limit_reached"
	// TypeUsageNotIncluded: the login's plan does not include this usage.
	TypeUsageNotIncluded = "usage_not_included"
)

// ErrMalformed is wrapped by the errors of [ParseEvent] for input that is
// not a well-formed event.
var ErrMalformed = errors.New("usage: malformed input")

// ErrNotRateLimitEvent is returned by [ParseEvent] for a well-formed event
// of another type.
var ErrNotRateLimitEvent = errors.New("usage: not a codex.rate_limits event")

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
}

// Empty reports whether the snapshot says nothing.
func (s Snapshot) Empty() bool {
	return len(s.Limits) == 0 && s.Credits == nil && s.PlanType == "" &&
		s.ActiveLimit == "" && s.ReachedType == "" && s.PromoMessage == ""
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

// Limit returns the limit with the given id ('-' and '_' alike, any case).
func (s Snapshot) Limit(id string) (Limit, bool) {
	id = normalizeID(id)
	for _, l := range s.Limits {
		if l.ID == id {
			return l, true
		}
	}
	return Limit{}, false
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
		id := normalizeID(rest[len("x-"):])
		if id == "" || id == DefaultLimitID || seen[id] || len(ids) >= maxLimits-1 {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ids = append([]string{DefaultLimitID}, ids...)
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

// MaxUsedPercent returns the largest used percent of any window in h (any
// x-<id>-primary-used-percent or x-<id>-secondary-used-percent), without
// building a [Snapshot]: it allocates nothing, for a caller that reads
// every response. ok is false when h has none.
func MaxUsedPercent(h http.Header) (best float64, ok bool) {
	for k, vv := range h {
		if len(vv) == 0 || len(k) < 2 || (k[0] != 'x' && k[0] != 'X') || k[1] != '-' {
			continue
		}
		if !hasSuffixFold(k, "-primary-used-percent") && !hasSuffixFold(k, "-secondary-used-percent") {
			continue
		}
		if v, good := parseFloat(vv[0]); good && (!ok || v > best) {
			best, ok = v, true
		}
	}
	return best, ok
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
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

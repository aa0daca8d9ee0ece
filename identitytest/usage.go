package identitytest

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Usage is what the protected resources say about one account's usage
// limits, in the headers the Codex CLI reads (x-codex-primary-used-percent
// and the rest). Zero fields are not sent.
type Usage struct {
	PrimaryUsedPercent     float64
	PrimaryWindowMinutes   int64
	PrimaryResetsAt        time.Time
	SecondaryUsedPercent   float64
	SecondaryWindowMinutes int64
	SecondaryResetsAt      time.Time
	// LimitName is sent as x-codex-limit-name.
	LimitName string
	// PlanType is the plan_type of a usage_limit_reached answer.
	PlanType string
	// HasCredits, UnlimitedCredits and CreditsBalance are the account's
	// credits: when any is set, x-codex-credits-has-credits and -unlimited
	// are sent, and -balance when it is not empty.
	HasCredits, UnlimitedCredits bool
	CreditsBalance               string
	// PromoMessage is sent as x-codex-promo-message.
	PromoMessage string
}

// usageState is the server's per-account usage: the configured headers,
// the limits reached and the resource requests counted. The zero value is
// ready; it has its own lock, so the resource route never holds s.mu
// while answering.
type usageState struct {
	mu       sync.Mutex
	accounts map[string]*accountUsage
}

type accountUsage struct {
	usage    Usage
	limited  time.Time // usage_limit_reached until then; zero: not limited
	requests int       // authenticated resource requests seen
	refused  int       // of which answered usage_limit_reached
}

// maxUsageAccounts bounds the accounts whose requests are counted without
// being configured.
const maxUsageAccounts = 4096

func (u *usageState) account(id string, create bool) *accountUsage {
	if u.accounts == nil {
		u.accounts = map[string]*accountUsage{}
	}
	a := u.accounts[id]
	if a == nil && (create || len(u.accounts) < maxUsageAccounts) {
		a = &accountUsage{}
		u.accounts[id] = a
	}
	return a
}

// SetUsage makes every accepted protected-resource answer to accountID
// (the ChatGPT-Account-ID of a Bearer or AgentAssertion request) carry the
// usage headers of u.
func (s *Server) SetUsage(accountID string, u Usage) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	s.usage.account(accountID, true).usage = u
}

// LimitUsage makes every protected-resource request of accountID answer
// 429 {"error":{"type":"usage_limit_reached","resets_at":<resetsAt>,…}}
// with x-codex-active-limit: codex and a primary window at 100 %, until
// the server's clock (Options.Now) reaches resetsAt. A zero resetsAt lifts
// the limit.
func (s *Server) LimitUsage(accountID string, resetsAt time.Time) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	s.usage.account(accountID, true).limited = resetsAt
}

// UsageRequests returns how many authenticated protected-resource requests
// of accountID the server received, and how many of them it refused with
// usage_limit_reached (they are in [Server.Requests] with Status 429).
func (s *Server) UsageRequests(accountID string) (requests, refused int) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	if a := s.usage.accounts[accountID]; a != nil {
		return a.requests, a.refused
	}
	return 0, 0
}

// usageAnswer is what the resource route answers an account about its
// usage: decided (and counted) before the request is logged, written after.
type usageAnswer struct {
	known   bool // the account has usage state
	usage   Usage
	limited bool
	reset   time.Time
}

// usageFor counts an accepted resource request of accountID and decides
// its usage answer.
func (s *Server) usageFor(accountID string) usageAnswer {
	now := s.now()
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	a := s.usage.account(accountID, false)
	if a == nil {
		return usageAnswer{}
	}
	a.requests++
	ua := usageAnswer{known: true, usage: a.usage, reset: a.limited, limited: !a.limited.IsZero() && now.Before(a.limited)}
	if ua.limited {
		a.refused++
	}
	return ua
}

// answerUsage sets the usage headers of ua and, for a limited account,
// answers usage_limit_reached (reporting true: the request is answered).
func (s *Server) answerUsage(w http.ResponseWriter, ua usageAnswer) bool {
	if !ua.known {
		return false
	}
	u, limited, reset := ua.usage, ua.limited, ua.reset
	h := w.Header()
	if limited {
		u.PrimaryUsedPercent = 100
		if u.PrimaryResetsAt.IsZero() || u.PrimaryResetsAt.Before(reset) {
			u.PrimaryResetsAt = reset
		}
		h.Set("x-codex-active-limit", "codex")
		h.Set("x-codex-rate-limit-reached-type", "primary")
	}
	setWindow(h, "x-codex-primary", u.PrimaryUsedPercent, u.PrimaryWindowMinutes, u.PrimaryResetsAt)
	setWindow(h, "x-codex-secondary", u.SecondaryUsedPercent, u.SecondaryWindowMinutes, u.SecondaryResetsAt)
	if u.LimitName != "" {
		h.Set("x-codex-limit-name", u.LimitName)
	}
	if u.HasCredits || u.UnlimitedCredits || u.CreditsBalance != "" {
		h.Set("x-codex-credits-has-credits", strconv.FormatBool(u.HasCredits))
		h.Set("x-codex-credits-unlimited", strconv.FormatBool(u.UnlimitedCredits))
		if u.CreditsBalance != "" {
			h.Set("x-codex-credits-balance", u.CreditsBalance)
		}
	}
	if u.PromoMessage != "" {
		h.Set("x-codex-promo-message", u.PromoMessage)
	}
	if !limited {
		return false
	}
	type limitBody struct {
		Type     string `json:"type"`
		Message  string `json:"message"`
		PlanType string `json:"plan_type,omitempty"`
		ResetsAt int64  `json:"resets_at"`
	}
	writeJSON(w, http.StatusTooManyRequests, struct {
		Error limitBody `json:"error"`
	}{limitBody{Type: "usage_limit_reached", Message: "The usage limit has been reached", PlanType: u.PlanType, ResetsAt: reset.Unix()}})
	return true
}

func setWindow(h http.Header, prefix string, used float64, minutes int64, reset time.Time) {
	if used == 0 && minutes == 0 && reset.IsZero() {
		return
	}
	h.Set(prefix+"-used-percent", strconv.FormatFloat(used, 'f', -1, 64))
	if minutes != 0 {
		h.Set(prefix+"-window-minutes", strconv.FormatInt(minutes, 10))
	}
	if !reset.IsZero() {
		h.Set(prefix+"-reset-at", strconv.FormatInt(reset.Unix(), 10))
	}
}

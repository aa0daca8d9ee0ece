package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	agentusage "github.com/agentauth/agentauth/usage"
)

// usageSummary describes, in "* usage: …" lines for do -v, what a response
// said about the login's usage limits (package usage reads the headers and
// a 429's body as the Codex CLI does); "" when it said nothing. A 429 body
// is read ahead and put back, so the caller still prints it whole.
func usageSummary(resp *http.Response) string {
	snap := agentusage.FromResponse(resp)
	if snap.Empty() {
		return ""
	}
	var b strings.Builder
	for _, l := range snap.Limits {
		name := l.ID
		if l.Name != "" {
			name += " (" + l.Name + ")"
		}
		for _, w := range []struct {
			which string
			w     *agentusage.Window
		}{{"primary", l.Primary}, {"secondary", l.Secondary}} {
			if w.w == nil {
				continue
			}
			fmt.Fprintf(&b, "* usage: %s %s window: %g%% used", name, w.which, w.w.UsedPercent)
			if w.w.WindowMinutes != 0 {
				fmt.Fprintf(&b, " of %d min", w.w.WindowMinutes)
			}
			if !w.w.ResetsAt.IsZero() {
				fmt.Fprintf(&b, ", resets %s", w.w.ResetsAt.UTC().Format(time.RFC3339))
			}
			b.WriteString("\n")
		}
	}
	if c := snap.Credits; c != nil {
		fmt.Fprintf(&b, "* usage: credits: has credits %t, unlimited %t", c.HasCredits, c.Unlimited)
		if c.Balance != "" {
			fmt.Fprintf(&b, ", balance %s", oneLine(c.Balance))
		}
		b.WriteString("\n")
	}
	if snap.ActiveLimit != "" || snap.ReachedType != "" {
		fmt.Fprintf(&b, "* usage: limit hit: %s %s\n", oneLine(snap.ActiveLimit), oneLine(snap.ReachedType))
	}
	if snap.PromoMessage != "" {
		fmt.Fprintf(&b, "* usage: message: %s\n", oneLine(snap.PromoMessage))
	}
	if snap.LimitReached != "" {
		fmt.Fprintf(&b, "* usage: %s", oneLine(snap.LimitReached))
		if snap.PlanType != "" {
			fmt.Fprintf(&b, " (plan %s)", oneLine(snap.PlanType))
		}
		if !snap.LimitResetsAt.IsZero() {
			fmt.Fprintf(&b, "; resets at %s", snap.LimitResetsAt.UTC().Format(time.RFC3339))
		}
		b.WriteString("\n")
	}
	return b.String()
}

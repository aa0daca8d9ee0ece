package identitytest

import (
	"net/http"
	"testing"
	"time"

	"github.com/agentauth/agentauth/usage"
)

func bearerGet(t *testing.T, c *http.Client, s *Server, token, account string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/v1/echo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("ChatGPT-Account-ID", account)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// The resource routes send each account's configured usage headers, in the
// form package usage (and the Codex CLI) reads, and answer
// usage_limit_reached for a limited account until its reset on the
// server's clock; other accounts are unaffected.
func TestUsageHeadersAndLimitPerAccount(t *testing.T) {
	s, clock := newTestServer(t, Options{AccessTokenAccounts: map[string]string{"tok-a": "acct-a", "tok-b": "acct-b"}})
	c := newClient(t)
	reset := t0.Add(5 * time.Hour)
	s.SetUsage("acct-a", Usage{PrimaryUsedPercent: 42.5, PrimaryWindowMinutes: 300, PrimaryResetsAt: reset,
		SecondaryUsedPercent: 10, HasCredits: true, CreditsBalance: "3", PromoMessage: "hi", PlanType: "pro"})

	resp := bearerGet(t, c, s, "tok-a", "acct-a")
	resp.Body.Close()
	snap := usage.FromResponse(resp)
	if resp.StatusCode != 200 || snap.LimitReached != "" {
		t.Fatalf("acct-a: status %d, limit %v", resp.StatusCode, snap.LimitReached)
	}
	if len(snap.Limits) == 0 || snap.Limits[0].ID != "codex" {
		t.Fatalf("acct-a limits = %+v", snap.Limits)
	}
	l := snap.Limits[0]
	if l.Primary == nil || l.Primary.UsedPercent != 42.5 || l.Primary.WindowMinutes != 300 ||
		!l.Primary.ResetsAt.Equal(reset) || l.Secondary == nil || l.Secondary.UsedPercent != 10 ||
		snap.Credits == nil || !snap.Credits.HasCredits || snap.Credits.Balance != "3" || snap.PromoMessage != "hi" {
		t.Fatalf("acct-a usage = %+v", snap)
	}
	resp = bearerGet(t, c, s, "tok-b", "acct-b")
	resp.Body.Close()
	if snap := usage.FromHeader(resp.Header); !snap.Empty() {
		t.Fatalf("acct-b has usage headers: %+v", snap)
	}

	limitReset := t0.Add(time.Hour)
	s.LimitUsage("acct-a", limitReset)
	resp = bearerGet(t, c, s, "tok-a", "acct-a")
	snap = usage.FromResponse(resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || snap.LimitReached != "usage_limit_reached" ||
		!snap.LimitResetsAt.Equal(limitReset) || snap.PlanType != "pro" || snap.ActiveLimit != "codex" {
		t.Fatalf("limited acct-a: status %d, usage %+v", resp.StatusCode, snap)
	}
	if p, _ := snap.MaxUsedPercent(); p != 100 {
		t.Errorf("limited used percent = %v", p)
	}
	resp = bearerGet(t, c, s, "tok-b", "acct-b")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("acct-b while acct-a is limited: %d", resp.StatusCode)
	}

	clock.Add(time.Hour)
	resp = bearerGet(t, c, s, "tok-a", "acct-a")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("acct-a after its reset: %d", resp.StatusCode)
	}
	var statuses []int
	for _, r := range s.Requests() {
		if r.Echo.AccountID == "acct-a" {
			statuses = append(statuses, r.Status)
		}
	}
	if len(statuses) != 3 || statuses[0] != 200 || statuses[1] != http.StatusTooManyRequests || statuses[2] != 200 {
		t.Errorf("logged statuses of acct-a = %v, want [200 429 200]", statuses)
	}
	if n, refused := s.UsageRequests("acct-a"); n != 3 || refused != 1 {
		t.Errorf("acct-a requests = %d (refused %d), want 3 (1)", n, refused)
	}
	if n, refused := s.UsageRequests("acct-b"); n != 2 || refused != 0 {
		t.Errorf("acct-b requests = %d (refused %d), want 2 (0)", n, refused)
	}
}

// An unauthenticated request is rejected before usage is counted.
func TestUsageCountsOnlyAuthenticatedRequests(t *testing.T) {
	s, _ := newTestServer(t, Options{AccessTokenAccounts: map[string]string{"tok-a": "acct-a"}})
	s.LimitUsage("acct-a", t0.Add(time.Hour))
	resp := bearerGet(t, newClient(t), s, "wrong", "acct-a")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n, _ := s.UsageRequests("acct-a"); n != 0 {
		t.Errorf("counted %d requests", n)
	}
}

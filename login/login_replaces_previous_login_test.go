package login

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/credentials"
)

// A new login replaces the previous one (its tokens, its personal access
// token), revokes the superseded refresh token, and keeps unknown members.
func TestLoginReplacesAndRevokesPreviousLogin(t *testing.T) {
	srv := newServer(t, identitytest.Options{})
	srv.SetDeviceCodeInterval(0)
	old, err := srv.IssueLogin(identitytest.Login{AccountID: "acct-old", UserID: "user-old"})
	if err != nil {
		t.Fatal(err)
	}
	home := writeLogin(t, old, `"personal_access_token": "at-old", "future_member": 7`)
	out := newOut()
	done := make(chan error, 1)
	go func() {
		done <- DeviceCode(testCtx(t), Options{CodexHome: home, Issuer: srv.URL(), Out: out, Getenv: env()})
	}()
	if err := srv.ApproveDeviceCode(out.await(t, userCodeLine), identitytest.Login{AccountID: "acct-new", UserID: "user-new"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !srv.TokenRevoked(old.RefreshToken) {
		t.Error("the superseded refresh token was not revoked")
	}
	data, err := os.ReadFile(filepath.Join(home, "auth.json"))
	if err != nil {
		t.Fatal(err)
	}
	af, err := credentials.ParseAuthFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if af.PersonalAccessToken != "" || af.Tokens.AccountID != "acct-new" || srv.TokenRevoked(af.Tokens.RefreshToken) {
		t.Errorf("the previous login survived or the new one is revoked")
	}
	if x, ok := af.Extra("future_member"); !ok || strings.TrimSpace(string(x)) != "7" {
		t.Error("an unknown member was lost")
	}
}

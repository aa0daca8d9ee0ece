package identitytest

import (
	"testing"

	"github.com/agentauth/agentauth/internal/identity"
)

func TestRegisterRuntimeKeyTrustsAPublicKey(t *testing.T) {
	srv, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RegisterRuntimeKey("rt-known", key.SSHPublicKey()); err != nil {
		t.Fatal(err)
	}
	if err := srv.RegisterRuntimeKey("rt-known", key.SSHPublicKey()); err != nil {
		t.Errorf("same key again: %v", err)
	}
	if err := srv.RegisterRuntimeKey("rt-known", other.SSHPublicKey()); err == nil {
		t.Error("another key for a known runtime was accepted")
	}
	for _, bad := range [][2]string{{"", key.SSHPublicKey()}, {"rt-x", "ssh-ed25519 !!"}, {"rt-y", "ssh-rsa AAAA"}} {
		if err := srv.RegisterRuntimeKey(bad[0], bad[1]); err == nil {
			t.Errorf("RegisterRuntimeKey(%q, %q) accepted", bad[0], bad[1])
		}
	}
	rts := srv.Runtimes()
	if len(rts) != 1 || rts[0].RuntimeID != "rt-known" || rts[0].PublicKeySSH != key.SSHPublicKey() {
		t.Fatalf("runtimes %+v", rts)
	}
	if srv.Stats().AgentRegistrations != 0 {
		t.Error("a trusted key counted as an agent registration")
	}
}

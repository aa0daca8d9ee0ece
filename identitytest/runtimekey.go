package identitytest

import (
	"crypto/ed25519"
	"fmt"

	"github.com/agentauth/agentauth/internal/identity"
)

// RegisterRuntimeKey makes a runtime known to the server from its id and
// public key alone ("ssh-ed25519 ..." as on the wire), as if it had gone
// through agent registration. It is what [Server.RegisterRuntime] does without
// needing the private key, so a server can trust a record that was
// generated elsewhere (agentauth keygen) without ever holding its key. It
// does not count in Stats.AgentRegistrations. The same id with the same
// key again is a no-op; with another key it is an error.
func (s *Server) RegisterRuntimeKey(runtimeID, publicKeySSH string) error {
	if runtimeID == "" {
		return fmt.Errorf("identitytest: RegisterRuntimeKey: empty runtime id")
	}
	pub, err := identity.ParseSSHPublicKey(publicKeySSH)
	if err != nil {
		return fmt.Errorf("identitytest: RegisterRuntimeKey: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.runtimes[runtimeID]; ok {
		if !old.pub.Equal(pub) {
			return fmt.Errorf("identitytest: RegisterRuntimeKey: runtime %q is already registered with another key", runtimeID)
		}
		return nil
	}
	s.addRuntimeLocked(&runtimeEntry{
		info: Runtime{RuntimeID: runtimeID, PublicKeySSH: identity.FormatSSHPublicKey(pub)},
		pub:  ed25519.PublicKey(pub),
	})
	return nil
}

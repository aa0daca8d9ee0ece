package transport_test

// Agent identities and unique names: runtimes registered at the reference
// server, records no server knows, and keys of known seed for the secret
// scans.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/agentauth/agentauth/identitytest"
	"github.com/agentauth/agentauth/internal/identity"
)

// acctSeq makes account ids unique within the test binary: agent
// provisioning is single-flighted process-wide per account.
var acctSeq atomic.Int64

func uniqueAccount(prefix string) string {
	return fmt.Sprintf("acct-%s-%d", prefix, acctSeq.Add(1))
}

// unique returns a name unique in the test binary.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, acctSeq.Add(1)) }

// newRuntime makes a fresh Agent Identity known to srv without minting a JWT
// (cheaper than srv.NewAgentIdentity, which creates an RSA issuer key). Its
// runtime id is unique in the process, so no two tests share a process task.
func newRuntime(t testing.TB, srv *identitytest.Server, accountID string, fedRAMP bool) identity.Record {
	t.Helper()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return registerAgent(t, srv, key, accountID, fedRAMP)
}

// registerAgent makes an Agent Identity with key known to srv.
func registerAgent(t testing.TB, srv *identitytest.Server, key *identity.PrivateKey, accountID string, fedRAMP bool) identity.Record {
	t.Helper()
	ident := identity.Record{
		AgentRuntimeID:  unique("rt"),
		AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID:       accountID,
		ChatGPTUserID:   "user-helper",
		PlanType:        "plus",
		IsFedRAMP:       fedRAMP,
	}
	if err := srv.RegisterRuntime(ident); err != nil {
		t.Fatal(err)
	}
	return ident
}

// agentIdentityRecord returns a fresh Agent Identity record that no server
// knows, for tests whose registrations go to a fake.
func agentIdentityRecord(t testing.TB) identity.Record {
	t.Helper()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return identity.Record{
		AgentRuntimeID:  unique("rt-fake"),
		AgentPrivateKey: identity.Secret(key.MarshalPrivateKey()),
		AccountID:       uniqueAccount("fake"),
	}
}

// constReader yields the same byte forever: as the KeyRand test hook it makes
// the key of a provisioned identity known to the test (seed = 32 × b), so
// the test can search outputs for it.
type constReader byte

func (r constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// keySecrets returns the forms of the private key with seed 32 × b that
// must never be printed: the PKCS#8 base64 of auth.json and the raw seed in
// hex.
func keySecrets(t testing.TB, b byte) (*identity.PrivateKey, []string) {
	t.Helper()
	seed := bytes.Repeat([]byte{b}, 32)
	key, err := identity.NewPrivateKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return key, []string{key.MarshalPrivateKey(), hex.EncodeToString(seed)}
}

// seededAgent makes an Agent Identity with seed 32 × b known to srv and
// returns it with its secret forms.
func seededAgent(t testing.TB, srv *identitytest.Server, b byte) (identity.Record, []string) {
	t.Helper()
	key, secrets := keySecrets(t, b)
	return registerAgent(t, srv, key, unique("acct"), false), secrets
}

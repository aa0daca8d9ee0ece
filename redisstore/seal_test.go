package redisstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
)

func TestSealRoundTripAndRotation(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	plain := []byte("refresh-token-secret")
	old := newSealer(t, oldKey)
	sealedOld, err := old.seal("k1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealedOld, plain) {
		t.Fatal("sealed value holds the plaintext")
	}
	if got, err := old.open("k1", sealedOld); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	// Rotation: the new key first, the old one still listed.
	rotated := newSealer(t, newKey, oldKey)
	if got, err := rotated.open("k1", sealedOld); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("rotated sealer cannot open an old value: %v", err)
	}
	sealedNew, err := rotated.seal("k1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.KeyID() == old.KeyID() || !bytes.Equal(sealedNew[1:1+keyIDSize], newSealer(t, newKey).keys[0].id[:]) {
		t.Fatal("the rotated sealer does not seal with its first key")
	}
	if _, err := newSealer(t, newKey).open("k1", sealedNew); err != nil {
		t.Fatalf("the new key alone cannot open what the rotated sealer sealed: %v", err)
	}
	// Once the old key is dropped, old values fail clearly.
	if _, err := newSealer(t, newKey).open("k1", sealedOld); !errors.Is(err, ErrUnknownSealingKey) {
		t.Fatalf("old value under the new key only: %v, want ErrUnknownSealingKey", err)
	}
	// Two seals of the same plaintext differ (fresh nonces).
	again, _ := old.seal("k1", plain)
	if bytes.Equal(again, sealedOld) {
		t.Fatal("sealing is deterministic")
	}
}

func TestSealRejectsTamperingAndMovedValues(t *testing.T) {
	s := newSealer(t, newKey(t))
	sealed, err := s.seal("agentauth:login:{a}:tokens", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.open("agentauth:login:{b}:tokens", sealed); !errors.Is(err, ErrSealedValueInvalid) {
		t.Fatalf("value moved to another key: %v, want ErrSealedValueInvalid", err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		_, err := s.open("agentauth:login:{a}:tokens", bad)
		if !errors.Is(err, ErrSealedValueInvalid) && !errors.Is(err, ErrUnknownSealingKey) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, v := range [][]byte{nil, []byte("plain text value"), sealed[:sealOverhead-1]} {
		if _, err := s.open("agentauth:login:{a}:tokens", v); !errors.Is(err, ErrSealedValueInvalid) {
			t.Fatalf("%q: %v", v, err)
		}
	}
}

func TestSealingKeyParsing(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	s, err := ParseSealingKeys(base64.StdEncoding.EncodeToString(k1) + ", " + base64.RawURLEncoding.EncodeToString(k2))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.keys) != 2 || s.KeyID() != newSealer(t, k1).KeyID() {
		t.Fatalf("parsed %v", s)
	}
	short := base64.StdEncoding.EncodeToString(k1[:16])
	for _, text := range []string{"", " , ", "not-base64!!", short, base64.StdEncoding.EncodeToString(k1) + "," + base64.StdEncoding.EncodeToString(k1)} {
		_, err := ParseSealingKeys(text)
		if err == nil {
			t.Fatalf("%q accepted", text)
		}
		for _, part := range strings.Split(text, ",") {
			if part = strings.TrimSpace(part); len(part) >= 8 && strings.Contains(err.Error(), part) {
				t.Fatalf("error echoes the key text: %v", err)
			}
		}
	}
	if _, err := ParseSealingKeys(""); !errors.Is(err, ErrNoSealingKey) {
		t.Fatalf("empty: %v", err)
	}
	for _, v := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(v, base64.StdEncoding.EncodeToString(k1)) || strings.Contains(v, string(k1)) || !strings.Contains(v, s.KeyID()) {
			t.Fatalf("Sealer prints %q", v)
		}
	}
}

// Without a sealing key the store still shares thread tasks, but refuses
// every secret, and writes nothing for them.
func TestStoreRefusesSecretsWithoutSealingKey(t *testing.T) {
	addr := redisAddr(t)
	prefix := uniquePrefix(t)
	s := newStore(t, addr, Options{Prefix: prefix, LoginPrefix: prefix + "login:", Getenv: func(string) string { return "" }})
	ctx := context.Background()
	rec := testRecord(t, "acct-nokey", "user-nokey")
	if err := s.SaveAgentIdentity(ctx, &rec); !errors.Is(err, ErrNoSealingKey) {
		t.Fatalf("SaveAgentIdentity without a key: %v", err)
	}
	if _, err := s.LoadAgentIdentity(ctx, credentials.Login{AccountID: "acct-nokey", UserID: "user-nokey"}); !errors.Is(err, ErrNoSealingKey) {
		t.Fatalf("LoadAgentIdentity without a key: %v", err)
	}
	if _, err := s.RefreshCoordinator(credentials.Login{AccountID: "acct-nokey"}, CoordinatorOptions{}); !errors.Is(err, ErrNoSealingKey) {
		t.Fatalf("RefreshCoordinator without a key: %v", err)
	}
	if !strings.Contains(ErrNoSealingKey.Error(), SealingKeyEnv) {
		t.Fatalf("the error does not say how to configure a key: %v", ErrNoSealingKey)
	}
	keys, err := newClient(t, addr).Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys written without a sealing key: %v %v", keys, err)
	}
}

func TestStoreSealingKeyFromEnvironment(t *testing.T) {
	addr := redisAddr(t)
	k := newKey(t)
	env := map[string]string{SealingKeyEnv: base64.StdEncoding.EncodeToString(k)}
	s := newStore(t, addr, Options{LoginPrefix: uniquePrefix(t), Getenv: func(n string) string { return env[n] }})
	if s.sealer == nil || s.sealer.KeyID() != newSealer(t, k).KeyID() {
		t.Fatal("the environment's key is not used")
	}
	env[SealingKeyEnv] = "garbage-that-is-not-a-key"
	_, err := New(newClient(t, addr), Options{Getenv: func(n string) string { return env[n] }})
	if err == nil || strings.Contains(err.Error(), env[SealingKeyEnv]) || !strings.Contains(err.Error(), SealingKeyEnv) {
		t.Fatalf("malformed %s: %v", SealingKeyEnv, err)
	}
}

// Acceptance 5 (second half): a replica with the wrong key gets a clear
// error, never a garbled identity or token set; a rotated replica (new key
// first, old listed) opens what the old one sealed, and what it seals opens
// with the new key alone; a value copied to another login's key opens
// nowhere.
func TestStoreSealingKeysInRedis(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	oldKey, newKey, otherKey := newKey(t), newKey(t), newKey(t)
	loginPrefix := uniquePrefix(t)
	store := func(keys ...[]byte) *Store {
		return newSealedStore(t, addr, newSealer(t, keys...), Options{LoginPrefix: loginPrefix})
	}
	rec := testRecord(t, "acct-seal", "user-seal")
	login := credentials.Login{AccountID: rec.AccountID, UserID: rec.ChatGPTUserID}
	if err := store(oldKey).SaveAgentIdentity(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	if _, err := store(otherKey).LoadAgentIdentity(ctx, login); !errors.Is(err, ErrUnknownSealingKey) {
		t.Fatalf("wrong key: %v, want ErrUnknownSealingKey", err)
	}
	got, err := store(newKey, oldKey).LoadAgentIdentity(ctx, login)
	if err != nil || got == nil || got.AgentRuntimeID != rec.AgentRuntimeID || got.AgentPrivateKey != rec.AgentPrivateKey {
		t.Fatalf("rotated store: %v, %v", got, err)
	}

	ts := testTokenSet("seal", 1, time.Hour)
	rotated, err := store(newKey, oldKey).RefreshCoordinator(login, CoordinatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rotated.CompareAndSwap(ctx, nil, ts); err != nil {
		t.Fatal(err)
	}
	if got, err := mustCoordinator(t, store(newKey), login).Load(ctx); err != nil || got == nil || got.RefreshToken != ts.RefreshToken {
		t.Fatalf("new key alone: %v, %v", got, err)
	}
	if _, err := mustCoordinator(t, store(oldKey), login).Load(ctx); !errors.Is(err, ErrUnknownSealingKey) {
		t.Fatalf("old key alone after rotation: %v, want ErrUnknownSealingKey", err)
	}

	// Associated data: another login's key does not accept this value.
	c := newClient(t, addr)
	s := store(newKey, oldKey)
	other := credentials.Login{AccountID: "acct-victim", UserID: "user-victim"}
	from, to := s.loginKeysFor(login), s.loginKeysFor(other)
	v, err := c.Get(ctx, from.identity).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, to.identity, v, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadAgentIdentity(ctx, other); !errors.Is(err, ErrSealedValueInvalid) || got != nil {
		t.Fatalf("identity moved to another login's key: %v, %v", got, err)
	}
	h, err := c.HGetAll(ctx, from.tokens).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, to.tokens, "d", h["d"], "s", h["s"]).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := mustCoordinator(t, s, other).Load(ctx); !errors.Is(err, ErrSealedValueInvalid) || got != nil {
		t.Fatalf("token set moved to another login's key: %v, %v", got, err)
	}
}

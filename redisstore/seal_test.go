package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/identity"
)

func newKey(tb testing.TB) []byte {
	tb.Helper()
	k := make([]byte, SealingKeySize)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return k
}

func newSealer(tb testing.TB, keys ...[]byte) *Sealer {
	tb.Helper()
	s, err := NewSealer(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newSealedStore is newStore with a sealing key.
func newSealedStore(tb testing.TB, addr string, sealer *Sealer, opts Options) *Store {
	tb.Helper()
	opts.Sealer = sealer
	if opts.LoginPrefix == "" {
		opts.LoginPrefix = uniquePrefix(tb) + "login:"
	}
	return newStore(tb, addr, opts)
}

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

func mustCoordinator(tb testing.TB, s *Store, login credentials.Login) *Coordinator {
	tb.Helper()
	c, err := s.RefreshCoordinator(login, CoordinatorOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// testRecord is a valid identity for account and user with a fresh key.
func testRecord(tb testing.TB, account, user string) identity.Record {
	tb.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return identity.Record{AgentRuntimeID: "runtime-" + account + "-" + randHex(tb), AgentPrivateKey: identity.Secret(k.MarshalPrivateKey()),
		AccountID: account, ChatGPTUserID: user, PlanType: "plus"}
}

func randHex(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// testEpoch is the issue time (seconds) of generation 0 of every
// testTokenSet login, an hour ago.
var testEpoch = time.Now().Add(-time.Hour).Unix()

// testTokenSet is generation n of a login's tokens: a JWT-shaped access
// token expiring after life, and opaque refresh and id tokens, all unique.
func testTokenSet(name string, n int, life time.Duration) *credentials.TokenSet {
	exp := time.Now().Add(life).Unix()
	// iat orders the generations of a login (n), as the token endpoint's
	// issue times do.
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"exp":%d,"iat":%d,"n":%d}`, exp, testEpoch+int64(n), n))
	r := make([]byte, 8)
	rand.Read(r)
	return &credentials.TokenSet{
		AccessToken:  "eyJhbGciOiJub25lIn0." + payload + fmt.Sprintf(".sig%x", r),
		RefreshToken: fmt.Sprintf("rt-%s-%d-%x", name, n, r),
		IDToken:      fmt.Sprintf("idt-%s-%d-%x", name, n, r),
		AccountID:    "acct-" + name,
		LastRefresh:  time.Now().UTC().Truncate(time.Second),
	}
}

// Acceptance 5 (first half): after a login's identity is stored and its
// tokens rotated a few times, SCAN of the whole database with GET or
// HGETALL of every key finds no token, no private key, and no key name
// that reveals the account or user.
func TestRedisHoldsNoSecretInTheClear(t *testing.T) {
	addr := redisAddr(t)
	ctx := context.Background()
	s := newSealedStore(t, addr, newSealer(t, newKey(t)), Options{})
	rec := testRecord(t, "acct-scan-"+randHex(t), "user-scan-"+randHex(t))
	login := credentials.Login{AccountID: rec.AccountID, UserID: rec.ChatGPTUserID}
	if err := s.SaveAgentIdentity(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	c := coordinator(t, s, login, CoordinatorOptions{})
	secrets := []string{rec.AgentPrivateKey.Reveal()}
	var prev *credentials.TokenSet
	for n := range 4 {
		next := testTokenSet("scan", n, time.Hour)
		next.AccountID = rec.AccountID
		release, err := c.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = c.CompareAndSwap(ctx, prev, next)
		release()
		if err != nil {
			t.Fatal(err)
		}
		prev = next
		secrets = append(secrets, next.AccessToken, next.RefreshToken, next.IDToken,
			strings.Split(next.AccessToken, ".")[1]) // the JWT payload alone
	}
	scanAll(t, addr, secrets, []string{rec.AccountID, rec.ChatGPTUserID, rec.AgentRuntimeID})
}

// Printing a Store, a Sealer or a Coordinator with any verb reveals no key
// and no token.
func TestPrintingRevealsNoSecret(t *testing.T) {
	addr := redisAddr(t)
	k := newKey(t)
	sealer := newSealer(t, k)
	s := newSealedStore(t, addr, sealer, Options{})
	ts := testTokenSet("print", 1, time.Hour)
	c := coordinator(t, s, credentials.Login{AccountID: ts.AccountID}, CoordinatorOptions{Initial: ts})
	if _, err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	secrets := []string{string(k), base64.StdEncoding.EncodeToString(k), fmt.Sprintf("%x", k), ts.AccessToken, ts.RefreshToken, ts.IDToken}
	for _, v := range []any{s, sealer, c} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, v)
			for _, sec := range secrets {
				if strings.Contains(out, sec) {
					t.Fatalf("%s of %T reveals a secret: %s", verb, v, out)
				}
			}
		}
	}
}

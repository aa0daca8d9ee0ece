package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
	"github.com/redis/go-redis/v9"
)

// ErrIdentityExists is what a concurrent provisioning gets: it is returned
// by [Store.SaveAgentIdentity] when another replica stored an identity for
// the login first (two replicas provisioned at once, for example after
// one's provisioning reservation expired). The fleet keeps the first one
// (every replica that loads the login signs with it); the caller's record
// is not stored, and the caller should load the stored identity and sign
// with it rather than treat the login as failed.
//
// It wraps the error by which the transport recognises a lost race, so the
// transport adopts the stored winner.
var ErrIdentityExists = errIdentityExists

// errIdentityExists wraps the engine's sentinel (kept out of go doc).
var errIdentityExists = fmt.Errorf("redisstore: %w", credentials.ErrIdentityExists)

// loginKeys are the Redis keys of one ChatGPT login.
type loginKeys struct {
	identity, identityLock, tokens, tokensLock string
	// tokensHolder names the last replica that took the refresh lock
	// while it may still have a rotation to publish; tokensGrace is the
	// wait the next holder grants it (see lockScript).
	tokensHolder, tokensGrace string
}

// loginKeysFor derives the keys of login from a SHA-256 hash of its
// account and user ids (length-prefixed, so no two logins collide), so
// Redis key names carry neither id. The hash is unkeyed: someone who can
// list the keys and already knows an account and user id can confirm that
// the login is stored.
func (s *Store) loginKeysFor(login transport.Login) loginKeys { return s.markedLoginKeys(login, "") }

// markedLoginKeys is loginKeysFor for a login told apart by mark too (see
// loginMark); "" is the login's account and user alone.
func (s *Store) markedLoginKeys(login transport.Login, mark string) loginKeys {
	h := sha256.New()
	h.Write([]byte("agentauth/redisstore login\x00"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(login.AccountID)))
	h.Write(n[:])
	h.Write([]byte(login.AccountID))
	if mark != "" {
		binary.BigEndian.PutUint64(n[:], uint64(len(login.UserID)))
		h.Write([]byte("\x00marked\x00"))
		h.Write(n[:])
		h.Write([]byte(login.UserID))
		h.Write([]byte(mark))
	} else {
		h.Write([]byte(login.UserID))
	}
	base := s.opts.LoginPrefix + "{" + hex.EncodeToString(h.Sum(nil)) + "}"
	return loginKeys{
		identity:     base + ":identity",
		identityLock: base + ":identity:lock",
		tokens:       base + ":tokens",
		tokensLock:   base + ":tokens:lock",
		tokensHolder: base + ":tokens:holder",
		tokensGrace:  base + ":tokens:grace",
	}
}

const (
	identityHit    = 1
	identityLocked = 2
	identityBusy   = 0
)

// identityAcquireScript returns {1, sealed} when the login has an
// identity; otherwise it reserves the provisioning for this Store (taking
// the lock, or renewing it when this Store already holds it) and returns
// {2, ""}, or {0, ""} when another Store is provisioning.
var identityAcquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  return {1, cur}
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {2, ''}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, ''}
end
return {0, ''}
`)

// identitySaveScript stores ARGV[1] unless an identity is stored already
// (first save wins), releases this Store's provisioning lock, and returns
// the identity stored before, or false when ARGV[1] was stored.
var identitySaveScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1])
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return cur
`)

// LoadAgentIdentity implements [transport.IdentityStore]: it returns the
// fleet's agent identity for login (one stored for the same account and
// user), or nil, nil when there is none yet.
//
// On a miss it also makes provisioning single-flight across the fleet:
// it reserves the login's provisioning for this Store (a lock that lives
// Options.LockTimeout, released by SaveAgentIdentity, and also as soon as
// ctx ends: every way out of a provisioning that fails, a registration
// answering 503 included, frees it, so the replicas waiting for it
// provision at once instead of waiting for the lock to expire) and returns nil, so
// the caller registers an agent and saves it; a replica that misses while
// another provisions waits until the other's identity is stored, or its
// lock is gone, or two thirds of ctx's time have passed (it then returns
// nil, nil and provisions itself; its save then loses to the first one).
// Calls through the same Store never wait for each other, so a transport
// that loads again before saving does not deadlock.
//
// A Redis failure is an *[Error] (Op "load identity") that is temporary,
// so the transport falls back to Bearer for its cooldown instead of
// provisioning an identity the fleet would not share. A value that does not
// open with the configured sealing keys is an error wrapping
// [ErrUnknownSealingKey] or [ErrSealedValueInvalid], never a record.
func (s *Store) LoadAgentIdentity(ctx context.Context, login transport.Login) (*transport.IdentityRecord, error) {
	if s.sealer == nil {
		return nil, ErrNoSealingKey
	}
	k := s.loginKeysFor(login)
	var giveUp <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		if d := time.Until(deadline) * 2 / 3; d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			giveUp = t.C
		}
	}
	wait := s.opts.PollInterval
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		opCtx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
		res, err := identityAcquireScript.Run(opCtx, s.client, []string{k.identity, k.identityLock},
			s.instance, s.opts.LockTimeout.Milliseconds()).Slice()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, &Error{Op: "load identity", Err: context.Cause(ctx)}
			}
			s.failed(err)
			return nil, &Error{Op: "load identity", Err: err}
		}
		s.healthy()
		state, val, err := parsePair(res)
		if err != nil {
			return nil, &Error{Op: "load identity", Err: err}
		}
		switch state {
		case identityHit:
			return s.openRecord(k.identity, login, val)
		case identityLocked:
			s.reserve(ctx, k.identityLock)
			return nil, nil
		case identityBusy: // another replica provisions: wait below
		default:
			return nil, &Error{Op: "load identity", Err: errors.New("unexpected reply from the identity script")}
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil, &Error{Op: "load identity", Err: context.Cause(ctx)}
		case <-giveUp:
			s.log.DebugContext(ctx, "agentauth/redisstore: another replica has been provisioning this login too long; provisioning here")
			return nil, nil
		case <-timer.C:
		}
		wait = min(2*wait, s.opts.MaxPollInterval)
	}
}

func parsePair(res []any) (int, string, error) {
	if len(res) != 2 {
		return 0, "", fmt.Errorf("unexpected reply of %d elements from a script", len(res))
	}
	st, ok1 := res[0].(int64)
	val, ok2 := res[1].(string)
	if !ok1 || !ok2 {
		return 0, "", errors.New("unexpected reply from a script")
	}
	return int(st), val, nil
}

func (s *Store) openRecord(key string, login transport.Login, sealed string) (*transport.IdentityRecord, error) {
	pt, err := s.sealer.open(key, []byte(sealed))
	if err != nil {
		return nil, fmt.Errorf("redisstore: opening the stored agent identity: %w", err)
	}
	// The sealed form is the record's StorageJSON, which a Record decodes.
	var sr transport.IdentityRecord
	if err := json.Unmarshal(pt, &sr); err != nil {
		return nil, fmt.Errorf("redisstore: the stored agent identity is not a record: %w", ErrSealedValueInvalid)
	}
	if sr.AccountID != login.AccountID || sr.ChatGPTUserID != login.UserID {
		// Only a hash collision or a hand-written value gets here.
		return nil, nil
	}
	return &sr, nil
}

// SaveAgentIdentity implements [transport.IdentityStore]: it seals rec
// and stores it under its AccountID and ChatGPTUserID unless the login has
// an identity already, and releases the provisioning lock
// LoadAgentIdentity took. Unlike the transport's default store (a file in
// the Codex home), the first identity stored wins: a replica whose
// provisioning raced another one's gets an error wrapping
// [ErrIdentityExists] and the fleet keeps signing with the first (saving
// the identity that is already stored is not an error). Without a sealing key it returns [ErrNoSealingKey] and stores
// nothing.
func (s *Store) SaveAgentIdentity(ctx context.Context, rec *transport.IdentityRecord) error {
	if rec == nil {
		return errors.New("redisstore: SaveAgentIdentity: nil record")
	}
	if err := rec.Validate(); err != nil {
		return fmt.Errorf("redisstore: SaveAgentIdentity: %w", err)
	}
	if s.sealer == nil {
		return ErrNoSealingKey
	}
	login := transport.Login{AccountID: rec.AccountID, UserID: rec.ChatGPTUserID}
	k := s.loginKeysFor(login)
	pt, err := rec.StorageJSON()
	if err != nil {
		return fmt.Errorf("redisstore: SaveAgentIdentity: %w", err)
	}
	sealed, err := s.sealer.seal(k.identity, pt)
	if err != nil {
		return err
	}
	// The outcome must reach Redis even when ctx ended just now, or the
	// other replicas would wait for the whole LockTimeout.
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.OpTimeout)
	defer cancel()
	prev, err := identitySaveScript.Run(opCtx, s.client, []string{k.identity, k.identityLock}, sealed, s.instance).Text()
	switch {
	case errors.Is(err, redis.Nil):
		s.healthy()
		return nil
	case err != nil:
		s.failed(err)
		return &Error{Op: "save identity", Err: err}
	}
	s.healthy()
	stored, err := s.openRecord(k.identity, login, prev)
	if err != nil {
		return err
	}
	if stored != nil && stored.AgentRuntimeID == rec.AgentRuntimeID {
		return nil
	}
	storedID := ""
	if stored != nil {
		storedID = stored.AgentRuntimeID
	}
	return fmt.Errorf("%w (stored runtime %q, not %q)", ErrIdentityExists, storedID, rec.AgentRuntimeID)
}

var _ transport.IdentityStore = (*Store)(nil)

// reserve ties this Store's provisioning reservation of lockKey to ctx:
// when ctx ends (the provisioning that loaded returned, whichever way) and
// no other provisioning of this Store holds it, the lock is freed if it
// is still this Store's. A ctx that never ends leaves the lock to
// SaveAgentIdentity or to its expiry (Options.LockTimeout).
func (s *Store) reserve(ctx context.Context, lockKey string) {
	if ctx.Done() == nil {
		return
	}
	s.provMu.Lock()
	if s.prov == nil {
		s.prov = map[string]int{}
	}
	s.prov[lockKey]++
	s.provMu.Unlock()
	context.AfterFunc(ctx, func() {
		s.provMu.Lock()
		s.prov[lockKey]--
		last := s.prov[lockKey] == 0
		if last {
			delete(s.prov, lockKey)
		}
		s.provMu.Unlock()
		if !last {
			return
		}
		opCtx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
		defer cancel()
		if err := compareAndDelete.Run(opCtx, s.client, []string{lockKey}, s.instance).Err(); err != nil {
			s.failed(err)
			return
		}
		s.healthy()
	})
}

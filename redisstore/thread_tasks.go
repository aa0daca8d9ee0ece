package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/transport"
	"github.com/redis/go-redis/v9"
)

// keys are the Redis keys of one thread.
type keys struct{ mapping, lock string }

// keysFor derives the keys of key. Hashing (with the runtime id
// length-prefixed, so no two pairs collide) bounds the key length and keeps
// arbitrary thread keys out of Redis key syntax.
func (s *Store) keysFor(key transport.TaskKey) keys {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(key.RuntimeID)))
	h.Write(n[:])
	h.Write([]byte(key.RuntimeID))
	h.Write([]byte(key.ExternalRef))
	m := s.opts.Prefix + "{" + hex.EncodeToString(h.Sum(nil)) + "}"
	return keys{mapping: m, lock: m + ":lock"}
}

// acquireScript looks the mapping up (refreshing its TTL on a hit) and, on
// a miss, tries to take the lock, atomically, so that a replica never
// registers after another one published. It returns {1, id} on a hit,
// {2, ""} when the lock was taken and {0, ""} when another replica holds it.
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, cur}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, ''}
end
return {0, ''}
`)

// publishScript stores the mapping unless one already exists (first
// publish wins, so a replica whose lock expired mid-registration adopts the
// fleet's task instead of replacing it), releases the lock if this replica
// still holds it, and returns the task id the fleet uses.
var publishScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur or cur == '' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  cur = ARGV[1]
end
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
return cur
`)

// compareAndDelete deletes KEYS[1] only if it holds ARGV[1]: a lock this
// replica still owns, or a mapping that still names the rejected task.
var compareAndDelete = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

const (
	stateBusy   = 0
	stateHit    = 1
	stateLocked = 2
)

// Resolve implements [transport.TaskStore]: it returns the fleet's task for
// key, registering (with register) and publishing one when the fleet has
// none. When Redis fails or is slower than OpTimeout it calls register
// itself and returns that task without sharing it; so it does when another
// replica has held the registration lock for two thirds of ctx's time
// (a holder that died leaves its lock for LockTimeout). register's error
// is returned unchanged; the only other error is an *[Error] with Op
// "wait", when ctx ends (without a deadline, or before the two thirds)
// while another replica registers.
func (s *Store) Resolve(ctx context.Context, key transport.TaskKey, register func(context.Context) (string, error)) (string, error) {
	if register == nil {
		return "", errors.New("redisstore: nil register function")
	}
	k := s.keysFor(key)
	token, err := s.token()
	if err != nil {
		return "", err
	}
	wait := s.opts.PollInterval
	waited := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// A holder that died, or whose publish failed, leaves its lock for
	// LockTimeout, longer than one registration attempt. Waiting for it
	// would fail the attempt, so a waiter stops after two thirds of its
	// time and registers locally with the rest (availability over
	// de-duplication, as during an outage).
	var giveUp <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		if d := time.Until(deadline) * 2 / 3; d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			giveUp = t.C
		}
	}
	for {
		state, id, err := s.acquire(ctx, k, token)
		if err != nil {
			if ctx.Err() != nil {
				return "", &Error{Op: "wait", Err: context.Cause(ctx)}
			}
			s.failed(err)
			s.fallbacks.Add(1)
			s.log.DebugContext(ctx, "agentauth/redisstore: registering locally", "runtime", key.RuntimeID)
			return register(ctx)
		}
		s.healthy()
		switch state {
		case stateHit:
			s.hits.Add(1)
			return id, nil
		case stateLocked:
			if waited {
				s.takeovers.Add(1)
			}
			return s.registerAndPublish(ctx, key, k, token, register)
		}
		if !waited {
			waited = true
			s.waits.Add(1)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return "", &Error{Op: "wait", Err: context.Cause(ctx)}
		case <-giveUp:
			s.fallbacks.Add(1)
			s.log.DebugContext(ctx, "agentauth/redisstore: the registration lock is held too long; registering locally", "runtime", key.RuntimeID)
			return register(ctx)
		case <-timer.C:
		}
		wait = min(2*wait, s.opts.MaxPollInterval)
	}
}

func (s *Store) acquire(ctx context.Context, k keys, token string) (state int, id string, err error) {
	opCtx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	res, err := acquireScript.Run(opCtx, s.client, []string{k.mapping, k.lock},
		token, s.opts.LockTimeout.Milliseconds(), s.opts.TTL.Milliseconds()).Slice()
	if err != nil {
		return 0, "", err
	}
	if len(res) != 2 {
		return 0, "", fmt.Errorf("unexpected reply of %d elements from the acquire script", len(res))
	}
	st, ok1 := res[0].(int64)
	id, ok2 := res[1].(string)
	if !ok1 || !ok2 || st < stateBusy || st > stateLocked {
		return 0, "", errors.New("unexpected reply from the acquire script")
	}
	return int(st), id, nil
}

// registerAndPublish runs while this replica holds the lock.
func (s *Store) registerAndPublish(ctx context.Context, key transport.TaskKey, k keys, token string, register func(context.Context) (string, error)) (string, error) {
	id, err := register(ctx)
	if err == nil && id == "" {
		err = errors.New("redisstore: register returned an empty task id")
	}
	// The outcome must reach Redis even when ctx ended just now, or the
	// other replicas would wait for the whole LockTimeout.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.OpTimeout)
	defer cancel()
	if err != nil {
		if rerr := compareAndDelete.Run(pctx, s.client, []string{k.lock}, token).Err(); rerr != nil {
			s.failed(rerr)
		} else {
			s.healthy()
		}
		return "", err
	}
	s.registrations.Add(1)
	fleetID, perr := publishScript.Run(pctx, s.client, []string{k.mapping, k.lock},
		id, s.opts.TTL.Milliseconds(), token).Text()
	if perr != nil {
		// Registered but not shared: this replica uses its task, the lock
		// expires, and another replica registers its own.
		s.failed(perr)
		return id, nil
	}
	s.healthy()
	if fleetID != id {
		s.log.DebugContext(ctx, "agentauth/redisstore: adopted a task published while this replica's lock had expired", "runtime", key.RuntimeID)
	}
	return fleetID, nil
}

// Forget implements [transport.TaskStore]: it removes key's mapping only if
// it still names taskID, so that a replica rejected with an old task never
// erases the replacement another replica already published.
func (s *Store) Forget(ctx context.Context, key transport.TaskKey, taskID string) error {
	k := s.keysFor(key)
	opCtx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	n, err := compareAndDelete.Run(opCtx, s.client, []string{k.mapping}, taskID).Int64()
	if err != nil {
		if ctx.Err() == nil {
			s.failed(err)
		}
		return &Error{Op: "forget", Err: err}
	}
	s.healthy()
	if n > 0 {
		s.forgets.Add(1)
	}
	return nil
}

package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPoolPrefix starts the keys of a [PoolState] when its prefix is "".
const DefaultPoolPrefix = "agentauth:pool:"

// maxPoolLimit bounds how long a shared usage limit is kept, as the pool
// bounds a member's limit.
const maxPoolLimit = 8 * 24 * time.Hour

// PoolState shares one pool's thread assignments and usage limits between
// the replicas of a fleet through Redis: it implements pool.Shared (set it
// as pool.Options.Shared). A thread's member lives at
// prefix + "thread:{" + hex(SHA-256(thread key)) + "}" (the thread key,
// caller data, is not stored), the limits in one hash at prefix + "limits"
// (member name → Unix ms). Member names are stored as they are: they must
// not be secrets. Every replica of one pool uses the same prefix; two pools
// of different logins use different ones.
type PoolState struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time
}

// NewPoolState returns the shared state of one pool on client under
// prefix ("" means DefaultPoolPrefix; it must not contain a brace).
func NewPoolState(client redis.UniversalClient, prefix string) (*PoolState, error) {
	if client == nil {
		return nil, errors.New("redisstore: NewPoolState: nil client")
	}
	if prefix == "" {
		prefix = DefaultPoolPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redisstore: NewPoolState: prefix %q contains a brace, which would break the Redis Cluster hash tag", prefix)
	}
	return &PoolState{client: client, prefix: prefix, now: time.Now}, nil
}

func (s *PoolState) threadKey(thread string) string {
	sum := sha256.Sum256([]byte(thread))
	return s.prefix + "thread:{" + hex.EncodeToString(sum[:]) + "}"
}

func (s *PoolState) limitsKey() string { return s.prefix + "limits" }

// assignScript: KEYS[1] the thread; ARGV[1] the proposed member, ARGV[2]
// the TTL in ms, ARGV[3..] the members to avoid. Returns the member.
var assignScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local avoided = false
  for i = 3, #ARGV do
    if ARGV[i] == cur then avoided = true end
  end
  if not avoided then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return cur
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`)

// Assign implements pool.Shared: the member stored for thread unless it is
// in avoid, else proposed, stored for ttl.
func (s *PoolState) Assign(ctx context.Context, thread, proposed string, avoid []string, ttl time.Duration) (string, error) {
	if proposed == "" {
		return "", errors.New("redisstore: PoolState.Assign: no proposed member")
	}
	ms := ttl.Milliseconds()
	if ms <= 0 {
		ms = time.Hour.Milliseconds()
	}
	args := make([]any, 0, 2+len(avoid))
	args = append(args, proposed, ms)
	for _, a := range avoid {
		args = append(args, a)
	}
	got, err := assignScript.Run(ctx, s.client, []string{s.threadKey(thread)}, args...).Text()
	if err != nil {
		return "", fmt.Errorf("redisstore: PoolState.Assign: %w", err)
	}
	return got, nil
}

// limitScript: KEYS[1] the limits hash; ARGV[1] the member, ARGV[2] its
// limit (Unix ms), ARGV[3] the hash's TTL in ms. Keeps the later limit.
var limitScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if cur < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// Limit implements pool.Shared: member takes no work until until (kept at
// most eight days).
func (s *PoolState) Limit(ctx context.Context, member string, until time.Time) error {
	now := s.now()
	if until.After(now.Add(maxPoolLimit)) {
		until = now.Add(maxPoolLimit)
	}
	err := limitScript.Run(ctx, s.client, []string{s.limitsKey()}, member, until.UnixMilli(), maxPoolLimit.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("redisstore: PoolState.Limit: %w", err)
	}
	return nil
}

// Limits implements pool.Shared: the limits that have not passed.
func (s *PoolState) Limits(ctx context.Context) (map[string]time.Time, error) {
	all, err := s.client.HGetAll(ctx, s.limitsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: PoolState.Limits: %w", err)
	}
	now := s.now()
	out := make(map[string]time.Time, len(all))
	for member, v := range all {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue // not written by PoolState
		}
		if until := time.UnixMilli(ms); until.After(now) {
			out[member] = until
		}
	}
	return out, nil
}

package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/transport"
	"github.com/redis/go-redis/v9"
)

// loadScript seeds the login with ARGV[1..3] (digest, sealed set, rank)
// when it has no token set, or when the seed was issued after the stored
// set (a generation only moves forward: an older seed never replaces a
// newer set, and a newer one, such as a new login after the old one was
// revoked, or the newest set a replica saw after Redis restarted with an
// older one, replaces it), and returns {digest, sealed}. A stored set
// without a rank is never replaced by a seed.
var loadScript = redis.NewScript(`
if ARGV[1] ~= '' then
  local d = redis.call('HGET', KEYS[1], 'd')
  if not d then
    redis.call('HSET', KEYS[1], 'd', ARGV[1], 's', ARGV[2], 'g', ARGV[3])
  elseif d ~= ARGV[1] then
    local g = tonumber(redis.call('HGET', KEYS[1], 'g'))
    if g and tonumber(ARGV[3]) > g then
      redis.call('HSET', KEYS[1], 'd', ARGV[1], 's', ARGV[2], 'g', ARGV[3])
    end
  end
end
return redis.call('HMGET', KEYS[1], 'd', 's')
`)

// casScript stores {ARGV[3], ARGV[4]} with rank ARGV[5] and returns 1 when
// the login has no set (Redis lost it: the set being stored is the newest
// the fleet has), when the stored digest equals ARGV[1] (prev), or when
// the stored set was issued before prev (ARGV[2]: an older set seeded
// after Redis lost the data); it returns 0 otherwise. The stored rank only
// moves forward. Storing ends the mark of holder ARGV[6] (its rotation is
// published); with ARGV[7] = "1" the script also frees ARGV[6]'s lock and
// mark whatever it decided.
var casScript = redis.NewScript(`
local d = redis.call('HGET', KEYS[1], 'd')
local g = tonumber(redis.call('HGET', KEYS[1], 'g'))
local ok = (not d) or d == ARGV[1]
if not ok and g and g < tonumber(ARGV[2]) then
  ok = true
end
if ok then
  local rank = tonumber(ARGV[5])
  if g and g > rank then
    rank = g
  end
  redis.call('HSET', KEYS[1], 'd', ARGV[3], 's', ARGV[4], 'g', rank)
end
if ok or ARGV[7] == '1' then
  local h = redis.call('GET', KEYS[2])
  if h == ARGV[6] or h == '~' .. ARGV[6] then
    redis.call('DEL', KEYS[2])
  end
end
if ARGV[7] == '1' and redis.call('GET', KEYS[3]) == ARGV[6] then
  redis.call('DEL', KEYS[3])
end
if ok then
  return 1
end
return 0
`)

// Load implements [transport.RefreshCoordinator]: it returns the login's
// token set from Redis, seeding it with the newest set this replica saw
// (CoordinatorOptions.Initial at first) when Redis has none or an older
// one. A Redis failure returns the newest set this replica saw while its
// access token has not expired (a replica started during an outage serves
// its auth.json token), except to the holder of the fleet lock, which is
// about to refresh from what Load returns: it gets a temporary *[Error]
// (Op "load"), as does a replica without a valid token, unless the outage
// has outlasted OutageBound and the token has expired: then it returns
// the newest set this replica saw. A set that does not open with the
// configured keys is an error wrapping [ErrUnknownSealingKey] or
// [ErrSealedValueInvalid]; one that names another login, [ErrLoginMismatch].
func (c *Coordinator) Load(ctx context.Context) (*transport.TokenSet, error) {
	if err := c.publishPending(ctx, false); err != nil {
		return c.loadFailed(ctx, err)
	}
	// Seed with the newest set this replica saw: Initial at first, and
	// after Redis lost its data (a restart without persistence) the set
	// the fleet last had as far as this replica knows, rather than the
	// possibly long used-up Initial.
	c.mu.Lock()
	seed := copySet(c.last)
	c.mu.Unlock()
	var digest, sealed string
	if seed != nil {
		var err error
		if digest, sealed, err = c.sealSet(seed); err != nil {
			return nil, err
		}
	}
	opCtx, cancel := context.WithTimeout(ctx, c.s.opts.OpTimeout)
	res, err := loadScript.Run(opCtx, c.s.client, []string{c.keys.tokens}, digest, sealed, setRank(seed)).Slice()
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.failed(err)
		}
		return c.loadFailed(ctx, err)
	}
	c.healthy(ctx)
	if len(res) != 2 {
		return nil, &Error{Op: "load", Err: errors.New("unexpected reply from the load script")}
	}
	storedSealed, _ := res[1].(string)
	if storedSealed == "" {
		return nil, nil
	}
	ts, err := c.openSet(storedSealed)
	if err != nil {
		return nil, err
	}
	if d, _ := res[0].(string); d != setDigest(ts) {
		return nil, fmt.Errorf("redisstore: the stored token set does not match its digest: %w", ErrSealedValueInvalid)
	}
	if err := checkOwner(c.owner, c.claims, ts); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.last = copySet(ts)
	c.mu.Unlock()
	return ts, nil
}

// loadFailed answers a Load whose Redis call failed with err.
func (c *Coordinator) loadFailed(ctx context.Context, err error) (*transport.TokenSet, error) {
	if ctx.Err() != nil {
		return nil, &Error{Op: "load", Err: context.Cause(ctx)}
	}
	if c.uncoordinatedAllowed() {
		c.mu.Lock()
		defer c.mu.Unlock()
		return copySet(c.last), nil
	}
	if !c.holding.Load() {
		c.mu.Lock()
		last := copySet(c.last)
		c.mu.Unlock()
		if last != nil {
			if exp, ok := accessTokenExpiry(last.AccessToken); ok && c.s.opts.Now().Before(exp) {
				return last, nil
			}
		}
	}
	return nil, &Error{Op: "load", Err: err}
}

// CompareAndSwap implements [transport.RefreshCoordinator]: it stores
// next if the fleet's set still has prev's access and refresh tokens (prev
// nil: if the login has no set yet), atomically in Redis, and returns
// the transport's "tokens changed meanwhile" error otherwise, on which the
// refresher reads the set again. A login whose set Redis lost (it
// restarted empty), or whose set was re-seeded with one issued before
// prev, takes next too: next is then the newest set of the fleet.
// When Redis fails, next is kept and published in the background as soon
// as Redis answers again (and at Close), if the fleet's set is then still
// prev (or older, or gone), because the refresh that produced it has used
// up the fleet's refresh token; the error is a temporary *[Error] (Op
// "swap"), or nil when the outage has outlasted OutageBound and the token
// had expired (the refresh was uncoordinated anyway).
func (c *Coordinator) CompareAndSwap(ctx context.Context, prev, next *transport.TokenSet) error {
	if next == nil {
		return errors.New("redisstore: CompareAndSwap: nil next token set")
	}
	if err := checkSet(c.login, next); err != nil {
		return fmt.Errorf("redisstore: CompareAndSwap: %w", err)
	}
	if err := checkOwner(c.owner, c.claims, next); err != nil {
		return fmt.Errorf("redisstore: CompareAndSwap: %w", err)
	}
	err := c.swap(ctx, prev, next, false)
	if err == nil || errors.Is(err, credentials.ErrTokenSetChanged) {
		return err
	}
	var re *Error
	if !errors.As(err, &re) || ctx.Err() != nil {
		return err
	}
	// Decided before next becomes the newest known set: next's token is
	// fresh, but the refresh that produced it was uncoordinated.
	uncoordinated := c.uncoordinatedAllowed()
	c.mu.Lock()
	if c.pending == nil {
		c.pendingPrev = copySet(prev)
	}
	c.pending = copySet(next)
	c.last = copySet(next)
	c.mu.Unlock()
	c.schedulePublish()
	if uncoordinated {
		return nil
	}
	return err
}

// swap runs casScript; release also frees this Coordinator's fleet lock.
func (c *Coordinator) swap(ctx context.Context, prev, next *transport.TokenSet, release bool) error {
	prevDigest := ""
	if prev != nil {
		prevDigest = setDigest(prev)
	}
	digest, sealed, err := c.sealSet(next)
	if err != nil {
		return err
	}
	rel := "0"
	if release {
		rel = "1"
	}
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.s.opts.OpTimeout)
	defer cancel()
	n, err := casScript.Run(opCtx, c.s.client, []string{c.keys.tokens, c.keys.tokensHolder, c.keys.tokensLock},
		prevDigest, setRank(prev), digest, sealed, setRank(next), c.token, rel).Int64()
	if err != nil {
		c.failed(err)
		return &Error{Op: "swap", Err: err}
	}
	c.healthy(ctx)
	if n == 0 {
		c.conflicts.Add(1)
		return credentials.ErrTokenSetChanged
	}
	c.swaps.Add(1)
	c.mu.Lock()
	c.last = copySet(next)
	c.mu.Unlock()
	return nil
}

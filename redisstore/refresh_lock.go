package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lock implements [transport.RefreshCoordinator]: it takes the login's
// in-process lock and then the fleet-wide one, polling while another
// replica holds it, until ctx ends (an *[Error] with Op "lock"). A Redis
// failure returns at once with a temporary *[Error], unless the outage has
// outlasted OutageBound and the token has expired: then only the
// in-process lock is held. release frees the fleet lock only if this
// replica still holds it, and is safe to call more than once.
//
// A holder whose rotation could not be published (Redis failed at its
// CompareAndSwap) does not free the fleet lock at release: it publishes
// the set in the background as soon as Redis answers, and frees the lock
// with the same script. A lock that lapsed meanwhile (Redis stalled for
// longer than LockTimeout) is not taken over at once: the next holder
// first grants the lapsed one a short grace to publish, so it loads the
// rotation instead of refreshing with the spent refresh token.
func (c *Coordinator) Lock(ctx context.Context) (release func(), err error) {
	select {
	case c.local <- struct{}{}:
	case <-ctx.Done():
		return nil, &Error{Op: "lock", Err: context.Cause(ctx)}
	}
	unlockLocal := func() { <-c.local }
	token := c.token
	wait := c.s.opts.PollInterval
	waited := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		opCtx, cancel := context.WithTimeout(ctx, c.s.opts.OpTimeout)
		n, err := lockScript.Run(opCtx, c.s.client, []string{c.keys.tokensLock, c.keys.tokensHolder, c.keys.tokensGrace},
			token, c.opts.LockTimeout.Milliseconds(), c.graceTime().Milliseconds(), holderMarkTTL.Milliseconds()).Int64()
		cancel()
		ok := n == 1
		if err != nil {
			if ctx.Err() != nil {
				unlockLocal()
				return nil, &Error{Op: "lock", Err: context.Cause(ctx)}
			}
			c.failed(err)
			if c.uncoordinatedAllowed() {
				c.uncoordinated.Add(1)
				c.s.log.WarnContext(ctx, "agentauth/redisstore: Redis has been unavailable past the outage bound and the token expired; refreshing without the fleet lock")
				var once sync.Once
				return func() { once.Do(unlockLocal) }, nil
			}
			unlockLocal()
			return nil, &Error{Op: "lock", Err: err}
		}
		c.healthy(ctx)
		if ok {
			c.locks.Add(1)
			if waited {
				c.waits.Add(1)
			}
			c.holding.Store(true)
			var once sync.Once
			return func() {
				once.Do(func() {
					c.releaseFleet(ctx, token)
					c.holding.Store(false)
					unlockLocal()
				})
			}, nil
		}
		waited = true
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			unlockLocal()
			return nil, &Error{Op: "lock", Err: context.Cause(ctx)}
		case <-timer.C:
		}
		wait = min(2*wait, c.s.opts.MaxPollInterval)
	}
}

// holderMarkTTL bounds how long the mark of a holder that never came back
// (see lockScript) lives: long enough to outlast any Redis stall.
const holderMarkTTL = 24 * time.Hour

// graceTime is how long the next holder waits for a lapsed holder to
// publish: a few of the background publish's polls (each at most
// MaxPollInterval apart and OpTimeout long), within LockTimeout.
func (c *Coordinator) graceTime() time.Duration {
	return max(min(4*(c.s.opts.MaxPollInterval+c.s.opts.OpTimeout), c.opts.LockTimeout), time.Millisecond)
}

// lockScript takes the refresh lock (KEYS[1]) for ARGV[1], or renews it
// when it holds ARGV[1] already: a lock this Coordinator set in a call
// that timed out on the client but still ran on a frozen Redis, or whose
// release failed. The in-process lock makes this Coordinator's holds
// exclusive, so finding its own token means no one else holds the lock.
//
// The holder is also marked in KEYS[2] until it releases cleanly or
// publishes (a mark that outlives its lock). A free lock whose last holder
// left its mark behind may have a rotation that holder could not publish
// yet: the lock is then refused (0) for a grace of ARGV[3] ms (KEYS[3]),
// once per lapsed holder (its mark is prefixed with "~" when the grace
// starts), so that a holder alive behind a stalled Redis publishes first.
var lockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local h = redis.call('GET', KEYS[2])
if h and h ~= ARGV[1] and h ~= '~' .. ARGV[1] then
  if string.sub(h, 1, 1) ~= '~' then
    redis.call('SET', KEYS[2], '~' .. h, 'PX', ARGV[4])
    redis.call('SET', KEYS[3], h, 'PX', ARGV[3])
    return 0
  end
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
return 1
`)

// unlockScript deletes the lock (KEYS[1]) and the holder's mark (KEYS[2])
// if they are still ARGV[1]'s.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
local h = redis.call('GET', KEYS[2])
if h == ARGV[1] or h == '~' .. ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
`)

// releaseFleet ends a hold of the fleet lock: with a rotation still
// pending it publishes it and frees the lock in one script, or leaves
// both (lock and mark) to the background publish when Redis still fails;
// otherwise it frees the lock. A failure leaves the lock to expire.
func (c *Coordinator) releaseFleet(ctx context.Context, token string) {
	c.mu.Lock()
	pending := c.pending != nil
	c.mu.Unlock()
	if pending {
		if c.publishPending(context.WithoutCancel(ctx), true) != nil {
			c.schedulePublish()
		}
		return
	}
	c.unlockFleet(ctx, token)
}

func (c *Coordinator) unlockFleet(ctx context.Context, token string) {
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.s.opts.OpTimeout)
	defer cancel()
	if err := unlockScript.Run(opCtx, c.s.client, []string{c.keys.tokensLock, c.keys.tokensHolder}, token).Err(); err != nil {
		c.failed(err)
		return
	}
	c.healthy(ctx)
}

package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/jwtclaims"
	"github.com/redis/go-redis/v9"
)

// DefaultRefreshLockTimeout is the default of
// [CoordinatorOptions.LockTimeout].
const DefaultRefreshLockTimeout = 30 * time.Second

// CoordinatorOptions configures a [Coordinator].
type CoordinatorOptions struct {
	// Initial is the token set this replica starts from (its auth.json or
	// configured credentials). It seeds the fleet: a Load that finds no
	// token set in Redis stores the newest set this replica has seen,
	// Initial at first (unless another replica stored one first), and
	// returns what Redis then holds. A replica whose Initial is older than
	// the fleet's adopts the fleet's; a fleet set is never replaced by a
	// seed, so a new login (codex login again) reaches the fleet only once
	// the old set is deleted from Redis. nil means Load returns nil, nil
	// until some replica stores a set.
	Initial *credentials.TokenSet

	// LockTimeout is how long the fleet-wide refresh lock lives when its
	// holder neither releases it nor swaps (it crashed or froze): after
	// that another replica takes over. It must cover one refresh (the
	// token request and the swap); a shorter lock lets a slow refresh be
	// duplicated, and the second use of the refresh token is then
	// rejected. 0 means DefaultRefreshLockTimeout (30 s); it must exceed
	// the Store's OpTimeout.
	LockTimeout time.Duration

	// OutageBound is how long Redis must have been failing (as this
	// replica saw it) before the coordinator lets this replica refresh on
	// its own, and then only while the access token of the last token set
	// it saw has expired (an access token whose expiry cannot be read
	// counts as expired). Until then Lock and Load fail at once with a
	// temporary error, so a refresher keeps using its still-valid token.
	//
	// This is a trade-off between two ways of losing service. Refreshing
	// without the fleet lock risks two replicas presenting the same
	// single-use refresh token; the second gets refresh_token_reused and
	// the login may be revoked for the whole fleet. Never refreshing means
	// every replica fails once its token expires, until Redis returns. A
	// set refreshed during the outage is published when Redis answers
	// again, if the fleet's set is still the one this replica had. 0 (the
	// default) never refreshes without the fleet: the login is never put
	// at risk, at the price of the outage becoming total when the token
	// expires. Negative is an error.
	OutageBound time.Duration
}

// CoordinatorStats is a snapshot of a Coordinator's counters.
type CoordinatorStats struct {
	// Locks counts fleet-wide locks taken; Waits those taken after waiting
	// for another holder (a release, or a dead holder's lock expiring).
	Locks, Waits uint64
	// Swaps counts token sets stored by CompareAndSwap (seeds included);
	// Conflicts counts swaps refused because the fleet's set had changed.
	Swaps, Conflicts uint64
	// Uncoordinated counts locks granted without Redis because the outage
	// outlasted OutageBound and the token had expired.
	Uncoordinated uint64
	// Pending reports a token set that reached this replica but not Redis
	// yet; it is published at the next successful Redis call.
	Pending bool
	// Outages counts periods of Redis failure, each logged once; Errors
	// counts failed Redis calls; Down reports an outage in progress.
	Outages, Errors uint64
	Down            bool
}

// Coordinator is a [credentials.RefreshCoordinator] for one ChatGPT login
// on Redis, shared by every replica that uses the login. It holds:
//
//   - the fleet-wide refresh lock: SET NX PX with a random token, released
//     by a compare-and-delete script, so only its holder frees it, and
//     expiring after LockTimeout when the holder died;
//   - the login's current token set, sealed, with a digest of its access
//     and refresh tokens beside it, which CompareAndSwap compares in a Lua
//     script so that a replica that read an older set never overwrites a
//     newer rotation.
//
// Goroutines of one process first serialise on an in-process lock, so a
// process holds at most one fleet lock per login. Redis failures are fast
// (the Store's OpTimeout) and temporary: see CoordinatorOptions.OutageBound
// for what happens when they last. A Coordinator is safe for concurrent use.
type Coordinator struct {
	s     *Store
	login credentials.Login
	keys  loginKeys
	opts  CoordinatorOptions
	local chan struct{} // in-process lock, capacity 1
	token string        // this Coordinator's value of the fleet lock

	owner  credentials.Login // login, completed from Initial's claims
	claims jwtClaims         // the token subject and email of Initial

	// holding is set while this Coordinator holds the fleet lock: a Load
	// then never answers from memory, since its caller is about to
	// refresh from what it returns.
	holding atomic.Bool
	pubMu   sync.Mutex // one publish of the pending set at a time
	wg      sync.WaitGroup
	done    chan struct{} // closed by Close

	mu          sync.Mutex
	last        *credentials.TokenSet // the newest set this replica saw
	pendingPrev *credentials.TokenSet // the fleet's set pending replaces (nil: none stored)
	pending     *credentials.TokenSet // a set that did not reach Redis yet
	retrying    bool                  // the background publish of pending runs
	closed      bool
	down        bool
	outageStart time.Time

	locks, waits, swaps, conflicts, uncoordinated, outages, errs atomic.Uint64
}

var _ credentials.RefreshCoordinator = (*Coordinator)(nil)

// RefreshCoordinator returns the [Coordinator] of login. It needs a
// sealing key (it fails with [ErrNoSealingKey] otherwise). Create one per
// login per process and share it: the in-process lock is per Coordinator.
//
// The login is keyed by its account and its user (the AccountID and
// UserID of credentials.ChatGPTLogin), since users of one workspace share
// the account id but not their tokens: every replica must name the login
// the same way, or replicas that differ in UserID take different locks
// and refresh the same refresh token twice. agentauth's
// Options.RefreshCoordinator (with [Store.Coordinators]) passes both.
// A login without a user id is also keyed by what Initial's tokens say
// about their user (a chatgpt_user_id or user_id claim, else the subject,
// else the email), and every set loaded or stored is checked against the
// login and those claims ([ErrLoginMismatch]): two users of one workspace
// never share a set. Without a user id and without such claims, the
// caller vouches that the account names one login.
func (s *Store) RefreshCoordinator(login credentials.Login, opts CoordinatorOptions) (*Coordinator, error) {
	return s.refreshCoordinator(login, subjectMark(login, opts.Initial), opts)
}

func (s *Store) refreshCoordinator(login credentials.Login, mark string, opts CoordinatorOptions) (*Coordinator, error) {
	if s.sealer == nil {
		return nil, ErrNoSealingKey
	}
	switch {
	case opts.LockTimeout < 0 || opts.OutageBound < 0:
		return nil, errors.New("redisstore: CoordinatorOptions.LockTimeout and OutageBound must not be negative")
	case opts.LockTimeout == 0:
		opts.LockTimeout = DefaultRefreshLockTimeout
	}
	if opts.LockTimeout < time.Millisecond || opts.LockTimeout <= s.opts.OpTimeout {
		return nil, fmt.Errorf("redisstore: CoordinatorOptions.LockTimeout %v must exceed the Store's OpTimeout %v", opts.LockTimeout, s.opts.OpTimeout)
	}
	if opts.Initial != nil {
		if err := checkSet(login, opts.Initial); err != nil {
			return nil, fmt.Errorf("redisstore: CoordinatorOptions.Initial: %w", err)
		}
		cp := *opts.Initial
		opts.Initial = &cp
	}
	token, err := s.token()
	if err != nil {
		return nil, err
	}
	c := &Coordinator{s: s, login: login, keys: s.markedLoginKeys(login, mark), opts: opts,
		local: make(chan struct{}, 1), token: token, owner: login, done: make(chan struct{})}
	if opts.Initial != nil {
		c.claims = setClaims(opts.Initial)
		if c.owner.AccountID == "" {
			c.owner.AccountID = c.claims.account
		}
		if c.owner.UserID == "" {
			c.owner.UserID = c.claims.user
		}
	}
	c.last = opts.Initial
	return c, nil
}

// Coordinators returns a constructor of this Store's Coordinators with
// opts, for agentauth.Options.RefreshCoordinator: given a login and the
// token set a replica loaded (its auth.json), it returns the login's
// Coordinator seeded with that set (opts.Initial, when set, wins). Like
// RefreshCoordinator it needs a sealing key. A login whose tokens name no
// user and carry no subject or email is unsure to be one user's: it is
// keyed by its seed as well (replicas started from one auth.json share
// it, another user's auth.json never does).
func (s *Store) Coordinators(opts CoordinatorOptions) func(login credentials.Login, initial *credentials.TokenSet) (credentials.RefreshCoordinator, error) {
	return func(login credentials.Login, initial *credentials.TokenSet) (credentials.RefreshCoordinator, error) {
		o := opts
		if o.Initial == nil {
			o.Initial = initial
		}
		// A login whose tokens name no user is told apart by its token
		// subject, or else by the seed's lineage: two users of one
		// workspace never share a set.
		c, err := s.refreshCoordinator(login, loginMark(login, o.Initial), o)
		if err != nil {
			return nil, err // not a nil *Coordinator in a non-nil interface
		}
		return c, nil
	}
}

func checkSet(login credentials.Login, ts *credentials.TokenSet) error {
	if ts.AccessToken == "" {
		return errors.New("token set without an access token")
	}
	if login.AccountID != "" && ts.AccountID != "" && ts.AccountID != login.AccountID {
		return errors.New("token set of another account")
	}
	if checkOwner(login, jwtClaims{}, ts) != nil {
		return errors.New("token set of another user")
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (c *Coordinator) Stats() CoordinatorStats {
	c.mu.Lock()
	pending, down := c.pending != nil, c.down
	c.mu.Unlock()
	return CoordinatorStats{
		Locks: c.locks.Load(), Waits: c.waits.Load(),
		Swaps: c.swaps.Load(), Conflicts: c.conflicts.Load(),
		Uncoordinated: c.uncoordinated.Load(), Pending: pending,
		Outages: c.outages.Load(), Errors: c.errs.Load(), Down: down,
	}
}

// Lock implements [credentials.RefreshCoordinator]: it takes the login's
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

// Load implements [credentials.RefreshCoordinator]: it returns the login's
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
func (c *Coordinator) Load(ctx context.Context) (*credentials.TokenSet, error) {
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
func (c *Coordinator) loadFailed(ctx context.Context, err error) (*credentials.TokenSet, error) {
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

// CompareAndSwap implements [credentials.RefreshCoordinator]: it stores
// next if the fleet's set still has prev's access and refresh tokens (prev
// nil: if the login has no set yet), atomically in Redis, and returns
// [credentials.ErrTokenSetChanged] otherwise. A login whose set Redis
// lost (it restarted empty), or whose set was re-seeded with one issued
// before prev, takes next too: next is then the newest set of the fleet.
// When Redis fails, next is kept and published in the background as soon
// as Redis answers again (and at Close), if the fleet's set is then still
// prev (or older, or gone), because the refresh that produced it has used
// up the fleet's refresh token; the error is a temporary *[Error] (Op
// "swap"), or nil when the outage has outlasted OutageBound and the token
// had expired (the refresh was uncoordinated anyway).
func (c *Coordinator) CompareAndSwap(ctx context.Context, prev, next *credentials.TokenSet) error {
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
func (c *Coordinator) swap(ctx context.Context, prev, next *credentials.TokenSet, release bool) error {
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

// publishPending stores a set that did not reach Redis, if the fleet's
// set is still the one it replaces (or older, or gone); otherwise the
// fleet's newer set wins and the pending one is dropped. release also
// frees this Coordinator's fleet lock and mark (a hold that ended with the
// set unpublished). It returns the Redis error that keeps it pending.
func (c *Coordinator) publishPending(ctx context.Context, release bool) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	prev, next := c.pendingPrev, c.pending
	c.mu.Unlock()
	if next == nil {
		if release { // published meanwhile by the background publish
			c.unlockFleet(ctx, c.token)
		}
		return nil
	}
	err := c.swap(ctx, prev, next, release)
	var re *Error
	if errors.As(err, &re) {
		return re.Err // still failing: keep it
	}
	c.mu.Lock()
	if c.pending == next {
		c.pending, c.pendingPrev = nil, nil
	}
	c.mu.Unlock()
	if err != nil {
		c.s.log.WarnContext(ctx, "agentauth/redisstore: a token set refreshed while Redis was unavailable was not published: the fleet rotated the login meanwhile")
	}
	return nil
}

func (c *Coordinator) failed(err error) {
	c.errs.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return
	}
	c.down = true
	c.outageStart = c.s.opts.Now()
	c.outages.Add(1)
	c.s.log.Warn("agentauth/redisstore: Redis unavailable; refresh coordination paused, tokens that are still valid stay in use",
		"err", err.Error(), "outage_bound", c.opts.OutageBound.String())
}

func (c *Coordinator) healthy(ctx context.Context) {
	c.mu.Lock()
	if !c.down {
		c.mu.Unlock()
		return
	}
	c.down = false
	took := c.s.opts.Now().Sub(c.outageStart)
	c.mu.Unlock()
	c.s.log.InfoContext(ctx, "agentauth/redisstore: Redis answers again; refresh coordination resumes",
		"outage", took.Round(time.Millisecond).String())
}

// uncoordinatedAllowed reports whether the outage in progress has
// outlasted OutageBound while the newest known access token has expired.
func (c *Coordinator) uncoordinatedAllowed() bool {
	if c.opts.OutageBound <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.s.opts.Now()
	if !c.down || now.Sub(c.outageStart) < c.opts.OutageBound {
		return false
	}
	if c.last == nil {
		return true
	}
	exp, ok := accessTokenExpiry(c.last.AccessToken)
	return !ok || !now.Before(exp)
}

// accessTokenExpiry reads the exp claim of a JWT access token without
// verifying it: only to decide whether this replica's own token has run
// out.
func accessTokenExpiry(tok string) (time.Time, bool) {
	payload, err := jwtclaims.Payload(tok)
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// storedSet is the sealed form of a TokenSet.
type storedSet struct {
	IDToken      string    `json:"id_token"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	AccountID    string    `json:"account_id,omitempty"`
	LastRefresh  time.Time `json:"last_refresh"`
}

// setDigest identifies a set by its access and refresh tokens, the two
// that CompareAndSwap compares. A SHA-256 of high-entropy tokens reveals
// nothing about them.
func setDigest(ts *credentials.TokenSet) string {
	h := sha256.New()
	h.Write([]byte("agentauth/redisstore token set\x00"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(ts.AccessToken)))
	h.Write(n[:])
	h.Write([]byte(ts.AccessToken))
	h.Write([]byte(ts.RefreshToken))
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Coordinator) sealSet(ts *credentials.TokenSet) (digest, sealed string, err error) {
	pt, err := json.Marshal(storedSet{IDToken: ts.IDToken, AccessToken: ts.AccessToken,
		RefreshToken: ts.RefreshToken, AccountID: ts.AccountID, LastRefresh: ts.LastRefresh})
	if err != nil {
		return "", "", fmt.Errorf("redisstore: encoding the token set: %w", err)
	}
	b, err := c.s.sealer.seal(c.keys.tokens, pt)
	if err != nil {
		return "", "", err
	}
	return setDigest(ts), string(b), nil
}

func (c *Coordinator) openSet(sealed string) (*credentials.TokenSet, error) {
	pt, err := c.s.sealer.open(c.keys.tokens, []byte(sealed))
	if err != nil {
		return nil, fmt.Errorf("redisstore: opening the stored token set: %w", err)
	}
	var ss storedSet
	if err := json.Unmarshal(pt, &ss); err != nil {
		return nil, fmt.Errorf("redisstore: the stored token set is not a token set: %w", ErrSealedValueInvalid)
	}
	return &credentials.TokenSet{IDToken: ss.IDToken, AccessToken: ss.AccessToken,
		RefreshToken: ss.RefreshToken, AccountID: ss.AccountID, LastRefresh: ss.LastRefresh}, nil
}

func copySet(ts *credentials.TokenSet) *credentials.TokenSet {
	if ts == nil {
		return nil
	}
	cp := *ts
	return &cp
}

// String describes the Coordinator without its tokens.
func (c *Coordinator) String() string {
	return "redisstore.Coordinator{key:" + c.keys.tokens + "}"
}

// GoString is [Coordinator.String].
func (c *Coordinator) GoString() string { return c.String() }

// Format makes every fmt verb print [Coordinator.String].
func (c *Coordinator) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

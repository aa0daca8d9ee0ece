package redisstore

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/transport"
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
	Initial *transport.TokenSet

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

// Coordinator is a [transport.RefreshCoordinator] for one ChatGPT login
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
	login transport.Login
	keys  loginKeys
	opts  CoordinatorOptions
	local chan struct{} // in-process lock, capacity 1
	token string        // this Coordinator's value of the fleet lock

	owner  transport.Login // login, completed from Initial's claims
	claims jwtClaims       // the token subject and email of Initial

	// holding is set while this Coordinator holds the fleet lock: a Load
	// then never answers from memory, since its caller is about to
	// refresh from what it returns.
	holding atomic.Bool
	pubMu   sync.Mutex // one publish of the pending set at a time
	wg      sync.WaitGroup
	done    chan struct{} // closed by Close

	mu          sync.Mutex
	last        *transport.TokenSet // the newest set this replica saw
	pendingPrev *transport.TokenSet // the fleet's set pending replaces (nil: none stored)
	pending     *transport.TokenSet // a set that did not reach Redis yet
	retrying    bool                // the background publish of pending runs
	closed      bool
	down        bool
	outageStart time.Time

	locks, waits, swaps, conflicts, uncoordinated, outages, errs atomic.Uint64
}

var _ transport.RefreshCoordinator = (*Coordinator)(nil)

// RefreshCoordinator returns the [Coordinator] of login. It needs a
// sealing key (it fails with [ErrNoSealingKey] otherwise). Create one per
// login per process and share it: the in-process lock is per Coordinator.
//
// The login is keyed by its account and its user (the AccountID and
// UserID of transport.Login), since users of one workspace share
// the account id but not their tokens: every replica must name the login
// the same way, or replicas that differ in UserID take different locks
// and refresh the same refresh token twice. transport.Options.Fleet's
// RefreshCoordinator (with [Store.Coordinators]) passes both.
// A login without a user id is also keyed by what Initial's tokens say
// about their user (a chatgpt_user_id or user_id claim, else the subject,
// else the email), and every set loaded or stored is checked against the
// login and those claims ([ErrLoginMismatch]): two users of one workspace
// never share a set. Without a user id and without such claims, the
// caller vouches that the account names one login.
func (s *Store) RefreshCoordinator(login transport.Login, opts CoordinatorOptions) (*Coordinator, error) {
	return s.refreshCoordinator(login, subjectMark(login, opts.Initial), opts)
}

func (s *Store) refreshCoordinator(login transport.Login, mark string, opts CoordinatorOptions) (*Coordinator, error) {
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
// opts, for transport.Options.Fleet.RefreshCoordinator: given a login and the
// token set a replica loaded (its auth.json), it returns the login's
// Coordinator seeded with that set (opts.Initial, when set, wins). Like
// RefreshCoordinator it needs a sealing key. A login whose tokens name no
// user and carry no subject or email is unsure to be one user's: it is
// keyed by its seed as well (replicas started from one auth.json share
// it, another user's auth.json never does).
func (s *Store) Coordinators(opts CoordinatorOptions) func(login transport.Login, initial *transport.TokenSet) (transport.RefreshCoordinator, error) {
	return func(login transport.Login, initial *transport.TokenSet) (transport.RefreshCoordinator, error) {
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

func checkSet(login transport.Login, ts *transport.TokenSet) error {
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

// String describes the Coordinator without its tokens.
func (c *Coordinator) String() string {
	return "redisstore.Coordinator{key:" + c.keys.tokens + "}"
}

// GoString is [Coordinator.String].
func (c *Coordinator) GoString() string { return c.String() }

// Format makes every fmt verb print [Coordinator.String].
func (c *Coordinator) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/redis/go-redis/v9"
)

// Defaults of [Options].
const (
	DefaultPrefix          = "agentauth:task:"
	DefaultLoginPrefix     = "agentauth:login:"
	DefaultTTL             = 24 * time.Hour
	DefaultLockTimeout     = 35 * time.Second
	DefaultPollInterval    = 20 * time.Millisecond
	DefaultMaxPollInterval = 250 * time.Millisecond
	DefaultOpTimeout       = 200 * time.Millisecond
)

// Options configures a [Store]. The zero value selects every default; [New]
// rejects negative durations and settings that contradict each other.
type Options struct {
	// Prefix starts every key the store writes. A thread's mapping lives at
	// Prefix + "{" + hex(SHA-256(runtime id, thread key)) + "}" and its lock
	// at that key + ":lock"; the braces are a Redis Cluster hash tag, so
	// Prefix must not contain "{" or "}". "" means DefaultPrefix
	// ("agentauth:task:").
	Prefix string

	// TTL is how long a published mapping lives after it was last published
	// or read by any replica (a sliding expiry: a fleet hit refreshes it).
	// Threads idle for longer register a new task when they come back.
	// Requests served from a replica's in-process cache do not touch Redis,
	// so a thread that stays cached on some replicas for longer than TTL
	// keeps its task there while a replica new to it registers another:
	// keep TTL well above the lifetime of a conversation. 0 means DefaultTTL
	// (24 h).
	TTL time.Duration

	// LockTimeout is how long the fleet-wide registration lock lives if its
	// holder neither publishes nor releases it (it crashed): after that,
	// another replica takes over. It must cover a whole registration attempt,
	// so keep it at least the thread cache's registration timeout
	// (taskcache.CacheOptions.Timeout, default 30 s); a shorter lock lets a
	// slow registration be duplicated. A lock can also be left by a call
	// that timed out on the client but still ran on a frozen Redis; it too
	// expires after LockTimeout. It is also how long a replica's
	// reservation to provision a login's agent identity lasts when it
	// never saves one (see Store.LoadAgentIdentity). 0 means
	// DefaultLockTimeout (35 s); it must exceed OpTimeout.
	LockTimeout time.Duration

	// PollInterval is the first wait of a replica that found another
	// replica registering the same thread; each further wait doubles, up to
	// MaxPollInterval. Waiting ends when the task is published, when the
	// lock is free again (this replica then registers), or when the context
	// given to Resolve ends. 0 means DefaultPollInterval (20 ms).
	PollInterval time.Duration

	// MaxPollInterval caps the wait between two polls. 0 means
	// DefaultMaxPollInterval (250 ms), or PollInterval if that is larger; a
	// non-zero value below PollInterval is an error.
	MaxPollInterval time.Duration

	// OpTimeout bounds every Redis call, client retries included. A call
	// that fails or takes longer counts as an outage: the replica registers
	// locally instead, so during an outage a new thread costs up to
	// OpTimeout more (a refused connection costs that much too while the
	// client keeps retrying its dial: go-redis retries 5 times, 100 ms apart,
	// unless Options.DialerRetries says otherwise). 0 means DefaultOpTimeout
	// (200 ms).
	OpTimeout time.Duration

	// Logger receives one Warn record when an outage starts, one Info
	// record when it ends and Debug records per decision; it never receives
	// a credential. nil means no logging.
	Logger *slog.Logger

	// Now is the clock, used to report how long an outage lasted. nil means
	// time.Now.
	Now func() time.Time

	// Rand is the entropy for lock tokens. nil means crypto/rand.
	Rand io.Reader

	// Sealer encrypts every secret the store keeps in Redis: the token sets
	// of [Store.RefreshCoordinator] and the agent identities of
	// [Store.LoadAgentIdentity]. nil means the keys in the environment
	// variable SealingKeyEnv, if it is set (New fails when it is malformed);
	// without either, thread tasks are shared as usual and every call that
	// would store or read a secret fails with ErrNoSealingKey.
	Sealer *Sealer

	// LoginPrefix starts the keys of per-login state: the agent identity
	// and the refresh token set of one ChatGPT login live under LoginPrefix
	// + "{" + hex(SHA-256(account id, user id)) + "}" + a suffix. Like
	// Prefix it must not contain a brace. "" means DefaultLoginPrefix
	// ("agentauth:login:").
	LoginPrefix string

	// Getenv reads SealingKeyEnv. nil means os.Getenv.
	Getenv func(string) string
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	// Hits counts Resolve calls answered by a task another replica (or this
	// one) had published.
	Hits uint64
	// Registrations counts successful registrations made while holding the
	// fleet lock, takeovers included.
	Registrations uint64
	// Waits counts Resolve calls that found another replica registering the
	// same thread and waited for it.
	Waits uint64
	// Takeovers counts locks taken after waiting: the previous holder
	// failed, released, or died and its lock expired.
	Takeovers uint64
	// LocalFallbacks counts registrations made without the fleet because
	// Redis failed or was too slow.
	LocalFallbacks uint64
	// Outages counts periods of Redis failure; each is logged once. An
	// outage ends at the next successful Redis operation.
	Outages uint64
	// Errors counts failed Redis operations.
	Errors uint64
	// Forgets counts mappings removed by Forget.
	Forgets uint64
	// Down reports whether an outage is in progress.
	Down bool
}

// Error is a Redis operation that failed or a wait that ended early. Resolve
// returns one only when its context ended while waiting for another replica
// (Redis failures there fall back to a local registration); Forget returns
// one for any failure.
type Error struct {
	// Op is the operation: "wait" or "forget".
	Op string
	// Err is the cause: a Redis or network error, or the context's error.
	Err error
}

// Error names the operation and the cause.
func (e *Error) Error() string { return "redisstore: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed: true except
// when the caller cancelled.
func (e *Error) Temporary() bool { return !errors.Is(e.Err, context.Canceled) }

// Store is a [taskcache.TaskStore] on Redis. It is safe for concurrent use;
// one Store per process (per Redis client) is enough for any number of
// transports and identities.
type Store struct {
	client redis.UniversalClient
	opts   Options
	log    *slog.Logger
	sealer *Sealer
	// instance is this Store's token in the identity provisioning locks, so
	// that its own LoadAgentIdentity calls do not wait for themselves.
	instance string

	randMu sync.Mutex

	// prov counts this Store's provisionings in progress per identity
	// lock key (see reserve); an entry lives while one is.
	provMu sync.Mutex
	prov   map[string]int

	outageMu    sync.Mutex
	down        atomic.Bool
	outageStart time.Time

	hits, registrations, waits, takeovers, fallbacks atomic.Uint64
	outages, errs, forgets                           atomic.Uint64
}

var _ taskcache.TaskStore = (*Store)(nil)

// New returns a Store that keeps fleet mappings in client. The client stays
// the caller's: close it after the last use of the Store. Because
// OpTimeout is enforced through contexts, a *redis.Client,
// *redis.ClusterClient or *redis.Ring must have ContextTimeoutEnabled set;
// New rejects one that does not (its calls would otherwise wait for the
// client's ReadTimeout, seconds, while Redis hangs).
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil Redis client")
	}
	if err := checkContextTimeouts(client); err != nil {
		return nil, err
	}
	o := opts
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TTL", &o.TTL, DefaultTTL},
		{"LockTimeout", &o.LockTimeout, DefaultLockTimeout},
		{"PollInterval", &o.PollInterval, DefaultPollInterval},
		{"OpTimeout", &o.OpTimeout, DefaultOpTimeout},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("redisstore: Options.%s %v is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	switch {
	case o.MaxPollInterval < 0:
		return nil, fmt.Errorf("redisstore: Options.MaxPollInterval %v is negative", o.MaxPollInterval)
	case o.MaxPollInterval == 0:
		o.MaxPollInterval = max(DefaultMaxPollInterval, o.PollInterval)
	case o.MaxPollInterval < o.PollInterval:
		return nil, fmt.Errorf("redisstore: Options.MaxPollInterval %v is below PollInterval %v", o.MaxPollInterval, o.PollInterval)
	}
	if o.TTL < time.Millisecond || o.LockTimeout < time.Millisecond {
		return nil, errors.New("redisstore: Options.TTL and LockTimeout must be at least one millisecond (Redis PX)")
	}
	if o.LockTimeout <= o.OpTimeout {
		return nil, fmt.Errorf("redisstore: Options.LockTimeout %v must exceed OpTimeout %v", o.LockTimeout, o.OpTimeout)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.LoginPrefix == "" {
		o.LoginPrefix = DefaultLoginPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: Options.Prefix %q contains a brace, which would break the Redis Cluster hash tag", o.Prefix)
	}
	if strings.ContainsAny(o.LoginPrefix, "{}") {
		return nil, fmt.Errorf("redisstore: Options.LoginPrefix %q contains a brace, which would break the Redis Cluster hash tag", o.LoginPrefix)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	sealer := o.Sealer
	if sealer == nil {
		if v := o.Getenv(SealingKeyEnv); v != "" {
			var err error
			if sealer, err = ParseSealingKeys(v); err != nil {
				return nil, fmt.Errorf("redisstore: %s: %w", SealingKeyEnv, err)
			}
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := &Store{client: client, opts: o, log: log, sealer: sealer}
	tok, err := st.token()
	if err != nil {
		return nil, err
	}
	st.instance = tok
	return st, nil
}

func checkContextTimeouts(client redis.UniversalClient) error {
	var enabled bool
	switch c := client.(type) {
	case *redis.Client:
		enabled = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		enabled = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		enabled = c.Options().ContextTimeoutEnabled
	default:
		return nil // another implementation: its documentation decides
	}
	if !enabled {
		return errors.New("redisstore: the Redis client must have ContextTimeoutEnabled set so that OpTimeout bounds every call")
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Hits:           s.hits.Load(),
		Registrations:  s.registrations.Load(),
		Waits:          s.waits.Load(),
		Takeovers:      s.takeovers.Load(),
		LocalFallbacks: s.fallbacks.Load(),
		Outages:        s.outages.Load(),
		Errors:         s.errs.Load(),
		Forgets:        s.forgets.Load(),
		Down:           s.down.Load(),
	}
}

// keys are the Redis keys of one thread.
type keys struct{ mapping, lock string }

// keysFor derives the keys of key. Hashing (with the runtime id
// length-prefixed, so no two pairs collide) bounds the key length and keeps
// arbitrary thread keys out of Redis key syntax.
func (s *Store) keysFor(key taskcache.StoreKey) keys {
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

// Resolve implements [taskcache.TaskStore]: it returns the fleet's task for
// key, registering (with register) and publishing one when the fleet has
// none. When Redis fails or is slower than OpTimeout it calls register
// itself and returns that task without sharing it; so it does when another
// replica has held the registration lock for two thirds of ctx's time
// (a holder that died leaves its lock for LockTimeout). register's error
// is returned unchanged; the only other error is an *[Error] with Op
// "wait", when ctx ends (without a deadline, or before the two thirds)
// while another replica registers.
func (s *Store) Resolve(ctx context.Context, key taskcache.StoreKey, register func(context.Context) (string, error)) (string, error) {
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
func (s *Store) registerAndPublish(ctx context.Context, key taskcache.StoreKey, k keys, token string, register func(context.Context) (string, error)) (string, error) {
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

// Forget implements [taskcache.TaskStore]: it removes key's mapping only if
// it still names taskID, so that a replica rejected with an old task never
// erases the replacement another replica already published.
func (s *Store) Forget(ctx context.Context, key taskcache.StoreKey, taskID string) error {
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

func (s *Store) token() (string, error) {
	var b [16]byte
	s.randMu.Lock()
	_, err := io.ReadFull(s.opts.Rand, b[:])
	s.randMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("redisstore: lock token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// failed records a failed Redis operation and starts an outage if none is
// in progress, logging it once.
func (s *Store) failed(err error) {
	s.errs.Add(1)
	if s.down.Load() {
		return
	}
	s.outageMu.Lock()
	defer s.outageMu.Unlock()
	if s.down.Load() {
		return
	}
	s.down.Store(true)
	s.outages.Add(1)
	s.outageStart = s.opts.Now()
	s.log.Warn("agentauth/redisstore: Redis unavailable; registering thread tasks locally until it answers again", "err", err.Error())
}

// healthy ends the outage in progress, if any.
func (s *Store) healthy() {
	if !s.down.Load() {
		return
	}
	s.outageMu.Lock()
	defer s.outageMu.Unlock()
	if !s.down.Load() {
		return
	}
	s.down.Store(false)
	s.log.Info("agentauth/redisstore: Redis answers again; sharing thread tasks resumes",
		"outage", s.opts.Now().Sub(s.outageStart).Round(time.Millisecond).String(),
		"local_fallbacks", s.fallbacks.Load())
}

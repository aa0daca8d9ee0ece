package redisstore

import (
	"context"
	"crypto/rand"
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

	"github.com/agentauth/agentauth/transport"
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
	// ([transport.Tuning] RegistrationTimeout, default 30 s); a shorter
	// lock lets a slow registration be duplicated. A lock can also be left
	// by a call that timed out on the client but still ran on a frozen
	// Redis; it too expires after LockTimeout. It is also how long a replica's
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

// Store is a [transport.TaskStore] on Redis. It is safe for concurrent use;
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

var _ transport.TaskStore = (*Store)(nil)

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
	if err := withDurationDefaults(&o); err != nil {
		return nil, err
	}
	if err := withPrefixDefaults(&o); err != nil {
		return nil, err
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	sealer, err := sealerFrom(o)
	if err != nil {
		return nil, err
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

// withDurationDefaults fills the zero durations of o with their defaults
// and rejects negative or contradicting ones.
func withDurationDefaults(o *Options) error {
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
			return fmt.Errorf("redisstore: Options.%s %v is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	switch {
	case o.MaxPollInterval < 0:
		return fmt.Errorf("redisstore: Options.MaxPollInterval %v is negative", o.MaxPollInterval)
	case o.MaxPollInterval == 0:
		o.MaxPollInterval = max(DefaultMaxPollInterval, o.PollInterval)
	case o.MaxPollInterval < o.PollInterval:
		return fmt.Errorf("redisstore: Options.MaxPollInterval %v is below PollInterval %v", o.MaxPollInterval, o.PollInterval)
	}
	if o.TTL < time.Millisecond || o.LockTimeout < time.Millisecond {
		return errors.New("redisstore: Options.TTL and LockTimeout must be at least one millisecond (Redis PX)")
	}
	if o.LockTimeout <= o.OpTimeout {
		return fmt.Errorf("redisstore: Options.LockTimeout %v must exceed OpTimeout %v", o.LockTimeout, o.OpTimeout)
	}
	return nil
}

// withPrefixDefaults fills the empty key prefixes of o with their defaults
// and rejects a prefix that would break the Redis Cluster hash tag.
func withPrefixDefaults(o *Options) error {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.LoginPrefix == "" {
		o.LoginPrefix = DefaultLoginPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return fmt.Errorf("redisstore: Options.Prefix %q contains a brace, which would break the Redis Cluster hash tag", o.Prefix)
	}
	if strings.ContainsAny(o.LoginPrefix, "{}") {
		return fmt.Errorf("redisstore: Options.LoginPrefix %q contains a brace, which would break the Redis Cluster hash tag", o.LoginPrefix)
	}
	return nil
}

// sealerFrom returns o.Sealer, or else the keys in SealingKeyEnv (nil when
// it is unset).
func sealerFrom(o Options) (*Sealer, error) {
	if o.Sealer != nil {
		return o.Sealer, nil
	}
	v := o.Getenv(SealingKeyEnv)
	if v == "" {
		return nil, nil
	}
	sealer, err := ParseSealingKeys(v)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %s: %w", SealingKeyEnv, err)
	}
	return sealer, nil
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

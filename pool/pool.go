package pool

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/taskcache"
)

// The defaults of [Options].
const (
	defaultMaxThreads    = 10_000
	defaultThreadIdleTTL = time.Hour
	// limitCooldown keeps work off a member whose usage limit gave no
	// reset time in the future.
	limitCooldown = 5 * time.Minute
)

// Member is one login's transport in a pool. [New] takes Name and
// Transport; [Pool.Members] also reports LimitedUntil and Left, which New
// ignores.
type Member struct {
	// Name identifies the member in logs and [Pool.Members]; it must be
	// unique in the pool and must not be a secret.
	Name string
	// Transport sends the member's requests with its login.
	Transport http.RoundTripper
	// LimitedUntil is when the member takes work again after a usage
	// limit; zero when it is not limited.
	LimitedUntil time.Time
	// Left is set once the member's login failed permanently.
	Left bool

	close func() // set by CodexHomes: releases what Load built
}

// Options configures [New]. The zero value is ready to use. A member
// whose usage limit gives no reset time in the future gets no work for 5
// minutes, and one whose reset lies beyond eight days for eight days.
type Options struct {
	// Logger receives the warning logged when a member leaves the pool.
	// Default: slog.Default().
	Logger *slog.Logger
	// MaxThreads bounds the threads whose member the pool remembers; the
	// least recently used beyond it are forgotten (their next request
	// picks a member afresh). Default: 10,000.
	MaxThreads int
	// ThreadIdleTTL forgets a thread no request used for this long.
	// Default: 1 hour.
	ThreadIdleTTL time.Duration
	// Shared, when set, shares thread assignments and usage limits with
	// the other replicas of a fleet (see [Shared]). Default: none, each
	// replica decides alone.
	Shared Shared
}

// Pool is an [http.RoundTripper] over several logins' transports. Build it
// with [New]; it is safe for concurrent use.
type Pool struct {
	members []*member
	threads *taskcache.Cache // thread key → member (the task's id is the member's index)
	rr      atomic.Uint64
	now     func() time.Time
	coarse  *coarseClock // the affinity table's hit path
	log     *slog.Logger

	shared   Shared         // nil: this replica decides alone (shared.go)
	index    map[string]int // member name → index
	ttl      time.Duration  // the thread idle TTL
	lastSync atomic.Int64   // Unix ns of the last read of the fleet's limits
}

type member struct {
	name  string
	rt    http.RoundTripper
	close func()

	limitedUntil atomic.Int64  // Unix ns; 0: not limited
	used         atomic.Uint64 // math.Float64bits of the last used percent
	gone         atomic.Bool
	leave        sync.Once
}

// New returns a pool over members, which must have unique, non-empty
// names and non-nil transports.
func New(opts Options, members ...Member) (*Pool, error) {
	return newPool(opts, time.Now, members)
}

func newPool(opts Options, now func() time.Time, members []Member) (*Pool, error) {
	if len(members) == 0 {
		return nil, errors.New("pool: New: no members")
	}
	if opts.MaxThreads < 0 || opts.ThreadIdleTTL < 0 {
		return nil, errors.New("pool: New: negative MaxThreads or ThreadIdleTTL")
	}
	p := &Pool{now: now, coarse: newCoarseClock(now), log: opts.Logger, shared: opts.Shared, index: map[string]int{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	seen := map[string]bool{}
	for i, m := range members {
		switch {
		case m.Name == "":
			return nil, fmt.Errorf("pool: New: member %d has no name", i)
		case seen[m.Name]:
			return nil, fmt.Errorf("pool: New: two members are named %q", m.Name)
		case m.Transport == nil:
			return nil, fmt.Errorf("pool: New: member %q has no transport", m.Name)
		}
		seen[m.Name] = true
		p.index[m.Name] = i
		p.members = append(p.members, &member{name: m.Name, rt: m.Transport, close: m.close})
	}
	capacity, ttl := opts.MaxThreads, opts.ThreadIdleTTL
	if capacity == 0 {
		capacity = defaultMaxThreads
	}
	if ttl == 0 {
		ttl = defaultThreadIdleTTL
	}
	p.ttl = ttl
	threads, err := taskcache.New(p.assign, taskcache.CacheOptions{Capacity: capacity, IdleTTL: ttl, Now: now})
	if err != nil {
		return nil, fmt.Errorf("pool: New: %w", err)
	}
	p.threads = threads
	return p, nil
}

// Members returns every member as the pool sees it now, in the order given
// to New. (The usage a member's login reported is in its transport's
// Stats.)
func (p *Pool) Members() []Member {
	now := p.now()
	out := make([]Member, len(p.members))
	for i, m := range p.members {
		out[i] = Member{Name: m.name, Transport: m.rt, Left: m.gone.Load()}
		if u := m.limitedUntil.Load(); u > now.UnixNano() {
			out[i].LimitedUntil = time.Unix(0, u)
		}
	}
	return out
}

// CloseIdleConnections forwards to every member's transport.
func (p *Pool) CloseIdleConnections() {
	type closeIdler interface{ CloseIdleConnections() }
	for _, m := range p.members {
		if c, ok := m.rt.(closeIdler); ok {
			c.CloseIdleConnections()
		}
	}
}

// Close releases what [CodexHomes] built for the members (a token refresh
// in flight) and closes idle connections. The pool keeps working.
func (p *Pool) Close() {
	p.coarse.stop()
	for _, m := range p.members {
		if m.close != nil {
			m.close()
		}
	}
	p.CloseIdleConnections()
}

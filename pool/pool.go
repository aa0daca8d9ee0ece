// Package pool is one [http.RoundTripper] over several logins' transports
// ([Member]s, built by [CodexHomes] or by hand) that sends each request to
// the least used login, keeps a thread (transport.WithThread) on the login
// that served it first so its task stays under one agent identity, moves
// work off a login whose 429 reported usage_limit_reached or
// usage_not_included until the reset it gave (sending the request once
// more to another login when its body can be replayed; the thread moves
// once and its new login registers it afresh), and drops a login that
// failed for good; replicas of a fleet share what they learn through
// [Shared]. When no member can serve, RoundTrip returns [ErrUnavailable].
package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/internal/credentials"
	"github.com/agentauth/agentauth/internal/replay"
	"github.com/agentauth/agentauth/internal/taskcache"
	"github.com/agentauth/agentauth/internal/threadkey"
	"github.com/agentauth/agentauth/transport"
	"github.com/agentauth/agentauth/usage"
)

// The defaults of [Options].
const (
	defaultMaxThreads    = 10_000
	defaultThreadIdleTTL = time.Hour
	// limitCooldown keeps work off a member whose usage limit gave no
	// reset time in the future.
	limitCooldown = 5 * time.Minute
)

// ErrUnavailable is wrapped by the error of [Pool.RoundTrip] when no member
// can serve. While a member is at its usage limit the error is temporary
// (transport.IsTemporary) and names the earliest reset, which
// [Pool.Members] gives as LimitedUntil; once every member has left (its
// login failed permanently) it is not.
var ErrUnavailable = errors.New("pool: no login can serve")

// limitedError is ErrUnavailable while members are at their usage limit.
type limitedError struct{ resetsAt time.Time }

func (e *limitedError) Error() string {
	return ErrUnavailable.Error() + ": every login is at its usage limit; the first resets at " + e.resetsAt.UTC().Format(time.RFC3339)
}

func (e *limitedError) Unwrap() error { return ErrUnavailable }

// Temporary is true: the limits reset.
func (e *limitedError) Temporary() bool { return true }

// errNoMembers is ErrUnavailable once every member has left.
var errNoMembers = fmt.Errorf("%w: every login failed permanently", ErrUnavailable)

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

// available reports whether m may take work now. The clock is read only
// for a member that was limited; once its reset has passed, the limit is
// cleared so the next request need not read it.
func (m *member) available(now func() time.Time) bool {
	if m.gone.Load() {
		return false
	}
	u := m.limitedUntil.Load()
	if u == 0 {
		return true
	}
	if now().UnixNano() >= u {
		m.limitedUntil.CompareAndSwap(u, 0)
		return true
	}
	return false
}

// limit keeps new work off m until until (or later, if already so), and
// reports whether m was serving at now.
func (m *member) limit(until, now time.Time) (wasServing bool) {
	v := until.UnixNano()
	for {
		cur := m.limitedUntil.Load()
		if cur >= v || m.limitedUntil.CompareAndSwap(cur, v) {
			return cur < now.UnixNano()
		}
	}
}

func (m *member) usedPercent() float64 { return math.Float64frombits(m.used.Load()) }

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

// maxLimit bounds how long a usage limit keeps work off a member: the
// longest window the backend reports is a week.
const maxLimit = 8 * 24 * time.Hour

// noMember is the id of a thread assignment made when no member could
// serve; it is dropped at once.
const noMember = "none"

// assign picks the member of a thread that has none: the thread cache's
// registration, so concurrent first requests of a thread agree on one.
func (p *Pool) assign(ctx context.Context, thread string) (string, error) {
	if p.shared != nil {
		p.syncLimits(ctx, p.now())
	}
	i := p.pick(-1)
	if i < 0 {
		return noMember, nil
	}
	if p.shared != nil {
		i = p.sharedAssign(ctx, thread, i)
	}
	return strconv.Itoa(i), nil
}

// pick returns the index of the least used available member other than
// skip, starting the scan at a rotating member so equals take turns; -1
// when none is available.
func (p *Pool) pick(skip int) int {
	n := len(p.members)
	start := int((p.rr.Add(1) - 1) % uint64(n))
	best, bestUsed := -1, 0.0
	for k := range n {
		i := (start + k) % n
		m := p.members[i]
		if i == skip || !m.available(p.now) {
			continue
		}
		if u := m.usedPercent(); best < 0 || u < bestUsed {
			best, bestUsed = i, u
		}
	}
	return best
}

// threadMember returns the member of thread at now, assigning one if the
// thread has none or its member can no longer serve; -1 when no member
// can serve. t is the thread's cached assignment, if the caller has it.
func (p *Pool) threadMember(ctx context.Context, thread string, t *taskcache.Task) (int, error) {
	for attempt := 0; attempt < 3; attempt++ {
		if t == nil {
			var err error
			if t, err = p.threads.Get(ctx, thread); err != nil {
				return -1, err
			}
		}
		if i := p.memberOf(t); i >= 0 && p.members[i].available(p.now) {
			return i, nil
		}
		// Its member cannot serve (or none could): assign again.
		p.threads.Invalidate(t)
		if t.ID() == noMember {
			return -1, nil
		}
		t = p.threads.Peek(thread, p.now())
	}
	return p.pick(-1), nil
}

// memberOf returns the index of the member t assigns, or -1.
func (p *Pool) memberOf(t *taskcache.Task) int {
	i, err := strconv.Atoi(t.ID())
	if err != nil || i < 0 || i >= len(p.members) {
		return -1
	}
	return i
}

// RoundTrip implements [http.RoundTripper]. It never modifies req and
// closes its body exactly once: the member it is sent to does, or the pool
// when it sends it nowhere. A replay sends a body from req.GetBody, which
// that member closes.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	thread, hasThread := transport.ThreadFrom(ctx)
	i := -1
	if hasThread {
		// The hit path: the thread's member, still serving. A key the
		// cache does not hold is validated before it is remembered; an
		// invalid one is left to the member's transport to refuse.
		if p.shared != nil {
			p.syncLimits(ctx, p.now())
		}
		t := p.threads.Peek(thread, p.coarse.Now())
		if t != nil {
			if j := p.memberOf(t); j >= 0 && p.members[j].available(p.now) {
				i = j
			}
		}
		if i < 0 {
			if t == nil && threadkey.Validate(thread) != nil {
				hasThread = false
				i = p.pick(-1)
			} else {
				var err error
				if i, err = p.threadMember(ctx, thread, t); err != nil {
					closeBody(req)
					return nil, err
				}
			}
		}
	} else {
		if p.shared != nil {
			p.syncLimits(ctx, p.now())
		}
		i = p.pick(-1)
	}
	if i < 0 {
		closeBody(req)
		return nil, p.unavailable(p.now())
	}
	m := p.members[i]
	resp, err := m.rt.RoundTrip(req)
	if err != nil {
		if !p.failed(ctx, m, err) || !replay.Possible(req) {
			return nil, err
		}
		return p.replay(req, thread, hasThread, i, nil, err)
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		p.observe(m, resp)
		return resp, nil
	}
	snap := usage.FromResponse(resp)
	if snap.LimitReached == "" {
		return resp, nil // a plain rate limit: the member's own business
	}
	p.limited(ctx, m, snap, p.now())
	if !replay.Possible(req) {
		return resp, nil
	}
	return p.replay(req, thread, hasThread, i, resp, nil)
}

// replay sends req once more, to another member than the one at index
// from, which answered first (first, or firstErr when it failed). A thread
// moves to that member. When no other member can serve, or req's body
// cannot be had again, the first answer stands.
func (p *Pool) replay(req *http.Request, thread string, hasThread bool, from int, first *http.Response, firstErr error) (*http.Response, error) {
	ctx := req.Context()
	var i int
	if hasThread {
		var err error
		if i, err = p.threadMember(ctx, thread, p.threads.Peek(thread, p.now())); err != nil {
			i = -1
		}
	} else {
		i = p.pick(from)
	}
	if i < 0 || i == from {
		return first, firstErr
	}
	body, err := replay.Body(req)
	if err != nil {
		return first, firstErr
	}
	if first != nil {
		drain(first)
	}
	r := new(http.Request)
	*r = *req
	r.Body = body
	m := p.members[i]
	resp, err := m.rt.RoundTrip(r)
	if err != nil {
		p.failed(ctx, m, err)
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if snap := usage.FromResponse(resp); snap.LimitReached != "" {
			p.limited(ctx, m, snap, p.now())
		}
		return resp, nil
	}
	p.observe(m, resp)
	return resp, nil
}

// observe keeps the usage an answer of m reported.
func (p *Pool) observe(m *member, resp *http.Response) {
	if v, ok := maxUsedPercent(resp.Header); ok {
		if bits := math.Float64bits(v); m.used.Load() != bits {
			m.used.Store(bits)
		}
	}
}

// limited keeps new work off m until the limit its 429 reported resets.
func (p *Pool) limited(ctx context.Context, m *member, le usage.Snapshot, now time.Time) {
	until := le.LimitResetsAt
	if !until.After(now) {
		until = now.Add(limitCooldown)
	}
	if limit := now.Add(maxLimit); until.After(limit) {
		until = limit // a reset beyond any window Codex knows is not believed
	}
	if !m.limit(until, now) {
		return // already limited: said once
	}
	if p.shared != nil {
		p.shareLimit(ctx, m, until)
	}
	p.log.Info("agentauth/pool: login at its usage limit; no new work until its reset",
		"member", m.name, "type", le.LimitReached, "resets_at", until)
}

// failed removes m from the pool when err says its login failed for good,
// and reports whether it did.
func (p *Pool) failed(ctx context.Context, m *member, err error) bool {
	if ctx.Err() != nil || !permanent(err) {
		return false
	}
	m.leave.Do(func() {
		m.gone.Store(true)
		p.log.Warn("agentauth/pool: login failed permanently; it leaves the pool", "member", m.name, "error", err)
	})
	return true
}

// permanent reports whether err is a login that cannot work again without
// the user: a refresh the token endpoint refused for good, an agent
// identity the AuthAPI no longer takes, or provisioning refused.
func permanent(err error) bool {
	var re *credentials.RefreshError
	if errors.As(err, &re) && re.Permanent {
		return true
	}
	if errors.Is(err, transport.ErrStaleIdentity) {
		return true
	}
	var te *transport.Error
	return errors.As(err, &te) && errors.Is(te, transport.ErrProvisioning) && !te.Temporary()
}

// unavailable is the error for a request no member can serve at now.
func (p *Pool) unavailable(now time.Time) error {
	var earliest int64
	for _, m := range p.members {
		if m.gone.Load() {
			continue
		}
		if u := m.limitedUntil.Load(); u > now.UnixNano() && (earliest == 0 || u < earliest) {
			earliest = u
		}
	}
	if earliest == 0 {
		return errNoMembers
	}
	return &limitedError{resetsAt: time.Unix(0, earliest)}
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

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drain discards a little of a response body so its connection can be
// reused, then closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

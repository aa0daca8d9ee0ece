package taskcache

import (
	"context"
)

// RegisterFunc registers the task for key and returns its id.
//
// The cache calls it at most once at a time per key, and concurrently for
// different keys. Its context carries the values of the Get that started the
// attempt (trace spans, loggers) but none of that Get's cancellation or
// deadline: the attempt is shared by every caller waiting for the key, so no
// one caller may end it. The context is instead bounded by
// [CacheOptions.Timeout]. RegisterFunc must return when ctx ends; one that
// does not holds the key's attempt (and its goroutine) open, and later Gets
// for that key wait on it until their own contexts end. It must not call
// runtime.Goexit. A panic is recovered and reported as
// [ErrRegistrationPanic].
type RegisterFunc func(ctx context.Context, key string) (taskID string, err error)

// wait is the slow path of Get: join or start the key's flight and wait for
// it or for ctx.
func (c *Cache) wait(ctx context.Context, key string) (*Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, waitError(err)
	}
	c.mu.Lock()
	b := c.failing[key]
	c.mu.Unlock()
	if b != nil && c.now().Before(b.until) {
		c.backoffRejections.Add(1)
		return nil, b.err
	}
	fn := func() (any, error) { return c.fly(ctx, key) }
	if ctx.Done() == nil {
		// This caller can never stop waiting, so the flight may as well run
		// on its goroutine (singleflight.Do) instead of a new one: same
		// sharing and detachment, a fraction of the cost. fly never panics.
		if c.onWait != nil {
			c.onWait(key)
		}
		v, err, _ := c.flights.Do(key, fn)
		if err != nil {
			return nil, err
		}
		return v.(*Task), nil
	}
	ch := c.flights.DoChan(key, fn)
	if c.onWait != nil {
		c.onWait(key)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Task), nil
	case <-ctx.Done():
		return nil, waitError(ctx.Err())
	}
}

// fly is one registration attempt for key, run by singleflight on its own
// goroutine (DoChan) or on the first caller's (Do). It must never panic
// (DoChan turns a panic into a process crash), and it stores its outcome
// before returning, so that a Get that missed just before the flight ended
// finds the result on its re-check instead of starting a second
// registration.
func (c *Cache) fly(ctx context.Context, key string) (any, error) {
	// Re-check under the lock: a previous flight for key may have finished
	// between this caller's miss and the start of this flight.
	now := c.now()
	failures := 0
	c.mu.Lock()
	t := c.tasks.Load().find(c.seed, key)
	b := c.failing[key]
	c.mu.Unlock()
	switch {
	case t != nil && c.use(&t.node):
		return t, nil
	case b != nil && now.Before(b.until):
		c.backoffRejections.Add(1)
		return nil, b.err
	case b != nil:
		failures = b.failures
	}

	id, err := c.call(withAttempt(ctx, failures+1), key)
	now = c.now()
	if err != nil {
		c.failures.Add(1)
		n := failures + 1
		rerr := &AttemptError{Key: key, Err: err}
		until := now.Add(c.policy.Wait(n, err))
		b := &backoffState{
			node:     node{key: key, failed: true},
			failures: n,
			until:    until,
			err:      &BackoffError{Key: key, Until: until, Failures: n, Err: rerr},
		}
		// Recency of a backoff entry is its deadline: it expires IdleTTL
		// after it, and gets one pass of the eviction hand.
		b.used.Store(c.tick(until)<<1 | 1)
		c.store(nil, b, now)
		return nil, rerr
	}
	c.registrations.Add(1)
	t = &Task{node: node{key: key}, id: id}
	t.used.Store(c.tick(now) << 1)
	c.store(t, nil, now)
	return t, nil
}

// call runs the RegisterFunc under the cache's policy, counting panics.
func (c *Cache) call(parent context.Context, key string) (string, error) {
	id, err, panicked := c.policy.Register(parent, func(ctx context.Context) (string, error) {
		return c.register(ctx, key)
	})
	if panicked {
		c.panics.Add(1)
	}
	return id, err
}

type attemptKey struct{}

// withAttempt records in the registration context which consecutive
// attempt for its key this is (1 for the first, 2 after one failure, ...).
func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// Attempt returns, inside a [RegisterFunc] called by a [Cache], which
// consecutive attempt for the key this is: 1 for the first, n+1 after n
// failures in a row. It returns 0 for a context that does not come from a
// Cache.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

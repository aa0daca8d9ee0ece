package redisstore

import (
	"context"
	"errors"
	"time"
)

// pendingRetryFor bounds how long the background publish of a pending
// token set keeps trying while Redis fails; past it the set stays pending
// for this replica's next Redis call, as before the background publish
// existed.
const pendingRetryFor = 24 * time.Hour

// schedulePublish starts the background publish of the pending set unless
// it runs already or the Coordinator is closed.
func (c *Coordinator) schedulePublish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retrying || c.closed || c.pending == nil {
		return
	}
	c.retrying = true
	c.wg.Add(1)
	go c.retryPending()
}

// retryPending publishes the pending set as soon as Redis answers: it
// tries every PollInterval at first, doubling up to MaxPollInterval, so a
// rotation made while Redis stalled reaches the fleet within about
// MaxPollInterval + OpTimeout of Redis answering again, instead of at this
// replica's next refresh. It stops when the set is published or dropped
// (the fleet moved on), at Close, or after pendingRetryFor.
func (c *Coordinator) retryPending() {
	defer c.wg.Done()
	wait := c.s.opts.PollInterval
	timer := time.NewTimer(wait)
	defer timer.Stop()
	maxTries := int(pendingRetryFor/c.s.opts.PollInterval) + 1
	for try := 0; ; try++ {
		select {
		case <-c.done:
			c.stopRetrying()
			return
		case <-timer.C:
		}
		// With the in-process lock no hold of this process is active, so
		// a fleet lock of this Coordinator is stale (a hold that ended
		// unpublished) and the publish frees it; a hold in progress
		// publishes the set itself at its Load or release.
		select {
		case <-c.done:
			c.stopRetrying()
			return
		case c.local <- struct{}{}:
		}
		c.publishPending(context.Background(), true)
		<-c.local
		c.mu.Lock()
		if c.pending == nil || c.closed || try >= maxTries {
			c.retrying = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		wait = min(2*wait, c.s.opts.MaxPollInterval)
		timer.Reset(wait)
	}
}

func (c *Coordinator) stopRetrying() {
	c.mu.Lock()
	c.retrying = false
	c.mu.Unlock()
}

// publishNow makes one publish attempt. When no refresh of this process
// holds the login (the in-process lock is free), a fleet lock of this
// Coordinator is stale, left by a hold that ended unpublished, and is
// freed by the same script; otherwise the holder frees it.
func (c *Coordinator) publishNow() {
	ctx := context.Background()
	select {
	case c.local <- struct{}{}:
		c.publishPending(ctx, true)
		<-c.local
	default:
		c.publishPending(ctx, false)
	}
}

// Close stops the background publish of a token set that has not reached
// Redis yet, after one last attempt bounded by the Store's OpTimeout. A
// set still pending then stays pending (a later Load or CompareAndSwap
// publishes it). The Coordinator keeps working; Close is safe to call
// more than once. transport's Transport.Close calls it.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	pending := c.pending != nil
	c.mu.Unlock()
	if pending {
		c.publishNow()
	}
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

package redisstore

import (
	"context"
	"time"
)

// failed records a failed Redis call and starts an outage if none is in
// progress, logging it once.
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

// healthy ends the outage in progress, if any, logging how long it lasted.
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

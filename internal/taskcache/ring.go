package taskcache

import (
	"sync/atomic"
	"time"
)

// node is the bookkeeping a [Cache] keeps for every key it holds, whether
// the key has a task or is in failure backoff. It is embedded in both kinds
// of entry so that they share one eviction ring and one bound.
type node struct {
	key string

	// used packs the cache tick (whole seconds since the cache was built) at
	// which the entry was last used, shifted left by one, with the CLOCK
	// reference bit in bit 0. One word lets a hit update recency with a single
	// load and, only when something changed, a single store.
	used atomic.Uint64

	// slot is the entry's index in the cache's ring, or -1 once it has left
	// the cache. Guarded by Cache.mu.
	slot int32

	// failed marks the node of a *backoffState (held in Cache.failing)
	// rather than of a *Task (held in the lock-free table). Set before the
	// entry is stored; never changes.
	failed bool
}

// sweepBatch is how many ring entries each insert checks for idle expiry,
// so that expired entries leave the cache even when it is not full, at a
// bounded cost per insert.
const sweepBatch = 4

// store makes t (or, if t is nil, b) the entry for its key, replacing the
// key's previous entry in its ring slot, or taking a free or evicted slot.
func (c *Cache) store(t *Task, b *backoffState, now time.Time) {
	var n *node
	if t != nil {
		n = &t.node
	} else {
		n = &b.node
	}
	tick := c.tick(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(tick)

	var old *node
	if ot := c.tasks.Load().find(c.seed, n.key); ot != nil {
		// A flight replaces a cached task only after seeing it idle-expired.
		c.expirations.Add(1)
		c.removed(n.key, RemovalExpired)
		old = &ot.node
	} else if ob := c.failing[n.key]; ob != nil {
		old = &ob.node
	}
	switch {
	case old != nil:
		i := int(old.slot)
		if t != nil && !old.failed {
			old.slot = -1 // put below replaces the task in its table slot
		} else {
			c.unindex(old)
		}
		c.place(i, n)
	case len(c.ring) < c.capacity:
		c.ring = append(c.ring, nil)
		c.place(len(c.ring)-1, n)
	default:
		c.place(c.evict(tick), n)
	}
	if t != nil {
		c.tasks.Store(c.tasks.Load().put(c.seed, t))
	} else {
		c.failing[n.key] = b
	}
}

func (c *Cache) place(i int, n *node) {
	c.ring[i] = n
	n.slot = int32(i)
}

// unindex takes n out of the task table or the failing map and marks it
// gone; its ring slot is left for the caller to reuse or remove. c.mu is
// held.
func (c *Cache) unindex(n *node) {
	if n.failed {
		delete(c.failing, n.key)
	} else {
		c.tasks.Load().del(c.seed, n.key)
	}
	if n.slot >= 0 {
		c.ring[n.slot] = nil
	}
	n.slot = -1
}

// evict frees one slot of a full ring and returns its index. It runs the
// CLOCK hand: an idle-expired entry goes first; an entry used since the hand
// last passed loses its reference bit and is spared; the first entry without
// it is evicted. c.mu is held.
func (c *Cache) evict(now uint64) int {
	for range 2 * len(c.ring) {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		i := c.hand
		c.hand++
		n := c.ring[i]
		if c.expired(n, now) {
			c.unindex(n)
			c.expirations.Add(1)
			c.removed(n.key, RemovalExpired)
			return i
		}
		if v := n.used.Load(); v&1 != 0 {
			// If the swap fails, a Get has just used the entry: spare it too.
			n.used.CompareAndSwap(v, v&^1)
			continue
		}
		c.unindex(n)
		c.evictions.Add(1)
		c.removed(n.key, RemovalEvicted)
		return i
	}
	// Two full turns, and every entry was used again behind the hand: the
	// cache is uniformly hot, so any victim is as good as another.
	if c.hand >= len(c.ring) {
		c.hand = 0
	}
	i := c.hand
	c.hand++
	c.removed(c.ring[i].key, RemovalEvicted)
	c.unindex(c.ring[i])
	c.evictions.Add(1)
	return i
}

// sweep checks up to sweepBatch entries for idle expiry and removes the
// expired ones. c.mu is held.
func (c *Cache) sweep(now uint64) {
	if c.ttlTicks < 0 {
		return
	}
	for range sweepBatch {
		if len(c.ring) == 0 {
			return
		}
		if c.scan >= len(c.ring) {
			c.scan = 0
		}
		if c.expired(c.ring[c.scan], now) {
			c.removed(c.ring[c.scan].key, RemovalExpired)
			c.remove(c.scan) // the last entry moves into this slot; check it next
			c.expirations.Add(1)
			continue
		}
		c.scan++
	}
}

// remove deletes the entry at ring index i, moving the last entry into its
// slot. c.mu is held.
func (c *Cache) remove(i int) {
	c.unindex(c.ring[i])
	last := len(c.ring) - 1
	if i != last {
		c.place(i, c.ring[last])
		c.ring[last] = nil
	}
	c.ring = c.ring[:last]
}

// removed reports one removal to the OnRemove hook, if any. c.mu is held.
func (c *Cache) removed(key string, why RemovalReason) {
	if c.onRemove != nil {
		c.onRemove(key, why)
	}
}

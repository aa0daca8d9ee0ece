package taskcache

import (
	"hash/maphash"
	"sync/atomic"
)

// Why a hand-written table and not sync.Map (a lock-free hash trie since Go
// 1.24, which would need no code here): bench/taskcache_test.go measured
// both behind the same Cache (2-core Xeon VM, 36-byte UUID keys, default
// idle TTL, 3 runs each). Both hit without allocating; sync.Map costs
//
//	hit, 1 key:                63 → 69 ns (-cpu 1), 32 → 35 ns (-cpu 2)
//	hit, 100,000 keys:    540–740 → 1,100 ns (-cpu 1), 260 → 370–430 ns (-cpu 2)
//	heap per cached key:      95 → 200 bytes
//
// The extra 105 bytes per thread alone exceed what an idle cached thread may
// cost in all, and scattered access over many keys is 1.5–2× slower (a trie
// walk of pointer-chasing nodes against one probe into a flat array). So
// the table stays; rerun BenchmarkTaskCacheHit and BenchmarkTaskCacheMemory
// before revisiting.
//
// table is an open-addressing (linear probing) hash table of tasks by key.
// Readers need no lock: they load slots atomically, and a slot once used is
// never emptied again (deletion leaves a tombstone), so a probe for a key
// that is present cannot stop short of it. Writers hold Cache.mu. When
// tombstones and tasks fill three quarters of the slots, the writer builds a
// new table sized for the live tasks and publishes it; readers still on the
// old one see a consistent, frozen snapshot.
type table struct {
	slots      []atomic.Pointer[Task]
	mask       uint64
	live, dead int // guarded by Cache.mu
}

// tombstone marks a deleted slot. It is never returned: its key is checked
// by pointer before any key comparison.
var tombstone = new(Task)

// find returns the task for key, or nil. tb may be nil.
func (tb *table) find(seed maphash.Seed, key string) *Task {
	if tb == nil {
		return nil
	}
	i := maphash.String(seed, key) & tb.mask
	for range len(tb.slots) {
		t := tb.slots[i].Load()
		if t == nil {
			return nil
		}
		if t != tombstone && t.key == key {
			return t
		}
		i = (i + 1) & tb.mask
	}
	return nil
}

// put stores t, replacing the task with the same key if there is one, and
// returns the table to publish (tb itself, or a rebuilt one). tb may be nil.
// Cache.mu is held.
func (tb *table) put(seed maphash.Seed, t *Task) *table {
	if tb == nil || (tb.live+tb.dead+1)*4 > len(tb.slots)*3 {
		tb = tb.rebuild(seed)
	}
	free := -1
	i := maphash.String(seed, t.key) & tb.mask
	for range len(tb.slots) {
		cur := tb.slots[i].Load()
		if cur == nil {
			break
		}
		if cur == tombstone {
			if free < 0 {
				free = int(i)
			}
		} else if cur.key == t.key {
			tb.slots[i].Store(t)
			return tb
		}
		i = (i + 1) & tb.mask
	}
	if free >= 0 {
		tb.dead--
		i = uint64(free)
	}
	tb.slots[i].Store(t)
	tb.live++
	return tb
}

// del replaces the task for key, if any, with a tombstone. tb may be nil.
// Cache.mu is held.
func (tb *table) del(seed maphash.Seed, key string) {
	if tb == nil {
		return
	}
	i := maphash.String(seed, key) & tb.mask
	for range len(tb.slots) {
		t := tb.slots[i].Load()
		if t == nil {
			return
		}
		if t != tombstone && t.key == key {
			tb.slots[i].Store(tombstone)
			tb.live--
			tb.dead++
			return
		}
		i = (i + 1) & tb.mask
	}
}

// rebuild returns a new table holding tb's tasks (none if tb is nil), with
// room for one more at a load of at most one half. Cache.mu is held.
func (tb *table) rebuild(seed maphash.Seed) *table {
	live := 0
	if tb != nil {
		live = tb.live
	}
	size := 8
	for size < 2*(live+1) {
		size *= 2
	}
	nt := &table{slots: make([]atomic.Pointer[Task], size), mask: uint64(size - 1)}
	if tb == nil {
		return nt
	}
	for i := range tb.slots {
		if t := tb.slots[i].Load(); t != nil && t != tombstone {
			j := maphash.String(seed, t.key) & nt.mask
			for nt.slots[j].Load() != nil {
				j = (j + 1) & nt.mask
			}
			nt.slots[j].Store(t)
			nt.live++
		}
	}
	return nt
}

package workload

import (
	"bufio"
	"bytes"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LockSnapshot counts, per stack, the contended sync.Mutex and
// sync.RWMutex releases the runtime's mutex profile holds in agentauth
// code. Take one before and one after a workload and compare them with
// [LockSnapshot.Since]. The profile only records while
// runtime.SetMutexProfileFraction is positive.
type LockSnapshot map[string]int64

// TakeLockSnapshot reads the mutex profile.
func TakeLockSnapshot() (LockSnapshot, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("mutex").WriteTo(&buf, 1); err != nil {
		return nil, err
	}
	out := LockSnapshot{}
	var key string
	var count int64
	var ours, mutex bool
	flush := func() {
		if key != "" && ours && mutex {
			out[key] += count
		}
		key, count, ours, mutex = "", 0, false, false
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, " @ "): // "<cycles> <count> @ <pcs>" starts a record
			flush()
			if f := strings.Fields(line); len(f) > 1 {
				count, _ = strconv.ParseInt(f[1], 10, 64)
			}
			key = line[strings.Index(line, "@"):]
		case strings.HasPrefix(line, "#"): // one symbolised frame
			ours = ours || strings.Contains(line, "github.com/agentauth/agentauth/")
			mutex = mutex || strings.Contains(line, "sync.(*Mutex)") || strings.Contains(line, "sync.(*RWMutex)")
		}
	}
	flush()
	return out, sc.Err()
}

// Since returns the contended releases recorded after before was taken.
func (s LockSnapshot) Since(before LockSnapshot) int64 {
	var n int64
	for k, v := range s {
		n += v - before[k]
	}
	return n
}

// ReadPathLocks sends requests cached requests on each of goroutines
// goroutines through our transport in every cached mode, with a fixed
// clock (so nothing is re-signed), and returns how many times a mutex in
// agentauth code was contended meanwhile: 0 when the read path takes no
// lock. It needs GOMAXPROCS ≥ 2 to mean anything and turns mutex profiling
// on for its duration.
func ReadPathLocks(goroutines, requests int) (int64, error) {
	prev := runtime.SetMutexProfileFraction(1)
	defer runtime.SetMutexProfileFraction(prev)
	ctx, cancel := HandlerContext()
	defer cancel()
	fixed := time.Now()
	env := Env{Now: func() time.Time { return fixed }}
	before, err := TakeLockSnapshot()
	if err != nil {
		return 0, err
	}
	for _, c := range Cases() {
		if !c.Cached {
			continue
		}
		t, err := c.Build(ctx, env)
		if err != nil {
			return 0, err
		}
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for range goroutines {
			wg.Go(func() {
				req := NewRequest(t.Ctx, ResourceURL)
				for range requests {
					if err := t.Send(req); err != nil {
						errs <- fmt.Errorf("%s: %w", c.Name, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	after, err := TakeLockSnapshot()
	if err != nil {
		return 0, err
	}
	return after.Since(before), nil
}

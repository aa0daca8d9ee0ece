package workload

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/transport"
)

// ContentionResult is the outcome of [Contention].
type ContentionResult struct {
	Goroutines int
	Duration   time.Duration
	// GOMAXPROCS is the value the run used.
	GOMAXPROCS int
	// Requests is the number of requests sent.
	Requests int64
	// Signatures is the number of assertions the transport minted, the
	// warm-up included.
	Signatures uint64
	// Seconds is the number of distinct wall-clock seconds the
	// transport's clock returned, the warm-up included: the signatures an
	// exact "one per task per second" makes, give or take a second whose
	// only reading was a caller that was then given the next second's
	// assertion.
	Seconds int64
}

// Exact reports whether no second was signed twice.
func (r ContentionResult) Exact() bool { return r.Signatures <= uint64(r.Seconds) && r.Signatures > 0 }

// Contention sends cached requests on one thread key from goroutines
// goroutines for d at GOMAXPROCS procs (0: unchanged), through our
// transport on the real clock, and counts the signatures it minted against
// the seconds its clock went through. The clock is time.Now wrapped to
// count each new second with one atomic load per reading (a cache line
// written once per second).
func Contention(goroutines, procs int, d time.Duration) (ContentionResult, error) {
	if procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	}
	res := ContentionResult{Goroutines: goroutines, Duration: d, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	var last, seconds atomic.Int64
	clock := func() time.Time {
		now := time.Now()
		if s := now.Unix(); s > last.Load() {
			for {
				old := last.Load()
				if s <= old {
					break
				}
				if last.CompareAndSwap(old, s) {
					seconds.Add(1)
					break
				}
			}
		}
		return now
	}
	cred, err := AgentIdentity(NewRecord())
	if err != nil {
		return res, err
	}
	reg := &Registrar{}
	rt, err := transport.New(NewNopBase(), withClock(transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		HTTPClient:    reg.Client(),
	}, clock))
	if err != nil {
		return res, err
	}
	ctx := transport.WithThread(context.Background(), ThreadKey)
	t := &Target{RT: rt, Ctx: ctx, Transport: rt}
	if err := t.Warm(); err != nil {
		return res, fmt.Errorf("contention: warm-up: %w", err)
	}

	var stop atomic.Bool
	var sent atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	for range goroutines {
		wg.Go(func() {
			req := NewRequest(ctx, ResourceURL)
			n := int64(0)
			for !stop.Load() {
				if err := t.Send(req); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					break
				}
				n++
			}
			sent.Add(n)
		})
	}
	wg.Wait()
	if firstErr != nil {
		return res, fmt.Errorf("contention: %w", firstErr)
	}
	st := rt.Stats()
	res.Requests, res.Signatures, res.Seconds = sent.Load(), st.Signatures, seconds.Load()
	if st.ThreadRegistrations != 1 {
		return res, errors.New("contention: the thread was registered more than once")
	}
	return res, nil
}

package workload

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/transport"
)

// StampedeResult is the outcome of [Stampede].
type StampedeResult struct {
	// Requests is the number of concurrent first requests on one thread key.
	Requests int
	// Latency is the stub's registration latency.
	Latency time.Duration
	// Single is the median time of one first request on a new thread key
	// with nobody else waiting: one registration, one signature, one round
	// trip. It is the unit of Ratio.
	Single time.Duration
	// Total is the time from releasing all requests until the last one
	// returned.
	Total time.Duration
	// Warm is the same wave of Requests goroutines sent again once the
	// key is cached: what the requests cost without any registration, so
	// Total − Warm is what the stampede itself added.
	Warm time.Duration
	// Registrations counts the stub's registration calls during the
	// stampede; Signatures the assertions the transport minted.
	Registrations int64
	Signatures    uint64
	// Failed counts requests that did not succeed.
	Failed int64
}

// Ratio is Total in units of Single.
func (r StampedeResult) Ratio() float64 { return float64(r.Total) / float64(r.Single) }

// ExtraRatio is Total − Warm (the wait the stampede added to the cost of
// sending the requests) in units of Single.
func (r StampedeResult) ExtraRatio() float64 { return float64(r.Total-r.Warm) / float64(r.Single) }

// fixedClock returns the same whole second forever, so that every request
// of a stampede falls in one assertion second: the exact-count property (one
// signature) then cannot be broken by the stampede straddling a second
// boundary, which would legitimately cost a second signature.
func fixedClock() func() time.Time {
	t := time.Now().Truncate(time.Second)
	return func() time.Time { return t }
}

// Stampede releases n goroutines at once, each sending the first request
// for the same new thread key through one new transport whose
// registrations take latency, and measures how long until all have
// returned. It compares that with a lone first request (median of 5, on
// other keys of another transport with the same settings) and with the same
// wave sent again once the key is cached. Both waves count towards the
// exact counts: one registration and one signature in all.
func Stampede(n int, latency time.Duration) (StampedeResult, error) {
	res := StampedeResult{Requests: n, Latency: latency}
	base := NewNopBase()
	newTransport := func(reg *Registrar) (*transport.Transport, error) {
		cred, err := AgentIdentity(NewRecord())
		if err != nil {
			return nil, err
		}
		return transport.New(base, withClock(transport.Options{
			Credential:    cred,
			AgentIdentity: featureflag.New(false),
			HTTPClient:    reg.Client(),
		}, fixedClock()))
	}

	// The lone first request: median of a few, each on a fresh key.
	soloReg := &Registrar{Latency: latency}
	solo, err := newTransport(soloReg)
	if err != nil {
		return res, err
	}
	ctx, cancel := HandlerContext()
	defer cancel()
	var singles []time.Duration
	for i := range 5 {
		req := NewRequest(transport.WithThread(ctx, fmt.Sprintf("thread-solo-%d", i)), ResourceURL)
		start := time.Now()
		resp, err := solo.RoundTrip(req)
		d := time.Since(start)
		if err != nil {
			return res, fmt.Errorf("lone first request: %w", err)
		}
		resp.Body.Close()
		singles = append(singles, d)
	}
	slices.Sort(singles)
	res.Single = singles[len(singles)/2]

	reg := &Registrar{Latency: latency}
	rt, err := newTransport(reg)
	if err != nil {
		return res, err
	}
	threadCtx := transport.WithThread(ctx, "thread-stampede")
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	wave := func() time.Duration {
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		for range n {
			ready.Add(1)
			done.Go(func() {
				req := NewRequest(threadCtx, ResourceURL)
				ready.Done()
				<-start
				resp, err := rt.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
					return
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			})
		}
		ready.Wait()
		t0 := time.Now()
		close(start)
		done.Wait()
		return time.Since(t0)
	}
	res.Total = wave()
	res.Warm = wave()

	st := rt.Stats()
	res.Registrations = reg.Calls()
	res.Signatures = st.Signatures
	res.Failed = failed.Load()
	if p := firstErr.Load(); p != nil {
		return res, fmt.Errorf("%d of %d stampede requests failed, first: %w", res.Failed, n, *p)
	}
	if st.ThreadRegistrations != uint64(res.Registrations) {
		return res, errors.New("transport and stub disagree on the registration count")
	}
	return res, nil
}

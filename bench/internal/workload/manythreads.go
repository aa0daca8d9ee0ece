package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/featureflag"
	"github.com/agentauth/agentauth/transport"
)

// ManyThreads is one transport with many warm thread keys, for comparing
// the cached cost of uniformly random access across them with the cost of
// one hot key. Its clock is frozen, so no request re-signs: both cases
// measure lookup and locality, not signatures. Each iteration builds its
// request as a caller would (a thread context over a handler's context,
// then Request.WithContext), so what is cold in the random case is what a
// long-lived thread key and our cache entries make cold, not a request
// object the benchmark kept for a long time.
type ManyThreads struct {
	Keys   int
	rt     *transport.Transport
	parent context.Context
	base   *http.Request
	keys   []string // thread keys, 36-byte UUIDs
	hot    []string // the first key, once
	seq    []uint32 // uniformly random key indices, cycled
}

// seqLen is the length of the precomputed random index sequence: long
// enough that its cycle does not fit a CPU cache.
const seqLen = 1 << 20

// NewManyThreads builds the transport (thread cache capacity = keys) and
// sends one first request for each of keys thread keys of 36 bytes (UUID)
// on GOMAXPROCS goroutines. cancel releases the request context.
func NewManyThreads(keys int) (m *ManyThreads, cancel func(), err error) {
	cred, err := AgentIdentity(NewRecord())
	if err != nil {
		return nil, nil, err
	}
	fixed := time.Now()
	rt, err := transport.New(NewNopBase(), withClock(transport.Options{
		Credential:    cred,
		AgentIdentity: featureflag.New(false),
		HTTPClient:    (&Registrar{}).Client(),
		Tuning:        transport.Tuning{MaxThreads: keys},
	}, func() time.Time { return fixed }))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := HandlerContext()
	m = &ManyThreads{Keys: keys, rt: rt, parent: ctx, base: NewRequest(ctx, ResourceURL),
		keys: make([]string, keys), seq: make([]uint32, seqLen)}
	for i := range m.keys {
		m.keys[i] = threadKeyN(i, true)
	}
	m.hot = m.keys[:1]
	r := rand.New(rand.NewPCG(1, 2))
	for i := range m.seq {
		m.seq[i] = uint32(r.IntN(keys))
	}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(keys) {
					return
				}
				req := m.base.WithContext(transport.WithThread(ctx, m.keys[i]))
				if err := (&Target{RT: rt}).Send(req); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = m.Check()
	}
	if firstErr != nil {
		cancel()
		return nil, nil, fmt.Errorf("many threads: %w", firstErr)
	}
	return m, cancel, nil
}

// Check verifies that every key is cached and was registered and signed
// exactly once.
func (m *ManyThreads) Check() error {
	st := m.rt.Stats()
	if st.CachedThreads != m.Keys || st.ThreadRegistrations != uint64(m.Keys) || st.Signatures != uint64(m.Keys) {
		return fmt.Errorf("%d cached, %d registrations, %d signatures; want %d each",
			st.CachedThreads, st.ThreadRegistrations, st.Signatures, m.Keys)
	}
	return nil
}

// Random is the serial per-request benchmark over uniformly random keys.
func (m *ManyThreads) Random(b *testing.B) { m.run(b, m.keys) }

// Hot is the same loop on the first key only.
func (m *ManyThreads) Hot(b *testing.B) { m.run(b, m.hot) }

func (m *ManyThreads) run(b *testing.B, keys []string) {
	b.ReportAllocs()
	cpu := processCPU()
	n := uint32(len(keys))
	for i := 0; b.Loop(); i++ {
		j := m.seq[i&(seqLen-1)]
		if j >= n {
			j = 0 // the hot case: always the first key, by the same code path
		}
		req := m.base.WithContext(transport.WithThread(m.parent, keys[j]))
		resp, err := m.rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	reportCPU(b, cpu)
}

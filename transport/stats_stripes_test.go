package transport

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/agentauth/agentauth/resolver"
)

// The striped request counter loses no count: requests counted
// concurrently from objects on many pages (so on every stripe) sum to the
// exact total per mode, and objects on different pages use different
// stripes.
func TestRequestCounterStripesSumExactly(t *testing.T) {
	var c counters
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := uintptr(i+g*each) << 13 // the page of one object per request
				c.add(resolver.ModeThreadTask, p)
				if i%2 == 0 {
					c.add(resolver.ModeBearer, p)
				}
			}
		}()
	}
	wg.Wait()
	if n := c.requestsIn(int(resolver.ModeThreadTask)); n != goroutines*each {
		t.Errorf("thread requests = %d, want %d", n, goroutines*each)
	}
	if n := c.requestsIn(int(resolver.ModeBearer)); n != goroutines*each/2 {
		t.Errorf("bearer requests = %d, want %d", n, goroutines*each/2)
	}
	if n := c.requestsIn(int(resolver.ModeAPIKey)); n != 0 {
		t.Errorf("API-key requests = %d, want 0", n)
	}
	used := 0
	for i := range c.requests {
		if c.requests[i].n[resolver.ModeThreadTask].Load() > 0 {
			used++
		}
	}
	if used != requestStripes {
		t.Errorf("%d of %d stripes used by objects on distinct pages", used, requestStripes)
	}
	if s := unsafe.Sizeof(c.requests[0]); s != 128 {
		t.Errorf("stripe size %d, want 128", s)
	}
}

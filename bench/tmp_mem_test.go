package bench_test

import (
	"testing"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

func TestTmpMem(t *testing.T) {
	for _, u := range []bool{false, true} {
		r, err := workload.Memory(workload.MemoryOptions{Keys: 100_000, Workers: 2, UUIDKeys: u})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("uuid=%v keylen=%d idle %.0f busy %.0f cached %d", u, r.KeyLen, r.PerThread(), r.BusyPerThread(), r.Cached)
	}
}

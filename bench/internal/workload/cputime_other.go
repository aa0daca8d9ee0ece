//go:build !unix

package workload

import "time"

// processCPU is not available on this platform; the cpu-ns/op metric is
// then omitted.
func processCPU() time.Duration { return 0 }

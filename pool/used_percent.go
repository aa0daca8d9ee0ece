package pool

import (
	"math"
	"net/http"
	"strconv"
	"strings"
)

// maxUsedPercent returns the largest used percent of any window in h (any
// x-<id>-primary-used-percent or x-<id>-secondary-used-percent), the
// number usage.Snapshot.MaxUsedPercent gives, without building the
// snapshot: the pool reads it from every answer, so it allocates nothing.
// ok is false when h has none.
func maxUsedPercent(h http.Header) (best float64, ok bool) {
	for k, vv := range h {
		if len(vv) == 0 || len(k) < 2 || (k[0] != 'x' && k[0] != 'X') || k[1] != '-' {
			continue
		}
		if !hasSuffixFold(k, "-primary-used-percent") && !hasSuffixFold(k, "-secondary-used-percent") {
			continue
		}
		if vv[0] == "" {
			continue
		}
		v, err := strconv.ParseFloat(vv[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if !ok || v > best {
			best, ok = v, true
		}
	}
	return best, ok
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

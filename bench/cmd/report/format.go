package main

import (
	"fmt"
	"math"
	"time"
)

// roundDur rounds d to a precision that suits its size.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// signedDur is roundDur with an explicit sign.
func signedDur(d time.Duration) string {
	if d < 0 {
		return "−" + roundDur(-d).String()
	}
	return "+" + roundDur(d).String()
}

// ns formats nanoseconds with precision that suits their size.
func ns(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// variantName names the serial or the parallel run.
func variantName(parallel bool) string {
	if parallel {
		return "parallel"
	}
	return "serial"
}

// sweepSeries lists the sweep's cases other than the bare base, in case order.
func sweepSeries(rep *report) []string {
	var out []string
	for _, c := range rep.Cases {
		if _, ok := rep.Sweep[c.Name]; ok && c.Name != "bare" {
			out = append(out, c.Name)
		}
	}
	return out
}

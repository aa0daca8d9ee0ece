package main

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// seriesStyle gives each case a colour and dash pattern.
var seriesStyle = map[string]struct{ color, dash string }{
	"floor":    {"#7f7f7f", "6 4"},
	"clone":    {"#bcbd22", "3 3"},
	"flag-on":  {"#ff7f0e", ""},
	"oauth2":   {"#d62728", "2 3"},
	"thread":   {"#1f77b4", ""},
	"process":  {"#2ca02c", ""},
	"bearer":   {"#9467bd", ""},
	"flag-off": {"#17becf", ""},
}

// renderSVG draws per-request overhead (ns above the bare base) against the
// number of goroutines on a log₂ axis, one line per case.
func renderSVG(rep *report) string {
	const (
		w, h                  = 760, 440
		left, right, top, bot = 70, 170, 50, 60
	)
	pw, ph := float64(w-left-right), float64(h-top-bot)
	names := sweepSeries(rep)
	levels := rep.SweepLevels
	maxY := 0.0
	for _, n := range names {
		for _, g := range levels {
			maxY = max(maxY, rep.Sweep[n][g].NsOp-rep.Sweep["bare"][g].NsOp)
		}
	}
	step := niceStep(maxY / 5)
	top0 := math.Max(step, math.Ceil(maxY/step)*step)
	lo, hi := 0.0, 1.0
	if len(levels) > 0 {
		lo, hi = math.Log2(float64(levels[0])), math.Log2(float64(levels[len(levels)-1]))
	}
	if hi == lo {
		hi = lo + 1
	}
	x := func(g int) float64 { return float64(left) + (math.Log2(float64(g))-lo)/(hi-lo)*pw }
	y := func(v float64) float64 { return float64(top) + ph - math.Max(v, 0)/top0*ph }

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left,
		html.EscapeString(fmt.Sprintf("Per-request overhead vs concurrency (no-op base, 8 headers, GOMAXPROCS=%d)", rep.SweepMaxProcs)))
	for v := 0.0; v <= top0+step/2; v += step {
		p(`<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", left, y(v), float64(left)+pw, y(v))
		p(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, y(v), strconv.FormatFloat(v, 'f', -1, 64))
	}
	for _, g := range levels {
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", x(g), top, x(g), float64(top)+ph)
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(g), float64(top)+ph+16, g)
	}
	p(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	p(`<text x="%.1f" y="%d" text-anchor="middle">goroutines sending requests (log scale)</text>`+"\n", float64(left)+pw/2, h-16)
	p(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">ns per request above the bare base</text>`+"\n", float64(top)+ph/2)
	for i, n := range names {
		st, ok := seriesStyle[n]
		if !ok {
			st.color = "#000"
		}
		var pts []string
		for _, g := range levels {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(g), y(rep.Sweep[n][g].NsOp-rep.Sweep["bare"][g].NsOp)))
		}
		dash := ""
		if st.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
		}
		p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), st.color, dash)
		for _, pt := range pts {
			xy := strings.Split(pt, ",")
			p(`<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", xy[0], xy[1], st.color)
		}
		ly := top + 10 + 20*i
		lx := float64(left) + pw + 14
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+24, ly, st.color, dash)
		label := n
		if c, ok := workload.CaseNamed(n); ok && c.Kind == workload.Ours {
			label = "ours: " + n
		}
		p(`<text x="%.1f" y="%d" dominant-baseline="middle">%s</text>`+"\n", lx+30, ly, html.EscapeString(label))
	}
	p("</svg>\n")
	return b.String()
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

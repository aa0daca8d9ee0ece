package main

import (
	"fmt"
	"html"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentauth/agentauth/bench/internal/workload"
)

// Limits of the second performance round.
const (
	maxFloorRatio     = 1.15 // cached modes: time / tight floor time
	maxExtraAllocs    = 1    // cached modes: allocs − tight floor allocs
	maxOAuth2Ratio    = 0.85 // cached modes: time / oauth2 time
	maxBytesPerThread = 200  // memory per idle thread, 36-byte keys, 100,000 keys
	minWireRatio      = 0.97 // loopback req/s, ours / wire
	maxColdCPURatio   = 1.15 // cold thread, client CPU, ours / by hand
	minColdRateRatio  = 0.95 // cold threads per second, ours / by hand
	maxManyRatio      = 1.5  // many threads: random keys / one hot key
)

// check is one target and its outcome.
type check struct {
	Target, Measured, Limit string
	OK                      bool
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func variantName(parallel bool) string {
	if parallel {
		return "parallel"
	}
	return "serial"
}

// checks evaluates every target against rep.
func checks(rep *report) []check {
	var out []check
	type worst struct {
		v    float64
		what string
	}
	floorW, oauthW, scaleW := worst{v: math.Inf(-1)}, worst{v: math.Inf(-1)}, worst{v: math.Inf(-1)}
	allocW, floorCPU, oauthCPU := worst{v: math.Inf(-1)}, worst{v: math.Inf(-1)}, worst{v: math.Inf(-1)}
	scaleCPU := worst{v: math.Inf(-1)}
	for _, c := range rep.Cases {
		if !c.Cached {
			continue
		}
		for _, cpu := range rep.CPUs {
			for _, par := range []bool{false, true} {
				us, ok := rep.Micro[microKey{c.Name, cpu, par}]
				fl, ok2 := rep.Micro[microKey{"floor", cpu, par}]
				oa, ok3 := rep.Micro[microKey{"oauth2", cpu, par}]
				if !ok || !ok2 || !ok3 {
					continue
				}
				what := fmt.Sprintf("%s, %s, -cpu %d", c.Name, variantName(par), cpu)
				if r := us.NsOp / fl.NsOp; r > floorW.v {
					floorW = worst{r, what}
				}
				if r := us.NsOp / oa.NsOp; r > oauthW.v {
					oauthW = worst{r, what}
				}
				if us.CPUNsOp > 0 && fl.CPUNsOp > 0 && oa.CPUNsOp > 0 {
					if r := us.CPUNsOp / fl.CPUNsOp; r > floorCPU.v {
						floorCPU = worst{r, what}
					}
					if r := us.CPUNsOp / oa.CPUNsOp; r > oauthCPU.v {
						oauthCPU = worst{r, what}
					}
				}
				if d := float64(us.AllocsOp - fl.AllocsOp); d > allocW.v {
					allocW = worst{d, fmt.Sprintf("%s: %d vs floor %d", what, us.AllocsOp, fl.AllocsOp)}
				}
			}
		}
		one, ok1 := rep.Micro[microKey{c.Name, 1, true}]
		two, ok2 := rep.Micro[microKey{c.Name, 2, true}]
		if ok1 && ok2 {
			if r := two.NsOp / one.NsOp; r > scaleW.v {
				scaleW = worst{r, c.Name}
			}
			if one.CPUNsOp > 0 && two.CPUNsOp > 0 {
				if r := two.CPUNsOp / one.CPUNsOp; r > scaleCPU.v {
					scaleCPU = worst{r, c.Name}
				}
			}
		}
	}
	if !math.IsInf(floorW.v, -1) {
		out = append(out, check{"1. cached modes: ns/op ≤ 1.15× the tight floor", fmt.Sprintf("worst %.2f× (%s)%s", floorW.v, floorW.what, cpuNote(floorCPU.v, floorCPU.what)), fmt.Sprintf("≤ %.2f×", maxFloorRatio), floorW.v <= maxFloorRatio})
		out = append(out, check{"1. cached modes: allocs/op ≤ tight floor + 1", fmt.Sprintf("worst %+.0f (%s)", allocW.v, allocW.what), fmt.Sprintf("≤ +%d", maxExtraAllocs), allocW.v <= maxExtraAllocs})
		out = append(out, check{"1. cached modes: ns/op ≤ 0.85× oauth2.Transport", fmt.Sprintf("worst %.2f× (%s)%s", oauthW.v, oauthW.what, cpuNote(oauthCPU.v, oauthCPU.what)), fmt.Sprintf("≤ %.2f×", maxOAuth2Ratio), oauthW.v <= maxOAuth2Ratio})
	}
	if !math.IsInf(scaleW.v, -1) {
		note := ""
		if !math.IsInf(scaleCPU.v, -1) {
			note = fmt.Sprintf("; CPU time per request at -cpu 2 ÷ at -cpu 1 (1.00 = no contention): ours worst %.2f× (%s)", scaleCPU.v, scaleCPU.what)
			for _, ref := range []string{"floor", "oauth2"} {
				one, ok1 := rep.Micro[microKey{ref, 1, true}]
				two, ok2 := rep.Micro[microKey{ref, 2, true}]
				if ok1 && ok2 && one.CPUNsOp > 0 && two.CPUNsOp > 0 {
					note += fmt.Sprintf(", %s %.2f×", ref, two.CPUNsOp/one.CPUNsOp)
				}
			}
		}
		out = append(out, check{"parallel: ns/op at -cpu 2 ≤ at -cpu 1", fmt.Sprintf("worst %.2f× (%s)%s", scaleW.v, scaleW.what, note), "≤ 1.00×", scaleW.v <= 1})
	}
	if rep.ReadPathLocks >= 0 {
		out = append(out, check{
			"parallel: no lock on the read path (mutex profile)",
			fmt.Sprintf("%d contended mutexes in agentauth code while %d goroutines sent cached requests in every cached mode",
				rep.ReadPathLocks, rep.ReadPathGoroutines),
			"0", rep.ReadPathLocks == 0,
		})
	}
	s := rep.Stampede
	out = append(out, check{
		fmt.Sprintf("stampede: %d first requests on one key → 1 registration, 1 signature", s.Requests),
		fmt.Sprintf("%d registration(s), %d signature(s), %d failed", s.Registrations, s.Signatures, s.Failed),
		"exactly 1 / 1 / 0", s.Registrations == 1 && s.Signatures == 1 && s.Failed == 0,
	})
	out = append(out, check{
		"stampede: time until all complete ÷ one lone first request",
		fmt.Sprintf("%.1f× (%v ÷ %v), %.1f× the stub's registration latency; the same wave once cached: %v (%.1f×)",
			s.Ratio(), roundDur(s.Total), roundDur(s.Single), float64(s.Total)/float64(s.Latency), roundDur(s.Warm), float64(s.Warm)/float64(s.Single)),
		"reported", true,
	})
	if len(rep.Contention) > 0 {
		var parts []string
		ok := true
		for _, r := range rep.Contention {
			parts = append(parts, fmt.Sprintf("-cpu %d: %d signatures over %d seconds (%d requests)", r.GOMAXPROCS, r.Signatures, r.Seconds, r.Requests))
			ok = ok && r.Exact()
		}
		out = append(out, check{
			fmt.Sprintf("2. contention: %d goroutines on one thread for %v → one signature per second", rep.Contention[0].Goroutines, rep.Contention[0].Duration),
			strings.Join(parts, "; "), "signatures ≤ seconds", ok,
		})
	}
	m, mu := rep.Memory, rep.MemoryUUID
	out = append(out, check{
		fmt.Sprintf("3. memory: bytes per idle cached thread, %d-byte (UUID) keys, at %d keys", mu.KeyLen, mu.Keys),
		fmt.Sprintf("%.0f B (%d cached; %.0f B while its assertion is current; %d-byte keys: %.0f B idle)", mu.PerThread(), mu.Cached, mu.BusyPerThread(), m.KeyLen, m.PerThread()),
		fmt.Sprintf("≤ %d B", maxBytesPerThread), mu.PerThread() <= maxBytesPerThread && mu.Cached == mu.Keys,
	})
	if cc := rep.ColdCompare; cc != nil {
		var cpuParts, rateParts []string
		worstCPU, worstRate := 0.0, math.Inf(1)
		for _, c := range cc.Concurrency {
			cpuParts = append(cpuParts, fmt.Sprintf("%.2f× at %d", cc.CPURatio(c), c))
			rateParts = append(rateParts, fmt.Sprintf("%.2f× at %d (%.0f vs %.0f/s)", cc.RateRatio(c), c,
				cc.Levels[workload.ColdOurs][c].PerSecond, cc.Levels[workload.ColdByHand][c].PerSecond))
			worstCPU, worstRate = max(worstCPU, cc.CPURatio(c)), min(worstRate, cc.RateRatio(c))
		}
		where := "client process only (server in another process)"
		if cc.ServerInProcess {
			where = "client and server (one process)"
		}
		out = append(out, check{
			"4. cold thread: CPU time per new thread, ours ÷ by hand",
			fmt.Sprintf("worst %.2f× (%s; %s)", worstCPU, strings.Join(cpuParts, ", "), where),
			fmt.Sprintf("≤ %.2f×", maxColdCPURatio), worstCPU <= maxColdCPURatio,
		})
		out = append(out, check{
			"4. cold thread: new threads per second on loopback, ours ÷ by hand",
			fmt.Sprintf("worst %.2f× (%s goroutines)", worstRate, strings.Join(rateParts, ", ")),
			fmt.Sprintf("≥ %.2f×", minColdRateRatio), worstRate >= minColdRateRatio,
		})
	}
	if cc := rep.ColdClient; cc != nil {
		out = append(out, check{
			"4. cold thread, client side without network (registration stub, no-op base): ours ÷ by hand",
			fmt.Sprintf("%.2f× (%s vs %s ns per new thread; %d vs %d allocs)", cc.Ours.NsOp/cc.ByHand.NsOp,
				ns(cc.Ours.NsOp), ns(cc.ByHand.NsOp), cc.Ours.AllocsOp, cc.ByHand.AllocsOp),
			"reported", true,
		})
	}
	if mt := rep.Many; mt != nil {
		r := mt.Random.NsOp / mt.Hot.NsOp
		note := ""
		if mt.Random.CPUNsOp > 0 && mt.Hot.CPUNsOp > 0 {
			note = fmt.Sprintf("; by CPU time %.2f×", mt.Random.CPUNsOp/mt.Hot.CPUNsOp)
		}
		out = append(out, check{
			fmt.Sprintf("5. many threads: %d warm keys, uniform random ÷ one hot key (frozen clock)", mt.Keys),
			fmt.Sprintf("%.2f× (%s vs %s ns/op)%s", r, ns(mt.Random.NsOp), ns(mt.Hot.NsOp), note),
			fmt.Sprintf("≤ %.1f×", maxManyRatio), r <= maxManyRatio,
		})
	}
	l := rep.Loopback
	bare, ours, wire := l.Paths[workload.PathBare], l.Paths[workload.PathOurs], l.Paths[workload.PathWire]
	out = append(out, check{
		"6. loopback keep-alive: req/s ours ÷ wire (the bare transport sending the same header bytes)",
		fmt.Sprintf("%.3f× (%.0f vs %.0f req/s); the tight floor ÷ wire %.3f×; ours ÷ bare %.3f× (bare %.0f req/s, wire ÷ bare %.3f×)",
			l.OwnRatio(), ours.RPS, wire.RPS, l.FloorRatio(), l.Ratio(), bare.RPS, l.WireRatio()),
		fmt.Sprintf("≥ %.2f×", minWireRatio), l.OwnRatio() >= minWireRatio,
	})
	out = append(out, check{"7. nil observer versus an installed one", "measured by bench/observer_test.go (observability issue), not by this report", "reported", true})
	ct := rep.ColdThread
	measured := "skipped: " + ct.SkipReason
	if !ct.Skipped {
		measured = fmt.Sprintf("%.2f× by median (%v vs %v: %s per new thread)",
			ct.Ratio(), roundDur(ct.Redis.Median), roundDur(ct.InMemory.Median), signedDur(ct.Added()))
	}
	out = append(out, check{"cold thread with the Redis store ÷ in-memory", measured, "reported", true})
	return out
}

// cpuNote is the CPU-time cross-check of a time ratio, if there is one.
func cpuNote(v float64, what string) string {
	if math.IsInf(v, -1) {
		return ""
	}
	return fmt.Sprintf("; by CPU time worst %.2f× (%s)", v, what)
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// renderMarkdown renders rep as the Markdown the README shows.
func renderMarkdown(rep *report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("<!-- generated by go run -C bench ./cmd/report; do not edit by hand -->\n")
	p("Measured with %s on %s/%s, %d CPUs; per-request figures are medians of %d interleaved rounds (sweep: %d) of about %v each; whole run %v.",
		rep.GoVersion, rep.GOOS, rep.GOARCH, rep.NumCPU, rep.Rounds, rep.SweepRounds, rep.Benchtime, rep.Elapsed.Round(time.Second))
	if rep.LoadBefore != "" {
		p(" 1-minute load average %s at the start, %s at the end.", rep.LoadBefore, rep.LoadAfter)
	}
	p("\n\n")

	p("### Targets\n\n| target | measured | limit | result |\n|---|---|---|---|\n")
	for _, c := range checks(rep) {
		res := verdict(c.OK)
		if c.Limit == "reported" {
			res = "—"
		}
		p("| %s | %s | %s | %s |\n", c.Target, c.Measured, c.Limit, res)
	}

	p("\n### Per-request cost (no-op base, 8 request headers)\n\n")
	p("| case | what it does |\n|---|---|\n")
	for _, c := range rep.Cases {
		p("| %s | %s |\n", c.Name, c.Desc)
	}
	p("\nns/op is wall time per request (for parallel runs, across all goroutines); CPU ns/op is process CPU time per request (all threads, GC included), which time spent descheduled on a shared machine does not inflate.\n\n")
	p("| case | -cpu | run | ns/op | ×floor | ×oauth2 | CPU ns/op | ×floor (CPU) | B/op | allocs/op |\n")
	p("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range rep.Cases {
		for _, cpu := range rep.CPUs {
			for _, par := range []bool{false, true} {
				f, ok := rep.Micro[microKey{c.Name, cpu, par}]
				if !ok {
					continue
				}
				ratio := func(base string, cpuTime bool) string {
					ref, ok := rep.Micro[microKey{base, cpu, par}]
					if !ok || c.Name == "bare" || c.Name == base {
						return "—"
					}
					if cpuTime {
						if f.CPUNsOp == 0 || ref.CPUNsOp == 0 {
							return "—"
						}
						return fmt.Sprintf("%.2f", f.CPUNsOp/ref.CPUNsOp)
					}
					return fmt.Sprintf("%.2f", f.NsOp/ref.NsOp)
				}
				cpuNs := "—"
				if f.CPUNsOp > 0 {
					cpuNs = ns(f.CPUNsOp)
				}
				p("| %s | %d | %s | %s | %s | %s | %s | %s | %d | %d |\n", c.Name, cpu, variantName(par),
					ns(f.NsOp), ratio("floor", false), ratio("oauth2", false), cpuNs, ratio("floor", true), f.BOp, f.AllocsOp)
			}
		}
	}
	p("\n### Overhead versus concurrency (ns per request above the bare base, GOMAXPROCS=%d)\n\n", rep.SweepMaxProcs)
	names := sweepSeries(rep)
	p("| goroutines | bare ns/op |")
	for _, n := range names {
		p(" %s |", n)
	}
	p("\n|--:|--:|%s\n", strings.Repeat("--:|", len(names)))
	for _, g := range rep.SweepLevels {
		bare := rep.Sweep["bare"][g].NsOp
		p("| %d | %s |", g, ns(bare))
		for _, n := range names {
			p(" %s |", ns(rep.Sweep[n][g].NsOp-bare))
		}
		p("\n")
	}
	if rep.ChartPath != "" {
		p("\n![per-request overhead versus concurrency](%s)\n", chartRef(rep.ChartPath))
	}

	s, m, l := rep.Stampede, rep.Memory, rep.Loopback
	p("\n### Stampede, memory, loopback\n\n| measurement | figure |\n|---|---|\n")
	p("| stampede: %d concurrent first requests, one thread key, %v stub registrations | all done in %v = %.1f× one lone first request (%v); the same wave sent again once the key is cached takes %v, so (all − cached) ÷ lone = %.1f×; %d registration, %d signature, %d failed over both waves |\n",
		s.Requests, s.Latency, roundDur(s.Total), s.Ratio(), roundDur(s.Single), roundDur(s.Warm), s.ExtraRatio(), s.Registrations, s.Signatures, s.Failed)
	for _, mm := range []workload.MemoryResult{m, rep.MemoryUUID} {
		p("| memory: %d thread keys of %d bytes, one first request each | idle (their second passed, one later request): live heap +%.1f MiB = %.0f B per cached thread; right after the requests: %.0f B (%d cached, %d registrations) |\n",
			mm.Keys, mm.KeyLen, float64(mm.HeapDelta)/(1<<20), mm.PerThread(), mm.BusyPerThread(), mm.Cached, mm.Registrations)
	}
	for _, r := range rep.Contention {
		p("| contention: %d goroutines, one thread key, %v, GOMAXPROCS %d, real clock | %d signatures, %d distinct seconds read, %d requests |\n",
			r.Goroutines, r.Duration, r.GOMAXPROCS, r.Signatures, r.Seconds, r.Requests)
	}
	if mt := rep.Many; mt != nil {
		p("| many threads: %d warm UUID keys, serial, GOMAXPROCS 1, frozen clock, each request built as a caller would | uniform random keys %s ns/op (%s CPU ns/op, %d allocs/op); one hot key %s ns/op (%s CPU ns/op, %d allocs/op) |\n",
			mt.Keys, ns(mt.Random.NsOp), ns(mt.Random.CPUNsOp), mt.Random.AllocsOp, ns(mt.Hot.NsOp), ns(mt.Hot.CPUNsOp), mt.Hot.AllocsOp)
	}
	if cc := rep.ColdCompare; cc != nil {
		for _, c := range cc.Concurrency {
			o, h := cc.Levels[workload.ColdOurs][c], cc.Levels[workload.ColdByHand][c]
			p("| cold path at %d goroutines: first requests of %d new threads per path, reference server on 127.0.0.1 | ours %.0f threads/s, %.0f µs CPU/thread; by hand %.0f threads/s, %.0f µs CPU/thread |\n",
				c, o.Threads, o.PerSecond, float64(o.CPU)/float64(time.Microsecond), h.PerSecond, float64(h.CPU)/float64(time.Microsecond))
		}
	}
	p("| loopback: keep-alive http.Server on 127.0.0.1, %d client goroutines, %d rounds of %v per path | ", l.Concurrency, l.Rounds, l.Round)
	for i, name := range workload.LoopbackPaths {
		pr := l.Paths[name]
		if i > 0 {
			p("; ")
		}
		p("%s %.0f req/s", name, pr.RPS)
		if pr.CPU > 0 {
			p(" (%.1f µs CPU/request)", float64(pr.CPU)/float64(time.Microsecond))
		}
	}
	p(". bare: no credential; wire: the bare transport sending headers of our sizes, set in place; floor: the tight floor; ours: thread assertion |\n")
	p("%s", coldThreadRow(rep.ColdThread))
	return b.String()
}

// coldThreadRow is the cold-thread line of the stampede, memory and
// loopback table.
func coldThreadRow(c workload.ColdThreadResult) string {
	if c.Skipped {
		return "| cold thread: first request of a new thread key, in memory and with the Redis store | skipped: " + c.SkipReason + " |\n"
	}
	origin := "given"
	if c.RedisStarted {
		origin = "started by the report"
	}
	return fmt.Sprintf("| cold thread: first request of each of %d new thread keys per path, one at a time, %d rounds of alternating order, reference server on 127.0.0.1; Redis %s (%s) | in memory: median %v, mean %v; with the Redis store: median %v, mean %v; added %s per new thread, %.2f× by median (%.2f× by mean); registrations %d (%d keys once) in memory, %d (%d keys once) with Redis; store: %d registrations, %d local fallbacks, %d errors |\n",
		c.Keys, c.Rounds, c.RedisAddr, origin,
		roundDur(c.InMemory.Median), roundDur(c.InMemory.Mean), roundDur(c.Redis.Median), roundDur(c.Redis.Mean),
		signedDur(c.Added()), c.Ratio(), float64(c.Redis.Mean)/float64(c.InMemory.Mean),
		c.InMemory.Registrations, c.InMemory.OnceRegistered, c.Redis.Registrations, c.Redis.OnceRegistered,
		c.Store.Registrations, c.Store.LocalFallbacks, c.Store.Errors)
}

// chartRef is how the Markdown links the chart: by the path it was written
// to, which is relative to the directory the command ran in, where the
// README that embeds the table lives (bench/README.md for the documented
// command).
func chartRef(path string) string {
	return filepath.ToSlash(path)
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

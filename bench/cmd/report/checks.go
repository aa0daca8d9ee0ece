package main

import (
	"fmt"
	"math"
	"strings"

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

// verdict is the result column of a check.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// checks evaluates every target against rep.
func checks(rep *report) []check {
	var out []check
	out = append(out, cachedModeChecks(rep)...)
	out = append(out, loadShapeChecks(rep)...)
	out = append(out, coldPathChecks(rep)...)
	out = append(out, throughputChecks(rep)...)
	return out
}

// worst is the largest ratio seen so far and what it was measured on.
type worst struct {
	v    float64
	what string
}

// cachedWorsts are the worst ratios of the cached modes to their
// references (the tight floor and oauth2), by wall and CPU time, and of
// parallel time at -cpu 2 to -cpu 1.
type cachedWorsts struct {
	floorW, oauthW, scaleW, allocW, floorCPU, oauthCPU, scaleCPU worst
}

// cachedModeWorsts finds the worst ratios of every cached mode.
func cachedModeWorsts(rep *report) cachedWorsts {
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
	return cachedWorsts{floorW, oauthW, scaleW, allocW, floorCPU, oauthCPU, scaleCPU}
}

// cachedModeChecks are targets 1 and the parallel scaling targets: the
// cached modes against the tight floor and oauth2, and from -cpu 1 to 2.
func cachedModeChecks(rep *report) []check {
	var out []check
	w := cachedModeWorsts(rep)
	floorW, oauthW, scaleW, allocW := w.floorW, w.oauthW, w.scaleW, w.allocW
	floorCPU, oauthCPU, scaleCPU := w.floorCPU, w.oauthCPU, w.scaleCPU
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
	return out
}

// loadShapeChecks are the read-path locks, the stampede, contention
// (target 2) and memory (target 3).
func loadShapeChecks(rep *report) []check {
	var out []check
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
	return out
}

// coldPathChecks are target 4: the cold path, ours against by hand.
func coldPathChecks(rep *report) []check {
	var out []check
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
	return out
}

// throughputChecks are targets 5 to 7 and the cold thread with the Redis
// store: many threads, loopback, the observer.
func throughputChecks(rep *report) []check {
	var out []check
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

package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// StoreCompare is the store phase (issue 12): the same call-rate run with
// cluster.store off and embedded (NATS JetStream in callctl's process,
// every answered call's record written at answer and removed at its end),
// each on a fresh callctl.
type StoreCompare struct {
	Rate     float64   `json:"rate"`
	Off      *StoreRun `json:"off,omitempty"`
	Embedded *StoreRun `json:"embedded,omitempty"`
}

// StoreRun is one side of the comparison.
type StoreRun struct {
	Store string `json:"store"`
	RateRun
	// Writes is how much callctl_store_writes_total moved over the run,
	// by result (ok, failed, conflict), read until it stopped moving.
	Writes map[string]float64 `json:"store_writes,omitempty"`
	// WritesPerCall is every write (all results) over the calls placed.
	WritesPerCall float64 `json:"store_writes_per_call"`
}

const (
	storeDefaultRate = 1000 // the target's rate, when the rate phase did not run
	storeWritesName  = "callctl_store_writes_total"
)

// storePhase runs the call rate with the store off and on, at the rate the
// rate phase sustained (or -store-rate, or 1,000/s).
func (s *suite) storePhase() {
	rate := float64(storeDefaultRate)
	if run := s.rep.sustained(); run != nil && run.Passed {
		rate = run.Rate
	}
	if s.opt.storeRate > 0 {
		rate = s.opt.storeRate
	}
	sc := &StoreCompare{Rate: rate}
	s.rep.Store = sc
	for _, store := range []string{"off", "embedded"} {
		if s.left() < s.opt.storeRun+60*time.Second {
			s.note("store: no time left for the %s run", store)
			return
		}
		run := s.storeRun(store, rate)
		if run == nil {
			continue
		}
		if store == "off" {
			sc.Off = run
		} else {
			sc.Embedded = run
		}
		s.logf("store %s, %.0f/s for %v: %d calls, %d failed, setup p50 %.2f p99 %.2f ms, %.0f µs/call, %.2f store writes/call %v",
			store, rate, s.opt.storeRun, run.Calls, run.Failed, run.SetupP50Ms, run.SetupP99Ms, run.CPUPerCallUs, run.WritesPerCall, run.Writes)
	}
}

// storeRun is one call-rate run on a fresh callctl with cluster.store.
func (s *suite) storeRun(store string, rate float64) *StoreRun {
	c, err := s.startCallctlWith(phaseConfig{store: store})
	if err != nil {
		s.note("store %s: %v", store, err)
		return nil
	}
	defer c.stop()
	before, err := s.counters(storeWritesName)
	if err != nil {
		s.note("store %s: %v", store, err)
		return nil
	}
	run, _ := s.rateRun(c, rate, s.opt.storeRun, nil)
	sr := &StoreRun{Store: store, RateRun: run}
	// The writer applies records in the background: the last calls' ends
	// may still be on their way when the generator is done.
	after := s.settledCounters(storeWritesName, 5*time.Second)
	if after == nil {
		s.note("store %s: /metrics unreadable after the run", store)
		return sr
	}
	sr.Writes = map[string]float64{}
	total := 0.0
	for k, v := range counterDeltas(before, after) {
		sr.Writes[resultLabel(k)] = v
		total += v
	}
	if run.Calls > 0 {
		sr.WritesPerCall = round(total/float64(run.Calls), 2)
	}
	return sr
}

// settledCounters reads the counters of prefix every 250 ms until two
// reads agree (or limit passes) and returns the last; nil if none could
// be read.
func (s *suite) settledCounters(prefix string, limit time.Duration) map[string]float64 {
	end := time.Now().Add(limit)
	prev, _ := s.counters(prefix)
	for time.Now().Before(end) && s.ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		cur, err := s.counters(prefix)
		if err != nil {
			continue
		}
		if prev != nil && maps.Equal(prev, cur) {
			return cur
		}
		prev = cur
	}
	return prev
}

// resultLabel is the value of a sample key's result label
// (`callctl_store_writes_total{result="ok"}` gives ok), or the key.
func resultLabel(key string) string {
	if _, rest, ok := strings.Cut(key, `result="`); ok {
		if v, _, ok := strings.Cut(rest, `"`); ok {
			return v
		}
	}
	return key
}

// storeTargets compares the store phase with issue 12's goals.
func storeTargets(r *Report, add func(name, goal, reached string, met *bool, note string)) {
	sc := r.Store
	if sc == nil {
		return
	}
	on, off := sc.Embedded, sc.Off
	if on == nil {
		add("calls per second with the store on", "≥ 1,000/s, 0 failed, ≤ 1.2 ms CPU per call (cluster.store: embedded)", "not measured", nil, "")
		return
	}
	offNote := ""
	if off != nil {
		offNote = fmt.Sprintf("store off at the same rate: %d failed, set-up p99 %.2f ms, %.0f µs per call%s", off.Failed, off.SetupP99Ms, off.CPUPerCallUs, whyNotPassed(off))
	}
	add("calls per second with the store on", "≥ 1,000/s, 0 failed (cluster.store: embedded)",
		fmt.Sprintf("%.0f calls/s for %.0f s, %d of %d failed, set-up p99 %.2f ms%s", on.Rate, on.Seconds, on.Failed, on.Calls, on.SetupP99Ms, whyNotPassed(on)),
		ptr(on.Passed && on.Rate >= 1000 && on.Failed == 0), offNote)
	add("CPU per call with the store on", "≤ 1.2 ms", fmt.Sprintf("%.0f µs at %.0f calls/s", on.CPUPerCallUs, on.Rate),
		ptr(on.Passed && on.CPUPerCallUs > 0 && on.CPUPerCallUs <= 1200), offNote)
	add("JetStream writes per call", "reported (docs/cluster.md: two for a plain call, at answer and at the end)",
		fmt.Sprintf("%.2f (%s)", on.WritesPerCall, writesString(on.Writes)), nil, "")
}

// whyNotPassed says why a run with no failed call still did not pass
// (rateRun's rule), or nothing.
func whyNotPassed(run *StoreRun) string {
	switch {
	case run.Passed || run.Failed > 0:
		return ""
	case run.SetupP99Ms >= maxSetupP99Ms:
		return fmt.Sprintf(" (not passed: set-up p99 at or over %d ms, RFC 3261's T1: overloaded)", maxSetupP99Ms)
	}
	return " (not passed: the generator did not place every call on time)"
}

func writesString(w map[string]float64) string {
	if len(w) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, w[k]))
	}
	return strings.Join(parts, ", ")
}

// storeMarkdown is the report's section: both runs side by side.
func storeMarkdown(w func(string, ...any), r *Report) {
	sc := r.Store
	if sc == nil || (sc.Off == nil && sc.Embedded == nil) {
		return
	}
	w("\n## Live-call store on and off (issue 12)\n\n")
	w("The same call-rate run (calls without RTP, each held 1 s) at %.0f calls/s, each on a fresh callctl: `cluster.store: off` (nothing kept) and `embedded` (NATS JetStream in callctl's process, file store on local disk; each answered call's record written at answer and removed at its end, off the call's path). Writes are the movement of `callctl_store_writes_total` over the run.\n\n", sc.Rate)
	w("| | store off | store embedded |\n|---|---:|---:|\n")
	cell := func(run *StoreRun, f func(*StoreRun) string) string {
		if run == nil {
			return "–"
		}
		return f(run)
	}
	row := func(name string, f func(*StoreRun) string) {
		w("| %s | %s | %s |\n", name, cell(sc.Off, f), cell(sc.Embedded, f))
	}
	row("calls/s, seconds", func(x *StoreRun) string { return fmt.Sprintf("%.0f, %.0f s", x.Rate, x.Seconds) })
	row("calls (failed)", func(x *StoreRun) string { return fmt.Sprintf("%d (%d)", x.Calls, x.Failed) })
	row("set-up p50 / p99 / max", func(x *StoreRun) string {
		return fmt.Sprintf("%.2f / %.2f / %.0f ms", x.SetupP50Ms, x.SetupP99Ms, x.SetupMaxMs)
	})
	row("callctl CPU per call", func(x *StoreRun) string { return fmt.Sprintf("%.0f µs", x.CPUPerCallUs) })
	row("callctl cores", func(x *StoreRun) string { return fmt.Sprintf("%.2f", x.CPUCores) })
	row("RSS start → end", func(x *StoreRun) string {
		return fmt.Sprintf("%.0f → %.0f MiB", float64(x.RSSStartKiB)/1024, float64(x.RSSEndKiB)/1024)
	})
	row("JetStream writes per call", func(x *StoreRun) string {
		return fmt.Sprintf("%.2f (%s)", x.WritesPerCall, writesString(x.Writes))
	})
	row("kernel drops at callctl", func(x *StoreRun) string { return fmt.Sprintf("%d", x.KernelDrops) })
	row("passed", func(x *StoreRun) string { return fmt.Sprintf("%v", x.Passed) })
}

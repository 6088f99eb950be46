package main

import (
	"fmt"
	"time"
)

// Extensions is the extensions phase: the same call-rate run and RTP level
// as without, with RFC 3262 reliable provisionals (PRACK on both legs) and
// RFC 4028 session timers negotiated on both legs (issue 11).
type Extensions struct {
	// Rate is a call-rate run at the rate the rate phase sustained (or
	// extensionsDefaultRate when it did not run), extensionsRateRun long.
	Rate *RateRun `json:"rate,omitempty"`
	// Level is extensionsLevel calls with RTP both ways.
	Level *Level `json:"level,omitempty"`
}

const (
	extensionsDefaultRate = 500
	extensionsRateRun     = 30 * time.Second
	extensionsLevel       = 500
)

// extensionsPhase measures what 100rel and session timers cost: set-up
// has a PRACK round trip on each leg, and callctl keeps a session timer per
// leg.
func (s *suite) extensionsPhase() {
	ext := &Extensions{}
	s.rep.Extensions = ext
	s.extensions = true
	defer func() { s.extensions = false }()

	rate := float64(extensionsDefaultRate)
	if run := s.rep.sustained(); run != nil && run.Passed {
		rate = run.Rate
	}
	if s.left() < extensionsRateRun+90*time.Second {
		s.note("extensions: no time left for the call-rate run")
		return
	}
	c, err := s.startCallctl()
	if err != nil {
		s.note("extensions: %v", err)
		return
	}
	run, _ := s.rateRun(c, rate, extensionsRateRun, nil)
	c.stop()
	ext.Rate = &run
	s.logf("with 100rel and session timers, %.0f/s for %v: %d calls, %d failed, setup p50 %.2f p99 %.2f ms, %.0f µs/call",
		rate, extensionsRateRun, run.Calls, run.Failed, run.SetupP50Ms, run.SetupP99Ms, run.CPUPerCallUs)
	if e := run.Extensions; e == nil || e.CallerPRACKs < run.Calls-run.Failed || e.CalleePRACKed < run.Calls-run.Failed {
		s.note("extensions: not every call negotiated 100rel on both legs: %+v of %d calls", e, run.Calls)
	}

	if s.left() < s.opt.window+90*time.Second {
		s.note("extensions: no time left for the %d-call level", extensionsLevel)
		return
	}
	lvl, ok := s.level(extensionsLevel)
	if base := s.rep.level(extensionsLevel); base != nil {
		lvl.BaseP50Us, lvl.BaseP99Us = base.BaseP50Us, base.BaseP99Us
	}
	ext.Level = &lvl
	if ok {
		s.logf("with 100rel and session timers, %d calls: %.0f pkt/s, loss %.4f%%, latency p99 %.0f µs, callctl %.2f µs/packet",
			lvl.Calls, lvl.PacketsPerS, lvl.LossPct, lvl.LatencyP99Us, lvl.CPUPerPacketUs)
	}
}

// extensionsTargets: CPU per call stays within the call target with the
// extensions negotiated.
func extensionsTargets(r *Report, add func(name, goal, reached string, met *bool, note string)) {
	e := r.Extensions
	if e == nil || e.Rate == nil {
		return
	}
	run := e.Rate
	add("CPU per call with 100rel and session timers", "≤ 1 ms (both legs negotiate both)",
		fmt.Sprintf("%.0f µs at %.0f calls/s, %d of %d calls failed", run.CPUPerCallUs, run.Rate, run.Failed, run.Calls),
		ptr(run.Passed && run.CPUPerCallUs <= 1000), "")
}

// extensionsMarkdown is the report's section: each figure beside the same
// run without the extensions.
func extensionsMarkdown(w func(string, ...any), r *Report) {
	e := r.Extensions
	if e == nil || (e.Rate == nil && e.Level == nil) {
		return
	}
	w("\n## With 100rel and session timers on both legs\n\n")
	w("The caller requires 100rel and asks for a session timer (as Asterisk with `100rel=required` and `session-timers=originate`); the callee side sends its 180 reliably, waits for callctl's PRACK and answers with a timer. Beside each figure the same run without them.\n\n")
	w("| run | with 100rel + timers | without |\n|---|---:|---:|\n")
	if run := e.Rate; run != nil {
		base := r.sustained()
		b := func(f func(*RateRun) string) string {
			if base == nil {
				return "–"
			}
			return f(base)
		}
		w("| calls/s, %.0f s (failed) | %.0f (%d) | %s |\n", run.Seconds, run.Rate, run.Failed, b(func(x *RateRun) string { return fmt.Sprintf("%.0f (%d), %.0f s", x.Rate, x.Failed, x.Seconds) }))
		w("| set-up p50 / p99 | %.2f / %.2f ms | %s |\n", run.SetupP50Ms, run.SetupP99Ms, b(func(x *RateRun) string { return fmt.Sprintf("%.2f / %.2f ms", x.SetupP50Ms, x.SetupP99Ms) }))
		w("| callctl CPU per call | %.0f µs | %s |\n", run.CPUPerCallUs, b(func(x *RateRun) string { return fmt.Sprintf("%.0f µs", x.CPUPerCallUs) }))
		if x := run.Extensions; x != nil {
			w("| negotiated (of %d calls) | caller PRACKed %d, timer in %d answers; callee PRACKed %d, asked for a timer %d | |\n",
				run.Calls, x.CallerPRACKs, x.CallerTimers, x.CalleePRACKed, x.CalleeTimerAsked)
		}
	}
	if l := e.Level; l != nil {
		base := r.level(l.Calls)
		b := func(f func(*Level) string) string {
			if base == nil {
				return "–"
			}
			return f(base)
		}
		w("| %d calls with RTP: CPU per relayed packet | %.2f µs | %s |\n", l.Calls, l.CPUPerPacketUs, b(func(x *Level) string { return fmt.Sprintf("%.2f µs", x.CPUPerPacketUs) }))
		w("| %d calls: loss | %.4f%% | %s |\n", l.Calls, l.LossPct, b(func(x *Level) string { return fmt.Sprintf("%.4f%%", x.LossPct) }))
		w("| %d calls: latency p50 / p99 | %.0f / %.0f µs | %s |\n", l.Calls, l.LatencyP50Us, l.LatencyP99Us, b(func(x *Level) string { return fmt.Sprintf("%.0f / %.0f µs", x.LatencyP50Us, x.LatencyP99Us) }))
	}
}

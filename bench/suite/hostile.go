package main

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/callctl/callctl/internal/loadgen"
)

// The hostile phase's addresses: the live calls (both PBX sides) stay on
// the suite's 127.0.0.1, the flood comes from another loopback address,
// which plays another host.
const (
	liveAddr  = "127.0.0.1"
	floodAddr = "127.0.0.5"
)

// hostileCase is one run of the hostile phase.
type hostileCase struct {
	name  string
	flood bool
	allow []string // sip.allow of the run
}

var hostileCases = []hostileCase{
	{name: "no flood", allow: []string{liveAddr + "/32", floodAddr + "/32"}},
	{name: "flood from an allowed source", flood: true, allow: []string{liveAddr + "/32", floodAddr + "/32"}},
	{name: "flood from a refused source", flood: true, allow: []string{liveAddr + "/32"}},
}

// hostile runs the live calls three times, each on a fresh callctl with
// its flood protection at the defaults: without a flood, with a flood from
// a source on sip.allow, and with the same flood from a source outside
// it. What each figure means: bench/README.md, "Under attack".
func (s *suite) hostile() {
	h := &Hostile{Calls: s.opt.hostileCalls, WindowS: s.opt.hostileWindow.Seconds(), LingerS: hostileLinger.Seconds(),
		FloodSource: floodAddr, FloodRate: s.opt.floodRate, GarbageRate: s.opt.garbageRate, Garbage: s.opt.garbage}
	s.rep.Hostile = h
	h.AloneP99Us = s.aloneP99(h.Calls)
	for _, hc := range hostileCases {
		if s.ctx.Err() != nil {
			return
		}
		if s.left() < s.opt.hostileWindow+45*time.Second {
			s.note("hostile: %q skipped to keep the suite within its time", hc.name)
			continue
		}
		run := s.hostileRun(hc)
		if run.LatencyP99Us > 0 && h.AloneP99Us > 0 {
			run.AddedP99Us = round(run.LatencyP99Us-h.AloneP99Us, 0)
		}
		h.Runs = append(h.Runs, run)
		shed := ""
		if f := run.Flood; f != nil {
			shed = fmt.Sprintf("; flood %d INVITEs, %d answered, %d datagrams back (reflection %.2f)", f.InvitesSent, f.InvitesAnswered, f.DatagramsReceived, f.Reflection)
		}
		s.logf("hostile %s: %d of %d calls failed, loss %.4f%%, p99 %.0f µs, callctl %.2f cores, RSS %d → peak %d KiB, logs %.0f B/s%s%s",
			hc.name, run.CallsFailed, h.Calls, run.LossPct, run.LatencyP99Us, run.CPUCores, run.RSSStartKiB, run.RSSPeakKiB, run.LogBytesPerS, shed, run.Crashed)
	}
}

// hostileLinger is how long the window goes on after the flood's last
// datagram: callctl's retransmitted answers still count, and so does what
// it spends on the flood's leftovers.
const hostileLinger = 3 * time.Second

// aloneP99 is the generator's own p99 latency at n calls: the concurrency
// phase's baseline if it measured that level, else a short loopback run.
func (s *suite) aloneP99(n int) float64 {
	if l := s.rep.level(n); l != nil && l.BaseP99Us > 0 {
		return l.BaseP99Us
	}
	window := 8 * time.Second
	cfg := loadgen.Config{Loopback: true, UASListen: liveAddr + ":0", Calls: n, Rate: 500, Hold: window + 2*time.Second}
	var p99 float64
	_, err := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
		if !waitAnswered(s.ctx, g, uint64(n), 5*time.Second) {
			return
		}
		time.Sleep(500 * time.Millisecond)
		h1 := g.Latency()
		sleepCtx(s.ctx, window)
		p99 = g.Latency().Since(h1).Summarize(time.Microsecond).P99
	})
	if err != nil {
		s.note("hostile: the generator alone: %v", err)
	}
	return p99
}

// hostileRun holds the live calls with RTP on a fresh callctl and
// measures a window of hostileWindow plus hostileLinger, flooded or not.
func (s *suite) hostileRun(hc hostileCase) HostileRun {
	run := HostileRun{Name: hc.name, Allow: hc.allow}
	c, err := s.startCallctlWith(phaseConfig{allow: hc.allow, hostile: true})
	if err != nil {
		run.Crashed = err.Error()
		return run
	}
	defer c.stop()
	n := s.opt.hostileCalls
	rate := 200.0
	ramp := time.Duration(float64(n) / rate * float64(time.Second))
	window := s.opt.hostileWindow + hostileLinger
	cfg := s.baseConfig()
	cfg.Calls, cfg.Rate, cfg.Concurrency, cfg.RTP = n, rate, n, true
	cfg.Hold = ramp + window + 4*time.Second
	var m1 map[string]float64
	r, err := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
		if !waitAnswered(s.ctx, g, uint64(n), ramp+15*time.Second) {
			s.note("hostile %s: only %d of %d calls were answered; no window", hc.name, g.Progress().Answered, n)
			return
		}
		time.Sleep(time.Second)
		st1, h1, log1, t1 := c.stat(), g.Latency(), fileSize(c.log), time.Now()
		m1, _ = s.sipCounters()
		if hc.flood {
			fr, err := loadgen.Flood(s.ctx, loadgen.FloodConfig{Target: s.p.sip, Source: floodAddr, Rate: s.opt.floodRate,
				GarbageRate: s.opt.garbageRate, Garbage: s.opt.garbage, Duration: s.opt.hostileWindow, Linger: hostileLinger})
			if fr == nil {
				s.note("hostile %s: flood: %v", hc.name, err)
			}
			run.Flood = fr
		} else {
			sleepCtx(s.ctx, window)
		}
		st2, h2, log2, t2 := c.stat(), g.Latency(), fileSize(c.log), time.Now()
		secs := t2.Sub(t1).Seconds()
		lat := h2.Since(h1).Summarize(time.Microsecond)
		run.WindowS = round(secs, 1)
		run.LatencyP50Us, run.LatencyP99Us, run.LatencyP999Us, run.LatencyMaxUs = lat.P50, lat.P99, lat.P999, lat.Max
		run.CPUCores = round(float64(st2.CPU()-st1.CPU())/float64(t2.Sub(t1)), 3)
		run.RSSStartKiB, run.RSSEndKiB = st1.RSSKiB, st2.RSSKiB
		run.RSSPeakKiB = max(st2.HWMKiB, st2.RSSKiB)
		if st2.RSSKiB == 0 { // callctl is gone: its last figures are unknown
			run.RSSPeakKiB = 0
		}
		run.RSSGrowthKiB = int64(run.RSSPeakKiB) - int64(st1.RSSKiB)
		run.LogBytes = uint64(max(0, log2-log1))
		run.LogBytesPerS = round(float64(run.LogBytes)/secs, 0)
		run.KernelDrops, _ = loadgen.UDPDropsOfProcess(c.pid)
		if m2, err := s.sipCounters(); err == nil && m1 != nil {
			run.SIPCounters = counterDeltas(m1, m2)
		}
	})
	select {
	case <-c.done:
		run.Crashed = fmt.Sprintf("callctl exited during the run (%v)%s", c.err, panicLine(c.log))
	default:
	}
	if r == nil {
		s.note("hostile %s: %v", hc.name, err)
		return run
	}
	run.CallsFailed = r.Calls.Attempted - r.Calls.OK
	if r.Calls.Attempted < uint64(n) {
		run.CallsFailed = uint64(n) - r.Calls.OK
	}
	run.FailedBy = r.Calls.FailedBy
	run.Sent, run.Lost, run.LossPct = r.RTP.Sent, r.RTP.Lost, round(r.RTP.LossPct, 5)
	return run
}

// fileSize is the size of a file now, 0 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// panicLine is the first line of a Go panic in callctl's log, if any,
// for the report to say why callctl died.
func panicLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
			return ": " + line
		}
	}
	return ""
}

// sipCounters reads callctl's /metrics and returns every sample of a
// family named callctl_sip_* (callctl_sip_refused_total, the responses
// by code, and whatever counters of dropped or limited traffic the build
// has: the suite reads what exists), keyed by name and labels.
func (s *suite) sipCounters() (map[string]float64, error) { return s.counters("callctl_sip_") }

// counters reads callctl's /metrics (with the admin token) and returns
// every sample of the families whose name starts with prefix, keyed by
// name and labels.
func (s *suite) counters(prefix string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, "http://"+s.p.api+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("/metrics: %w", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Untyped != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out, nil
}

// counterDeltas is after − before for every sample that moved.
func counterDeltas(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if dv := v - before[k]; dv != 0 {
			d[k] = dv
		}
	}
	return d
}

// hostileTargets compares the flooded runs with issue 10's goals.
func hostileTargets(h *Hostile, add func(name, goal, reached string, met *bool, note string)) {
	for _, run := range h.Runs {
		if run.Flood == nil && run.Crashed == "" {
			continue // the comparison, not a target
		}
		name := "under attack (" + strings.TrimPrefix(run.Name, "flood from ") + ")"
		if run.Crashed != "" {
			add(name, "callctl and every live call go on", run.Crashed, ptr(false), "")
			continue
		}
		add(name+": live calls failed", "0", fmt.Sprintf("%d of %d", run.CallsFailed, h.Calls), ptr(run.CallsFailed == 0), "")
		add(name+": loss", "< 0.01%", fmt.Sprintf("%.4f%% (%d of %d)", run.LossPct, run.Lost, run.Sent), ptr(run.Sent > 0 && run.LossPct < 0.01), "")
		add(name+": p99 added latency", "< 5 ms", fmt.Sprintf("%.0f µs (p99 %.0f µs through callctl, %.0f µs generator alone)", run.AddedP99Us, run.LatencyP99Us, h.AloneP99Us),
			ptr(run.LatencyP99Us > 0 && run.AddedP99Us < 5000), "")
		add(name+": RSS growth", "< 100 MiB", fmt.Sprintf("%.1f MiB (%d KiB → peak %d KiB)", float64(run.RSSGrowthKiB)/1024, run.RSSStartKiB, run.RSSPeakKiB),
			ptr(run.RSSPeakKiB > 0 && run.RSSGrowthKiB < 100<<10), "")
		add(name+": logs", "< 10 KiB/s", fmt.Sprintf("%.1f KiB/s", run.LogBytesPerS/1024), ptr(run.LogBytesPerS < 10<<10), "")
	}
}

// hostileMarkdown writes the hostile phase's table: one column per run.
func hostileMarkdown(w func(string, ...any), h *Hostile) {
	w("\n## Under attack (issue 10)\n\n")
	w("%d live calls with RTP both ways from %s (both PBX sides); each column a fresh callctl with its flood protection at the defaults. The flood: %.0f INVITE/s with fresh Call-IDs from %s, plus %.0f garbage datagrams/s (%s), for %.0f s; every figure is over that window and the %.0f s after it. Generator alone p99: %.0f µs.\n\n",
		h.Calls, liveAddr, h.FloodRate, h.FloodSource, h.GarbageRate, strings.Join(h.Garbage, ", "), h.WindowS, h.LingerS, h.AloneP99Us)
	if len(h.Runs) == 0 {
		w("No run measured.\n")
		return
	}
	w("| |")
	for _, r := range h.Runs {
		w(" %s (sip.allow %s) |", r.Name, strings.Join(r.Allow, ", "))
	}
	w("\n|---|")
	for range h.Runs {
		w("---:|")
	}
	w("\n")
	row := func(label string, f func(r HostileRun) string) {
		w("| %s |", label)
		for _, r := range h.Runs {
			w(" %s |", f(r))
		}
		w("\n")
	}
	row("callctl", func(r HostileRun) string {
		if r.Crashed != "" {
			return "**" + r.Crashed + "**"
		}
		return "ran throughout"
	})
	row("live calls failed", func(r HostileRun) string {
		if len(r.FailedBy) > 0 {
			return fmt.Sprintf("%d (%v)", r.CallsFailed, r.FailedBy)
		}
		return fmt.Sprint(r.CallsFailed)
	})
	row("RTP loss (lost/sent)", func(r HostileRun) string { return fmt.Sprintf("%.4f%% (%d/%d)", r.LossPct, r.Lost, r.Sent) })
	row("latency p50 / p99 / p99.9 / max", func(r HostileRun) string {
		return fmt.Sprintf("%.0f / %.0f / %.0f / %.0f µs", r.LatencyP50Us, r.LatencyP99Us, r.LatencyP999Us, r.LatencyMaxUs)
	})
	row("p99 added latency", func(r HostileRun) string { return fmt.Sprintf("%.0f µs", r.AddedP99Us) })
	row("callctl CPU", func(r HostileRun) string { return fmt.Sprintf("%.2f cores", r.CPUCores) })
	row("callctl RSS start → peak (growth)", func(r HostileRun) string {
		return fmt.Sprintf("%d → %d KiB (%+.1f MiB)", r.RSSStartKiB, r.RSSPeakKiB, float64(r.RSSGrowthKiB)/1024)
	})
	row("log bytes per second", func(r HostileRun) string { return fmt.Sprintf("%.0f B/s (%d B)", r.LogBytesPerS, r.LogBytes) })
	row("kernel drops at callctl", func(r HostileRun) string { return fmt.Sprint(r.KernelDrops) })
	flood := func(f func(fr *loadgen.FloodResult) string) func(HostileRun) string {
		return func(r HostileRun) string {
			if r.Flood == nil {
				return "–"
			}
			return f(r.Flood)
		}
	}
	row("flood sent", flood(func(f *loadgen.FloodResult) string {
		var g uint64
		for _, v := range f.GarbageSent {
			g += v
		}
		return fmt.Sprintf("%d INVITEs + %d garbage", f.InvitesSent, g)
	}))
	row("flood INVITEs answered (shed)", flood(func(f *loadgen.FloodResult) string {
		return fmt.Sprintf("%d, %.2f%% (%.2f%% shed)", f.InvitesAnswered, f.AnsweredPct, 100-f.AnsweredPct)
	}))
	row("answers to the flood by status", flood(func(f *loadgen.FloodResult) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(f.Responses)) {
			parts = append(parts, fmt.Sprintf("%s × %d", k, f.Responses[k]))
		}
		for _, k := range slices.Sorted(maps.Keys(f.Requests)) {
			parts = append(parts, fmt.Sprintf("%s × %d", k, f.Requests[k]))
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, ", ")
	}))
	row("reflection (datagrams back per datagram sent)", flood(func(f *loadgen.FloodResult) string {
		return fmt.Sprintf("%.3f (%d back)", f.Reflection, f.DatagramsReceived)
	}))
	row("callctl's SIP counters (change)", func(r HostileRun) string {
		if len(r.SIPCounters) == 0 {
			return "–"
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.SIPCounters)) {
			parts = append(parts, fmt.Sprintf("%s %+.0f", strings.ReplaceAll(k, `"`, ""), r.SIPCounters[k]))
		}
		return strings.Join(parts, "<br>")
	})
}

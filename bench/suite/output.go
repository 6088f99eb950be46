package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

func ptr(b bool) *bool { return &b }

// level finds the concurrency level of n calls.
func (r *Report) level(n int) *Level {
	for i := range r.Concurrency {
		if r.Concurrency[i].Calls == n {
			return &r.Concurrency[i]
		}
	}
	return nil
}

func (r *Report) micro(name string) *MicroResult {
	for i := range r.Micro {
		if r.Micro[i].Name == name {
			return &r.Micro[i]
		}
	}
	return nil
}

// sustained is the passing 60 s run, else the first one.
func (r *Report) sustained() *RateRun {
	if r.CallRate == nil {
		return nil
	}
	if r.CallRate.Retry != nil && r.CallRate.Retry.Passed {
		return r.CallRate.Retry
	}
	return r.CallRate.Sustained
}

// withinSetup is the highest passing 60 s run with set-up p99 under 20 ms.
func (r *Report) withinSetup() *RateRun {
	if r.CallRate == nil {
		return nil
	}
	for _, run := range []*RateRun{r.CallRate.Sustained, r.CallRate.Retry, r.CallRate.WithinSetup} {
		if run != nil && run.Passed && run.SetupP99Ms < 20 {
			return run
		}
	}
	return nil
}

// targets compares the run with issue 6's goals, issue 10's (the
// hostile phase, the RSS soak) and issue 12's (the store, recovery).
func targets(r *Report) []Target {
	var ts []Target
	add := func(name, goal, reached string, met *bool, note string) {
		ts = append(ts, Target{Name: name, Goal: goal, Reached: reached, Met: met, Note: note})
	}
	for _, n := range []int{500, 1000} {
		l := r.level(n)
		name := fmt.Sprintf("relay at %d calls", n)
		if l == nil {
			add(name, "≤ 5 µs CPU per relayed packet, loss < 0.01%, p99 added latency < 1 ms", "not reached", nil,
				"the ramp stopped below this level (see concurrency)")
			continue
		}
		added := l.LatencyP99Us - l.BaseP99Us
		add(name+": CPU per packet", "≤ 5 µs", fmt.Sprintf("%.2f µs", l.CPUPerPacketUs), ptr(l.CPUPerPacketUs > 0 && l.CPUPerPacketUs <= 5), "")
		add(name+": loss", "< 0.01%", fmt.Sprintf("%.4f%% (%d of %d)", l.LossPct, l.Lost, l.Sent), ptr(l.LossPct < 0.01 && l.Sent > 0), "")
		add(name+": p99 added latency", "< 1 ms", fmt.Sprintf("%.0f µs (p99 %.0f µs through callctl, %.0f µs generator alone)", added, l.LatencyP99Us, l.BaseP99Us),
			ptr(l.LatencyP99Us > 0 && added < 1000), "")
	}
	if run := r.sustained(); run != nil {
		add("CPU per call", "≤ 1 ms (both legs, set-up to tear-down)", fmt.Sprintf("%.0f µs at %.0f calls/s", run.CPUPerCallUs, run.Rate), ptr(run.Passed && run.CPUPerCallUs <= 1000), "")
		add("calls per second", "≥ 1,000 for 60 s, none failed", fmt.Sprintf("%.0f calls/s for %.0f s, %d failed", run.Rate, run.Seconds, run.Failed),
			ptr(run.Passed && run.Rate >= 1000 && run.Seconds >= 60), "")
		add("set-up time", "p99 < 20 ms at that rate", fmt.Sprintf("p50 %.2f ms, p99 %.2f ms at %.0f calls/s (%d datagrams dropped at callctl's SIP socket)", run.SetupP50Ms, run.SetupP99Ms, run.Rate, run.KernelDrops),
			ptr(run.Passed && run.SetupP99Ms < 20), "")
		if w := r.withinSetup(); w != nil && w != run {
			add("calls per second within the set-up target", "≥ 1,000 for 60 s, none failed, set-up p99 < 20 ms",
				fmt.Sprintf("%.0f calls/s (set-up p50 %.2f ms, p99 %.2f ms, %.0f µs of CPU per call)", w.Rate, w.SetupP50Ms, w.SetupP99Ms, w.CPUPerCallUs), ptr(w.Rate >= 1000), "")
		}
	} else {
		add("calls per second", "≥ 1,000 for 60 s, none failed", "not measured", nil, "")
	}
	var top *Level
	for i := range r.Concurrency {
		if l := &r.Concurrency[i]; l.RSSPerCallKiB > 0 && l.LossPct < 0.01 {
			top = l
		}
	}
	if top != nil {
		add("RSS per call", "≤ 32 KiB at steady state", fmt.Sprintf("%.1f KiB at %d calls", top.RSSPerCallKiB, top.Calls), ptr(top.RSSPerCallKiB <= 32), "")
	}
	extensionsTargets(r, add)
	storeTargets(r, add)
	recoveryTargets(r, add)
	if r.Hostile != nil {
		hostileTargets(r.Hostile, add)
	}
	if r.RSSSoak != nil {
		soakTargets(r.RSSSoak, add)
	}
	if cr := r.CallRate; r.RSSSoak == nil && cr != nil && cr.Soak != nil && len(cr.Soak.RSSSamples) > 2 {
		first, last := cr.Soak.RSSSamples[0], cr.Soak.RSSSamples[len(cr.Soak.RSSSamples)-1]
		reached := fmt.Sprintf("RSS %d KiB at the start, %d KiB after %d calls", first.RSSKiB, last.RSSKiB, last.Calls)
		if last.Calls >= 100000 {
			// Growth over the second half under 2% of the level is the Go
			// heap's breathing, not a leak.
			half := float64(last.Calls) / 2 / 10000
			add("RSS growth", "none over 100,000 calls", fmt.Sprintf("%s at %.0f calls/s; over the second half a level of %d KiB, %+.0f KiB per 10,000 calls",
				reached, cr.Soak.Rate, cr.Soak.PlateauKiB, cr.Soak.GrowthKiBPer10k),
				ptr(cr.Soak.GrowthKiBPer10k*half < 0.02*float64(cr.Soak.PlateauKiB)),
				"RSS rises while recently ended calls accumulate (completed SIP transactions are kept 32 s, ended sessions calls.ended_retention), then stays level: the level grows with the call rate")
		} else {
			add("RSS growth", "none over 100,000 calls", reached, nil, "fewer than 100,000 calls fitted in the time (the sustained rate was too low)")
		}
	}
	if l := r.Listeners; l != nil {
		switch {
		case l.Skipped != "":
			add("WebRTC listeners", "200 concurrent, no transcoding, CPU per forwarded packet", "skipped", nil, l.Skipped)
		default:
			add("WebRTC listeners", "200 concurrent, no transcoding, CPU per forwarded packet",
				fmt.Sprintf("%d listeners, %.0f packets/s forwarded, %.2f µs per forwarded packet", l.Started, l.PacketsPerS, l.CPUPerForwardedUs),
				ptr(int(l.Started) >= l.Requested && l.Requested >= 200 && l.PacketsPerS > 0), "")
		}
	}
	relay := []string{"RelayReceiveRTP", "RelayRTPLoopback"}
	var relayAllocs []string
	relayOK := true
	for _, n := range relay {
		if m := r.micro(n); m != nil {
			relayAllocs = append(relayAllocs, fmt.Sprintf("%s %.0f", n, m.AllocsPerOp))
			relayOK = relayOK && m.AllocsPerOp == 0
		}
	}
	if len(relayAllocs) > 0 {
		add("allocations per relayed packet", "0", strings.Join(relayAllocs, ", "), ptr(relayOK), "")
	}
	var dtmfAllocs []string
	dtmfOK := true
	if m := r.micro("DTMFPacketToEndpoint"); m != nil {
		dtmfAllocs = append(dtmfAllocs, fmt.Sprintf("Endpoint.WriteRTP path %.0f", m.AllocsPerOp))
		dtmfOK = dtmfOK && m.AllocsPerOp == 0
	}
	if m := r.micro("SendPacket"); m != nil {
		dtmfAllocs = append(dtmfAllocs, fmt.Sprintf("dtmf.Send's packet %.0f", m.AllocsPerOp))
		dtmfOK = dtmfOK && m.AllocsPerOp == 0
	}
	if m := r.micro("DTMFSendPerPacket"); m != nil {
		// What a whole Send allocates once (its plan, its pacing ticker),
		// shared by its packets: shown, not a per-packet cost.
		dtmfAllocs = append(dtmfAllocs, fmt.Sprintf("(a whole dtmf.Send: %.0f per call, %.2f per packet)", m.AllocsPerOp, m.Extra["allocs/packet"]))
	}
	if m := r.micro("DetectorFeed"); m != nil {
		dtmfAllocs = append(dtmfAllocs, fmt.Sprintf("detector %.0f", m.AllocsPerOp))
		dtmfOK = dtmfOK && m.AllocsPerOp == 0
	}
	if len(dtmfAllocs) > 0 {
		add("allocations per DTMF packet", "0", strings.Join(dtmfAllocs, ", "), ptr(dtmfOK), "")
	}
	return ts
}

// rerender reads a report and writes it again, for a change of format.
func rerender(path, dir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r.Targets = targets(&r)
	return writeResults(dir, &r)
}

func writeResults(dir string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.svg"), []byte(chart(r)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "latest.md"), []byte(markdown(r)), 0o644)
}

func yes(m *bool) string {
	switch {
	case m == nil:
		return "–"
	case *m:
		return "**met**"
	}
	return "**not met**"
}

func markdown(r *Report) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	w("# callctl benchmark results\n\n")
	w("Generated by `make bench` (bench/suite) on %s in %.0f s. What each figure means and how it is measured: [../README.md](../README.md).\n\n", r.Generated, r.DurationS)
	w("**Machine:** %d cores, %s, %d MiB, Linux %s, %s", m.Cores, m.CPUModel, m.MemTotalMiB, m.Kernel, m.Go)
	if m.Commit != "" {
		w(", commit %s", m.Commit)
	}
	w(". Load average %s at the start, %s at the end. The generator runs on the same machine.\n\n", m.LoadStart, m.LoadEnd)

	w("## Targets (issues 6, 10 and 12)\n\n| target | goal | reached | |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		reached := t.Reached
		if t.Note != "" {
			reached += " — " + t.Note
		}
		w("| %s | %s | %s | %s |\n", t.Name, t.Goal, reached, yes(t.Met))
	}

	if len(r.Concurrency) > 0 {
		w("\n## Concurrent calls with RTP both ways (PCMU, 20 ms)\n\n")
		w("Steady window of %.0f s per level, after every call was answered. Latency is one-way, generator to generator through callctl; *alone* is the generator's own path with no callctl (loopback mode). CPU and RSS are callctl's, from /proc.\n\n", r.Concurrency[0].WindowS)
		w("| calls | relayed pkt/s | loss (lost/sent; at call start) | latency p50 / p99 / p99.9 | alone p50 / p99 | callctl CPU per packet | callctl cores | RSS per call | kernel drops at callctl | generator µs per packet |\n")
		w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, l := range r.Concurrency {
			w("| %d | %.0f | %.4f%% (%d/%d; %d) | %.0f / %.0f / %.0f µs | %.0f / %.0f µs | %.2f µs | %.2f | %.1f KiB | %d | %.2f |\n",
				l.Calls, l.PacketsPerS, l.LossPct, l.Lost, l.Sent, l.LostAtStart, l.LatencyP50Us, l.LatencyP99Us, l.LatencyP999Us,
				l.BaseP50Us, l.BaseP99Us, l.CPUPerPacketUs, l.CPUCores, l.RSSPerCallKiB, l.KernelDrops, l.GenCPUPerPacket)
		}
		w("\nMost concurrent calls with loss under 0.01%%: **%d**.\n\n![latency and CPU against concurrency](latest.svg)\n", r.MaxCalls)
	}
	if s := r.SIPp; s != nil {
		w("\n## The same through SIPp (`sipp -sn uas -rtp_echo`), for comparison\n\n")
		if s.Skipped != "" {
			w("Skipped: %s.\n", s.Skipped)
		} else {
			w("| calls (one echoed stream each) | echoed pkt/s | loss (at call start) | kernel drops at SIPp | latency p50 / p99 (there and back) | SIPp CPU per packet |\n|---:|---:|---:|---:|---:|---:|\n")
			w("| %d | %.0f | %.4f%% (%d) | %d | %.0f / %.0f µs | %.2f µs |\n", s.Calls, s.PacketsPerS, s.LossPct, s.LostAtStart, s.KernelDrops, s.LatencyP50Us, s.LatencyP99Us, s.CPUPerPacketUs)
		}
	}
	if cr := r.CallRate; cr != nil {
		w("\n## Calls per second (signalling; no RTP, each call held %.0f s)\n\n", cr.HoldS)
		w("| rate | s | calls | failed | set-up p50 / p99 | SIP datagrams dropped at callctl | callctl CPU per call | callctl cores | generator CPU per call | |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		row := func(p RateProbe, kind string) {
			pass := "failed"
			if p.Passed {
				pass = "passed"
			}
			w("| %.0f/s | %.0f | %d | %d | %.2f / %.2f ms | %d | %.0f µs | %.2f | %.0f µs | %s %s |\n", p.Rate, p.Seconds, p.Calls, p.Failed,
				p.SetupP50Ms, p.SetupP99Ms, p.KernelDrops, p.CPUPerCallUs, p.CPUCores, p.GenCPUPerCall, kind, pass)
		}
		for _, p := range cr.Probes {
			row(p, "probe")
		}
		for _, run := range []*RateRun{cr.Sustained, cr.Retry, cr.WithinSetup} {
			if run != nil {
				row(run.RateProbe, "**60 s**")
			}
		}
		for _, run := range []*RateRun{cr.Sustained, cr.Retry, cr.WithinSetup} {
			if run != nil && len(run.FailedBy) > 0 {
				w("\nFailures at %.0f/s: %v\n", run.Rate, run.FailedBy)
			}
		}
		if s := cr.Soak; s != nil && len(s.RSSSamples) > 0 {
			w("\ncallctl RSS over the sustained run and its continuation (calls: KiB): ")
			step := max(1, len(s.RSSSamples)/12)
			var parts []string
			for i, p := range s.RSSSamples {
				if i%step == 0 || i == len(s.RSSSamples)-1 {
					parts = append(parts, fmt.Sprintf("%d: %d", p.Calls, p.RSSKiB))
				}
			}
			w("%s (at %.0f calls/s). Over the second half: level %d KiB, growth %+.0f KiB per 10,000 calls.\n", strings.Join(parts, ", "), s.Rate, s.PlateauKiB, s.GrowthKiBPer10k)
		}
	}
	extensionsMarkdown(w, r)
	storeMarkdown(w, r)
	recoveryMarkdown(w, r)
	if h := r.Hostile; h != nil {
		hostileMarkdown(w, h)
	}
	if sk := r.RSSSoak; sk != nil && len(sk.RSSSamples) > 0 {
		w("\n## RSS over %d calls at %.0f calls/s (no RTP, each held 1 s; one callctl)\n\n", sk.Calls, sk.Rate)
		var parts []string
		for _, p := range sk.RSSSamples {
			parts = append(parts, fmt.Sprintf("%d: %.0f", p.Calls, float64(p.RSSKiB)/1024))
		}
		w("RSS sampled every 5 s, and 11 s after the last call (calls: MiB): %s. Peak %.0f MiB (VmHWM); over the second half a level of %.0f MiB, %+.0f KiB per 10,000 calls. Target: levels off under 512 MiB.\n",
			strings.Join(parts, ", "), float64(sk.MaxKiB)/1024, float64(sk.PlateauKiB)/1024, sk.GrowthKiBPer10k)
	}
	if l := r.Listeners; l != nil {
		w("\n## WebRTC listeners (pion clients in the generator)\n\n")
		if l.Skipped != "" {
			w("Skipped: %s.\n", l.Skipped)
		} else {
			w("| calls | listeners | forwarded pkt/s | callctl cores | without listeners | CPU per forwarded packet | RSS per listener |\n|---:|---:|---:|---:|---:|---:|---:|\n")
			w("| %d | %d of %d | %.0f | %.2f | %.2f | %.2f µs | %.1f KiB |\n", l.Calls, l.Started, l.Requested, l.PacketsPerS, l.CPUCores, l.BaseCPUCores, l.CPUPerForwardedUs, l.RSSPerListenerKiB)
		}
	}
	if len(r.Micro) > 0 {
		w("\n## Go micro-benchmarks\n\n| package | benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---:|---:|---:|---|\n")
		for _, mb := range r.Micro {
			var extra []string
			for k, v := range mb.Extra {
				extra = append(extra, fmt.Sprintf("%.2f %s", v, k))
			}
			ns := fmt.Sprintf("%.1f", mb.NsPerOp)
			if _, ok := mb.Extra["allocs/packet"]; ok {
				ns = "(wall time)"
			}
			w("| %s | %s | %s | %.0f | %.0f | %s |\n", mb.Package, mb.Name, ns, mb.BytesPerOp, mb.AllocsPerOp, strings.Join(extra, ", "))
		}
	}
	for _, p := range r.Profiles {
		w("\n## CPU profile: %s\n\ncallctl in-process under the generator (`callctl-load -inproc -cpuprofile`), callctl's goroutines only (`-tagfocus side=callctl`; the scheduler's and GC's own work is not labelled and is left out). Profile: `%s`; from the repository's root, `go tool pprof -tagfocus side=callctl bin/callctl-load %s` explores it (with the binary of that run).\n\n```\n%s\n```\n", p.Scenario, p.File, p.File, p.Top)
	}
	if len(r.Notes) > 0 {
		w("\n## Notes from this run\n\n")
		for _, n := range r.Notes {
			w("- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
	return b.String()
}

// chart draws latency (p50, p99, the generator alone) and callctl's CPU
// per packet against concurrency: two panels, by hand.
func chart(r *Report) string {
	const W, H = 900, 380
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	w(`<text x="%d" y="20" text-anchor="middle" font-size="14">callctl: latency and CPU against concurrent calls (%d cores, %s)</text>`+"\n", W/2, r.Machine.Cores, xmlEscape(r.Machine.CPUModel))
	ls := r.Concurrency
	if len(ls) == 0 {
		w(`<text x="%d" y="%d" text-anchor="middle">no concurrency levels measured</text></svg>`+"\n", W/2, H/2)
		return b.String()
	}
	var xs []float64
	for _, l := range ls {
		xs = append(xs, float64(l.Calls))
	}
	get := func(f func(Level) float64) []float64 {
		var v []float64
		for _, l := range ls {
			v = append(v, f(l))
		}
		return v
	}
	panel(&b, 60, 40, 360, 280, "one-way latency (µs, log scale)", xs, true, []series{
		{"p99 through callctl", "#d62728", "", get(func(l Level) float64 { return l.LatencyP99Us })},
		{"p50 through callctl", "#1f77b4", "", get(func(l Level) float64 { return l.LatencyP50Us })},
		{"p99 generator alone", "#d62728", "5,4", get(func(l Level) float64 { return l.BaseP99Us })},
		{"p50 generator alone", "#1f77b4", "5,4", get(func(l Level) float64 { return l.BaseP50Us })},
	}, 1000)
	panel(&b, 510, 40, 360, 280, "callctl CPU per relayed packet (µs)", xs, false, []series{
		{"CPU per packet", "#2ca02c", "", get(func(l Level) float64 { return l.CPUPerPacketUs })},
	}, 5)
	w("</svg>\n")
	return b.String()
}

type series struct {
	name, color, dash string
	ys                []float64
}

// panel draws one chart at (x0, y0) of size w×h, its y axis linear from 0
// or, with logY, logarithmic over whole decades; target, if > 0, is drawn
// as a grey dashed line labelled "target".
func panel(b *strings.Builder, x0, y0, w, h float64, title string, xs []float64, logY bool, ss []series, target float64) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	xmax := 0.0
	for _, x := range xs {
		xmax = max(xmax, x)
	}
	ymax, ymin := target, math.Inf(1)
	for _, s := range ss {
		for _, y := range s.ys {
			ymax = max(ymax, y)
			if y > 0 {
				ymin = min(ymin, y)
			}
		}
	}
	xmax = niceCeil(xmax)
	sx := func(x float64) float64 { return x0 + x/xmax*w }
	var sy func(float64) float64
	var ticks []float64
	if logY {
		lo := math.Floor(math.Log10(min(ymin, max(target, 1))))
		hi := math.Ceil(math.Log10(max(ymax, 10)))
		if hi <= lo {
			hi = lo + 1
		}
		sy = func(y float64) float64 { return y0 + h - (math.Log10(max(y, 1e-9))-lo)/(hi-lo)*h }
		for e := lo; e <= hi; e++ {
			ticks = append(ticks, math.Pow(10, e))
		}
	} else {
		ymax = niceCeil(ymax * 1.1)
		sy = func(y float64) float64 { return y0 + h - y/ymax*h }
		for i := 0; i <= 5; i++ {
			ticks = append(ticks, ymax*float64(i)/5)
		}
	}
	p(`<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x0+w/2, y0-6, xmlEscape(title))
	p(`<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", x0, y0+h, x0+w, y0+h)
	p(`<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", x0, y0, x0, y0+h)
	for _, yv := range ticks {
		p(`<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, sy(yv), x0+w, sy(yv))
		p(`<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-4, sy(yv)+4, trimNum(yv))
	}
	for i := 0; i <= 5; i++ {
		xv := xmax * float64(i) / 5
		p(`<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", sx(xv), y0+h+16, trimNum(xv))
	}
	p(`<text x="%.0f" y="%.0f" text-anchor="middle">concurrent calls</text>`+"\n", x0+w/2, y0+h+34)
	if target > 0 {
		p(`<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#888" stroke-dasharray="2,3"/>`+"\n", x0, sy(target), x0+w, sy(target))
		p(`<text x="%.0f" y="%.1f" fill="#888">target %s</text>`+"\n", x0+6, sy(target)-3, trimNum(target))
	}
	for i, s := range ss {
		var pts []string
		for j, y := range s.ys {
			if y <= 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(xs[j]), sy(y)))
		}
		dash := ""
		if s.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, s.dash)
		}
		if len(pts) > 0 {
			p(`<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", s.color, dash, strings.Join(pts, " "))
			for _, pt := range pts {
				xy := strings.Split(pt, ",")
				p(`<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], s.color)
			}
		}
		ly := y0 + 14 + float64(i)*16
		p(`<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`+"\n", x0+10, ly-4, x0+34, ly-4, s.color, dash)
		p(`<text x="%.0f" y="%.0f">%s</text>`+"\n", x0+40, ly, xmlEscape(s.name))
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
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

func trimNum(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callctl/callctl/internal/loadgen"
)

// suite is one `make bench` run.
type suite struct {
	ctx      context.Context
	bin      string // bin/callctl
	loadBin  string // bin/callctl-load, for the in-process profiles
	goBin    string
	dir      string // scratch: configs, logs, audit databases
	out      string // bench/results
	p        ports
	starts   int
	deadline time.Time
	rep      *Report
	opt      options
	// extensions makes every generator run negotiate 100rel and session
	// timers (the extensions phase).
	extensions bool
}

func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func (s *suite) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.logf("%s", msg)
	s.rep.Notes = append(s.rep.Notes, msg)
}

// left is the time left before the suite's deadline.
func (s *suite) left() time.Duration { return time.Until(s.deadline) }

func (s *suite) startCallctl() (*callctlProc, error) { return s.startCallctlWith(phaseConfig{}) }

func (s *suite) startCallctlWith(pc phaseConfig) (*callctlProc, error) {
	s.starts++
	return startCallctl(s.bin, s.dir, s.p, s.starts, pc)
}

func cpuUs(a, b loadgen.ProcStat) float64 {
	return float64(b.CPU()-a.CPU()) / float64(time.Microsecond)
}

func selfStat() loadgen.ProcStat { st, _ := loadgen.ReadProcStat(0); return st }

// baseConfig is a generator run against the suite's callctl.
func (s *suite) baseConfig() loadgen.Config {
	return loadgen.Config{Target: s.p.sip, UASListen: s.p.uas, SetupTimeout: 10 * time.Second, Extensions: s.extensions}
}

// ---- calls per second ----

func (s *suite) callRate() {
	cr := &CallRate{HoldS: 1}
	s.rep.CallRate = cr
	c, err := s.startCallctl()
	if err != nil {
		s.note("call rate: %v", err)
		return
	}
	best := 0.0
	for _, rate := range s.opt.rates {
		if s.left() < s.opt.probe+4*time.Minute {
			s.note("call rate: probes stopped at %.0f/s to keep the suite within its time", rate)
			break
		}
		pr, _ := s.rateRun(c, rate, s.opt.probe, nil)
		cr.Probes = append(cr.Probes, pr.RateProbe)
		s.logf("call rate probe %.0f/s: %d calls, %d failed, setup p99 %.1f ms, callctl %.0f µs/call, %.2f cores",
			rate, pr.Calls, pr.Failed, pr.SetupP99Ms, pr.CPUPerCallUs, pr.CPUCores)
		if !pr.Passed {
			break
		}
		best = rate
		time.Sleep(1500 * time.Millisecond) // ports rest, ended sessions expire
	}
	c.stop()
	if best == 0 {
		return
	}
	// The highest rate that also kept set-up p99 under 20 ms, if lower.
	within := 0.0
	for _, p := range cr.Probes {
		if p.Passed && p.SetupP99Ms < 20 {
			within = p.Rate
		}
	}
	defer func() {
		if within == 0 || within >= best {
			return
		}
		for _, run := range []*RateRun{cr.Sustained, cr.Retry} {
			if run != nil && run.Passed && (run.SetupP99Ms < 20 || run.Rate <= within) {
				return // already measured
			}
		}
		if s.left() < s.opt.sustain+60*time.Second {
			s.note("call rate: no time left for the %v run at %.0f/s (set-up p99 under 20 ms in its probe)", s.opt.sustain, within)
			return
		}
		c, err := s.startCallctl()
		if err != nil {
			s.note("call rate: %v", err)
			return
		}
		defer c.stop()
		run, _ := s.rateRun(c, within, s.opt.sustain, nil)
		cr.WithinSetup = &run
		s.logf("sustained %.0f/s for %v: %d calls, %d failed, setup p50 %.2f p99 %.2f ms, %.0f µs/call",
			within, s.opt.sustain, run.Calls, run.Failed, run.SetupP50Ms, run.SetupP99Ms, run.CPUPerCallUs)
	}()
	for i, rate := range []float64{best, math.Round(best * 0.8)} {
		if s.left() < s.opt.sustain+2*time.Minute {
			s.note("call rate: no time left for the %v sustained run", s.opt.sustain)
			return
		}
		c, err := s.startCallctl()
		if err != nil {
			s.note("call rate: %v", err)
			return
		}
		soak := &Soak{}
		run, done := s.rateRun(c, rate, s.opt.sustain, soak)
		s.logf("sustained %.0f/s for %v: %d calls, %d failed, setup p50 %.2f p99 %.2f ms, %.0f µs/call, RSS %d → %d KiB",
			rate, s.opt.sustain, run.Calls, run.Failed, run.SetupP50Ms, run.SetupP99Ms, run.CPUPerCallUs, run.RSSStartKiB, run.RSSEndKiB)
		if i == 0 {
			cr.Sustained = &run
		} else {
			cr.Retry = &run
		}
		if run.Passed {
			if s.runs("soak") {
				// The soak phase measures RSS over 100,000 calls on its own
				// callctl: keep this run's samples only.
				soak.Rate, soak.Calls = rate, run.Calls
			} else {
				s.soak(c, rate, done, soak)
			}
			cr.Soak = soak
		}
		c.stop()
		if run.Passed {
			return
		}
	}
}

// maxSetupP99Ms is the set-up p99 above which callctl counts as
// overloaded: RFC 3261's T1, when lost datagrams are retransmitted.
const maxSetupP99Ms = 500

// rateRun places calls without RTP at rate for d against c. With soak
// set, it samples c's RSS every 5 s into it.
func (s *suite) rateRun(c *callctlProc, rate float64, d time.Duration, soak *Soak) (RateRun, uint64) {
	cfg := s.baseConfig()
	cfg.Rate, cfg.Duration, cfg.Hold = rate, d, time.Second
	cfg.SetupTimeout = 5 * time.Second
	before, gen0 := c.stat(), selfStat()
	drops0, _ := loadgen.UDPDropsOfProcess(c.pid)
	var run RateRun
	run.Rate, run.Seconds, run.RSSStartKiB = rate, d.Seconds(), before.RSSKiB
	var during func(*loadgen.Generator)
	if soak != nil {
		during = func(g *loadgen.Generator) {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				p := g.Progress()
				soak.RSSSamples = append(soak.RSSSamples, RSSAt{Calls: p.OK + p.Failed, RSSKiB: c.stat().RSSKiB})
				if p.Attempted > 0 && p.Active == 0 && p.OK+p.Failed == p.Attempted {
					return
				}
				select {
				case <-t.C:
				case <-s.ctx.Done():
					return
				}
			}
		}
	}
	r, err := runGenerator(s.ctx, cfg, during)
	after, gen1 := c.stat(), selfStat()
	drops1, _ := loadgen.UDPDropsOfProcess(c.pid)
	run.KernelDrops = drops1 - min(drops0, drops1)
	if r == nil {
		s.note("call rate %.0f/s: %v", rate, err)
		return run, 0
	}
	run.Calls, run.Failed, run.FailedBy = r.Calls.Attempted, r.Calls.Failed+(r.Calls.Attempted-r.Calls.OK-r.Calls.Failed), r.Calls.FailedBy
	run.SetupP50Ms, run.SetupP99Ms, run.SetupMaxMs = r.SetupMs.P50, r.SetupMs.P99, r.SetupMs.Max
	run.PeakCalls = r.Calls.Peak
	run.Extensions = r.Extensions
	run.RSSEndKiB = after.RSSKiB
	if r.Calls.OK > 0 {
		run.CPUPerCallUs = round(cpuUs(before, after)/float64(r.Calls.OK), 1)
		run.GenCPUPerCall = round(cpuUs(gen0, gen1)/float64(r.Calls.OK), 1)
	}
	run.CPUCores = round(float64(after.CPU()-before.CPU())/float64(time.Duration(r.DurationS*float64(time.Second))), 3)
	// Passed: every call succeeded, callctl was not overloaded (set-up p99
	// under 500 ms, the first SIP retransmission: fewer than 1% of the
	// calls needed one), and the generator placed them all on time (it is
	// not the bottleneck).
	run.Passed = r.Calls.Attempted > 0 && r.Calls.OK == r.Calls.Attempted && r.SetupMs.P99 < maxSetupP99Ms &&
		float64(r.Calls.Attempted) >= rate*d.Seconds()*0.98 && r.LaunchS <= d.Seconds()*1.05
	if soak != nil {
		soak.Calls = r.Calls.OK
		run.RSSSamples = soak.RSSSamples
	}
	return run, r.Calls.OK + r.Calls.Failed
}

// soak goes on at rate on the same callctl until 100,000 calls in all (if
// that fits in 150 s and the suite's time), sampling RSS, and fits the
// growth.
func (s *suite) soak(c *callctlProc, rate float64, done uint64, soak *Soak) {
	const total = 100000
	if done < total {
		need := time.Duration(float64(total-done) / rate * float64(time.Second))
		reserve := 90 * time.Second // the profiles, and the run within the set-up target
		if need > 150*time.Second || s.left() < need+reserve+s.opt.sustain {
			s.note("soak: %d calls done; the rest to 100,000 would take %v, skipped", done, need.Round(time.Second))
		} else {
			cfg := s.baseConfig()
			cfg.Rate, cfg.Calls, cfg.Hold, cfg.SetupTimeout = rate, int(total-done), time.Second, 5*time.Second
			base := done
			r, _ := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
				t := time.NewTicker(5 * time.Second)
				defer t.Stop()
				for {
					select {
					case <-t.C:
					case <-s.ctx.Done():
						return
					}
					p := g.Progress()
					soak.RSSSamples = append(soak.RSSSamples, RSSAt{Calls: base + p.OK + p.Failed, RSSKiB: c.stat().RSSKiB})
					if p.Active == 0 && p.OK+p.Failed == p.Attempted && p.Attempted > 0 {
						return
					}
				}
			})
			if r != nil {
				done += r.Calls.OK + r.Calls.Failed
				soak.Calls += r.Calls.OK
			}
		}
	}
	// The retained sessions expire 10 s after their end: let them, then
	// the last sample.
	time.Sleep(11 * time.Second)
	soak.RSSSamples = append(soak.RSSSamples, RSSAt{Calls: done, RSSKiB: c.stat().RSSKiB})
	soak.Rate = rate
	soak.GrowthKiBPer10k = round(slope(soak.RSSSamples, done/2)*10000, 1)
	var sum, n uint64
	for _, p := range soak.RSSSamples {
		if p.Calls >= done/2 {
			sum, n = sum+p.RSSKiB, n+1
		}
	}
	if n > 0 {
		soak.PlateauKiB = sum / n
	}
}

// slope fits RSS = a + b·calls by least squares over the samples after
// from calls, and returns b (KiB per call).
func slope(samples []RSSAt, from uint64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, p := range samples {
		if p.Calls < from {
			continue
		}
		x, y := float64(p.Calls), float64(p.RSSKiB)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	if n < 3 || n*sxx-sx*sx == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// ---- concurrency with RTP ----

func (s *suite) concurrency() {
	for _, n := range s.opt.levels {
		need := time.Duration(n/200)*time.Second + s.opt.window + 20*time.Second
		if s.left() < need+3*time.Minute {
			s.note("concurrency: level %d skipped to keep the suite within its time", n)
			break
		}
		lvl, ok := s.level(n)
		s.rep.Concurrency = append(s.rep.Concurrency, lvl)
		s.logf("%d calls: %.0f pkt/s, loss %.4f%%, latency p50 %.0f p99 %.0f µs, callctl %.2f µs/packet %.2f cores, RSS %.1f KiB/call",
			n, lvl.PacketsPerS, lvl.LossPct, lvl.LatencyP50Us, lvl.LatencyP99Us, lvl.CPUPerPacketUs, lvl.CPUCores, lvl.RSSPerCallKiB)
		if !ok {
			break
		}
		if lvl.LossPct < 0.01 && lvl.FailedCalls == 0 {
			s.rep.MaxCalls = n
		} else {
			break
		}
		if lvl.LatencyP99Us > 200000 {
			s.note("concurrency: p99 latency %.0f ms at %d calls: the machine is saturated, no higher level tried", lvl.LatencyP99Us/1000, n)
			break
		}
	}
}

// level holds n calls with RTP both ways and measures a steady window.
func (s *suite) level(n int) (Level, bool) {
	lvl := Level{Calls: n, WindowS: s.opt.window.Seconds()}
	c, err := s.startCallctl()
	if err != nil {
		s.note("concurrency %d: %v", n, err)
		return lvl, false
	}
	defer c.stop()
	rss0 := c.stat().RSSKiB
	rate := 200.0
	ramp := time.Duration(float64(n) / rate * float64(time.Second))
	cfg := s.baseConfig()
	cfg.Calls, cfg.Rate, cfg.Concurrency, cfg.RTP = n, rate, n, true
	cfg.Hold = ramp + s.opt.window + 4*time.Second
	measured := false
	r, err := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
		if !waitAnswered(s.ctx, g, uint64(n), ramp+15*time.Second) {
			return
		}
		time.Sleep(time.Second)
		st1, gen1, p1, h1, t1 := c.stat(), selfStat(), g.Progress(), g.Latency(), time.Now()
		sleepCtx(s.ctx, s.opt.window)
		st2, gen2, p2, h2, t2 := c.stat(), selfStat(), g.Progress(), g.Latency(), time.Now()
		drops, _ := loadgen.UDPDropsOfProcess(c.pid)
		pk := float64(p2.RTPReceived - p1.RTPReceived)
		lat := h2.Since(h1).Summarize(time.Microsecond)
		lvl.PacketsPerS = round(pk/t2.Sub(t1).Seconds(), 0)
		lvl.LatencyP50Us, lvl.LatencyP99Us, lvl.LatencyP999Us = lat.P50, lat.P99, lat.P999
		if pk > 0 {
			lvl.CPUPerPacketUs = round(cpuUs(st1, st2)/pk, 2)
			lvl.GenCPUPerPacket = round(cpuUs(gen1, gen2)/pk, 2)
		}
		lvl.CPUCores = round(float64(st2.CPU()-st1.CPU())/float64(t2.Sub(t1)), 3)
		lvl.RSSKiB = st2.RSSKiB
		lvl.RSSPerCallKiB = round(float64(int64(st2.RSSKiB)-int64(rss0))/float64(n), 1)
		lvl.KernelDrops = drops
		measured = true
	})
	if r == nil {
		s.note("concurrency %d: %v", n, err)
		return lvl, false
	}
	lvl.Sent, lvl.Lost, lvl.LossPct = r.RTP.Sent, r.RTP.Lost, round(r.RTP.LossPct, 5)
	lvl.LostAtStart = r.RTP.LostAtStart
	lvl.Reordered, lvl.Duplicated = r.RTP.Reordered, r.RTP.Duplicated
	lvl.FailedCalls = r.Calls.Attempted - r.Calls.OK
	lvl.GeneratorDrops = r.Generator.SocketDrops
	lvl.SetupP99Ms = r.SetupMs.P99
	lvl.Extensions = r.Extensions
	if !measured {
		s.note("concurrency %d: only %d of %d calls were answered; no steady window", n, r.Calls.Answered, n)
		return lvl, false
	}
	return lvl, true
}

// waitAnswered waits until n calls are answered.
func waitAnswered(ctx context.Context, g *loadgen.Generator, n uint64, limit time.Duration) bool {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		if g.Progress().Answered >= n {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// baseline measures the generator alone (loopback) at each level reached:
// what its own send and receive add to the latency through callctl.
func (s *suite) baseline() {
	for i := range s.rep.Concurrency {
		lvl := &s.rep.Concurrency[i]
		if s.left() < 2*time.Minute {
			s.note("baseline: stopped before level %d to keep the suite within its time", lvl.Calls)
			return
		}
		n := lvl.Calls
		rate := 500.0
		ramp := time.Duration(float64(n) / rate * float64(time.Second))
		window := min(s.opt.window, 8*time.Second)
		cfg := loadgen.Config{Loopback: true, UASListen: "127.0.0.1:0", Calls: n, Rate: rate, Hold: ramp + window + 2*time.Second}
		_, err := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
			if !waitAnswered(s.ctx, g, uint64(n), ramp+5*time.Second) {
				return
			}
			time.Sleep(500 * time.Millisecond)
			h1 := g.Latency()
			sleepCtx(s.ctx, window)
			lat := g.Latency().Since(h1).Summarize(time.Microsecond)
			lvl.BaseP50Us, lvl.BaseP99Us = lat.P50, lat.P99
		})
		if err != nil {
			s.note("baseline %d: %v", n, err)
		}
	}
}

// ---- SIPp echo for comparison ----

func (s *suite) sippEcho() {
	res := &SIPpResult{Calls: s.opt.sippCalls}
	s.rep.SIPp = res
	bin, err := exec.LookPath("sipp")
	if err != nil {
		res.Skipped = "sipp not installed (Debian package sip-tester)"
		return
	}
	addr, err := freePort()
	if err != nil {
		res.Skipped = err.Error()
		return
	}
	_, port, _ := strings.Cut(addr, ":")
	mp := 31000 // below the ephemeral range, above callctl's RTP range
	ctl, err := freePort()
	if err != nil {
		res.Skipped = err.Error()
		return
	}
	_, ctlPort, _ := strings.Cut(ctl, ":")
	logf, err := os.Create(filepath.Join(s.dir, "sipp.log"))
	if err != nil {
		res.Skipped = err.Error()
		return
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", port, "-mp", strconv.Itoa(mp),
		"-m", strconv.Itoa(res.Calls), "-nostdin", "-ci", "127.0.0.1", "-cp", ctlPort)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.dir, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		res.Skipped = err.Error()
		return
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	time.Sleep(500 * time.Millisecond)
	n := res.Calls
	rate := 200.0
	ramp := time.Duration(float64(n) / rate * float64(time.Second))
	cfg := loadgen.Config{Target: addr, TargetIsUAS: true, Calls: n, Rate: rate, Concurrency: n, RTP: true,
		Hold: ramp + s.opt.window + 4*time.Second, SetupTimeout: 10 * time.Second}
	r, err := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
		if !waitAnswered(s.ctx, g, uint64(n), ramp+15*time.Second) {
			return
		}
		time.Sleep(time.Second)
		st1, _ := loadgen.ReadProcStat(cmd.Process.Pid)
		p1, h1, t1 := g.Progress(), g.Latency(), time.Now()
		sleepCtx(s.ctx, s.opt.window)
		st2, _ := loadgen.ReadProcStat(cmd.Process.Pid)
		p2, h2, t2 := g.Progress(), g.Latency(), time.Now()
		res.KernelDrops, _ = loadgen.UDPDropsOfProcess(cmd.Process.Pid)
		pk := float64(p2.RTPReceived - p1.RTPReceived)
		lat := h2.Since(h1).Summarize(time.Microsecond)
		res.LatencyP50Us, res.LatencyP99Us = lat.P50, lat.P99
		res.PacketsPerS = round(pk/t2.Sub(t1).Seconds(), 0)
		if pk > 0 {
			res.CPUPerPacketUs = round(cpuUs(st1, st2)/pk, 2)
		}
	})
	if r == nil {
		res.Skipped = fmt.Sprint(err)
		return
	}
	res.LossPct = round(r.RTP.LossPct, 5)
	res.LostAtStart = r.RTP.LostAtStart
	res.SetupP99Ms = r.SetupMs.P99
	s.logf("SIPp echo %d calls: %.0f pkt/s, loss %.4f%% (%d at call start, %d kernel drops at SIPp), latency p50 %.0f p99 %.0f µs, %.2f µs/packet",
		n, res.PacketsPerS, res.LossPct, res.LostAtStart, res.KernelDrops, res.LatencyP50Us, res.LatencyP99Us, res.CPUPerPacketUs)
}

// ---- WebRTC listeners ----

func (s *suite) listeners() {
	n := s.opt.listenN
	res := &Listeners{Calls: n, Requested: 2 * n}
	s.rep.Listeners = res
	var base *Level
	for i := range s.rep.Concurrency {
		if s.rep.Concurrency[i].Calls == n {
			base = &s.rep.Concurrency[i]
		}
	}
	c, err := s.startCallctl()
	if err != nil {
		s.note("listeners: %v", err)
		return
	}
	defer c.stop()
	cfg := s.baseConfig()
	cfg.Calls, cfg.Rate, cfg.RTP = n, 50, true
	cfg.Hold = 30*time.Second + s.opt.window
	cfg.API = loadgen.APIConfig{URL: "http://" + s.p.api, Token: adminToken, Listeners: 2}
	r, err := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
		end := time.Now().Add(30 * time.Second)
		for time.Now().Before(end) {
			p := g.Progress()
			if p.ListenUnavailable || p.ListenersStarted >= uint64(2*n) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if g.Progress().ListenUnavailable {
			return
		}
		time.Sleep(2 * time.Second)
		st1, p1, t1 := c.stat(), g.Progress(), time.Now()
		sleepCtx(s.ctx, s.opt.window)
		st2, p2, t2 := c.stat(), g.Progress(), time.Now()
		res.Started = p2.ListenersStarted
		fwd := float64(p2.ListenerPackets - p1.ListenerPackets)
		res.PacketsPerS = round(fwd/t2.Sub(t1).Seconds(), 0)
		res.CPUCores = round(float64(st2.CPU()-st1.CPU())/float64(t2.Sub(t1)), 3)
		if base != nil && fwd > 0 {
			res.BaseCPUCores = base.CPUCores
			extra := res.CPUCores - base.CPUCores
			res.CPUPerForwardedUs = round(extra*1e6/res.PacketsPerS, 2)
			if res.Started > 0 {
				res.RSSPerListenerKiB = round(float64(int64(st2.RSSKiB)-int64(base.RSSKiB))/float64(res.Started), 1)
			}
		}
	})
	if r == nil {
		s.note("listeners: %v", err)
		return
	}
	if r.API != nil && r.API.Listeners != nil {
		if r.API.Listeners.Skipped != "" {
			res.Skipped = r.API.Listeners.Skipped
		}
		if res.Started == 0 {
			res.Started = r.API.Listeners.Started
		}
		for k, v := range r.API.Errors {
			s.note("listeners: API error %q × %d", k, v)
		}
	}
	if base == nil && res.Skipped == "" {
		s.note("listeners: no %d-call level without listeners to compare with; CPU per forwarded packet not computed", n)
	}
	s.logf("listeners: %d of %d started, %.0f forwarded pkt/s, callctl %.2f cores (%.2f without), %.2f µs per forwarded packet %s",
		res.Started, res.Requested, res.PacketsPerS, res.CPUCores, res.BaseCPUCores, res.CPUPerForwardedUs, res.Skipped)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

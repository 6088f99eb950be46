package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/loadgen"
)

// RecoveryRun is one run of the recovery phase (issue 12): N calls with
// RTP both ways through a callctl with the embedded store, that callctl
// killed with SIGKILL, started again on the same configuration (addresses,
// node, audit database, JetStream directory), and per call the time from
// the kill until audio flows both ways again through the new process.
type RecoveryRun struct {
	Calls    int    `json:"calls"`
	Answered uint64 `json:"answered"`
	// Stored is the records written (callctl_store_writes_total ok) when
	// the process was killed; the suite waits for one per call, up to
	// recoveryStoreWait.
	Stored      float64 `json:"stored_before_kill"`
	LoadAtKill  string  `json:"load_avg_at_kill"`
	ExitMs      float64 `json:"kill_to_exit_ms"`  // SIGKILL sent → process reaped
	ReadyMs     float64 `json:"kill_to_ready_ms"` // → the new process answers /readyz
	Watched     int     `json:"watched"`          // calls up, with RTP both ways, at the kill
	Readopted   int     `json:"readopted"`        // audio again both ways
	Lost        int     `json:"lost"`             // Watched − Readopted
	EndedByPeer int     `json:"ended_by_callctl"` // of the lost, those callctl hung up (BYE)
	// Times from the kill to audio both ways, over the watched calls, a
	// call whose audio never came back counted as never (ranked last,
	// written -1): p99 is then the figure even with calls lost.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// FirstMs is the first call's (the quickest direction pair).
	FirstMs float64 `json:"first_ms"`
	// WaitedS is how long after the restart the suite waited for the
	// calls to come back (recoveryWait at most).
	WaitedS float64 `json:"waited_s"`
	// CPUMs is the new process's CPU time (utime+stime since it started)
	// when the last call was back (or the wait ended): its start, reading
	// the records back, the re-INVITEs, and the relay meanwhile.
	CPUMs     float64                 `json:"cpu_ms_recovering"`
	Reinvites *loadgen.ReinviteResult `json:"reinvites,omitempty"`
	// The calls' end: each hung up by the caller side after the
	// measurement, BYE answered 2xx (ok) or not.
	EndedOK  uint64            `json:"ended_ok"`
	Failed   uint64            `json:"failed"`
	FailedBy map[string]uint64 `json:"failed_by,omitempty"`
	// RTP over the whole run, both ways; most of the loss is the outage.
	RTPSent        uint64 `json:"rtp_sent"`
	RTPLost        uint64 `json:"rtp_lost"`
	GeneratorDrops uint64 `json:"kernel_drops_at_generator"`
	// One-way latency p99 over recoverySettle before the kill and after
	// the last call was back: a relay that has caught up shows the same.
	LatencyP99BeforeMs float64 `json:"latency_p99_before_ms"`
	LatencyP99AfterMs  float64 `json:"latency_p99_after_ms"`
	// Stray is generator audio that arrived for a stream no longer known.
	Stray uint64 `json:"rtp_stray"`
	// Crossed is audio sent after the kill that arrived at a socket of the
	// generator other than its own call's: it went through another call's
	// relay (loadgen.RTPResult.Crossed; with recoveryMediaSockets per side,
	// most such packets land on another socket and are seen).
	Crossed uint64 `json:"rtp_crossed"`
	// ForeignDropped is the packets the new process refused by its
	// latching rules (callctl_media_foreign_dropped_total): parties still
	// sending to ports it now uses for other calls.
	ForeignDropped float64 `json:"foreign_dropped_by_new_process"`
	// StoreWritesThen is the ok writes of the new process recoverySettle
	// after the last call was back (each re-adopted call's record is
	// written again).
	StoreWritesThen float64 `json:"store_writes_after"`
	Skipped         string  `json:"skipped,omitempty"`
}

const (
	recoveryRate      = 200              // calls/s while the calls are placed (the concurrency phase's ramp)
	recoveryStoreWait = 10 * time.Second // for every answered call's record to be written
	recoveryWait      = 30 * time.Second // after the restart, for the calls to come back
	recoverySettle    = 2 * time.Second  // RTP flowing before the kill, and after all are back
	// recoveryMediaSockets is the generator's RTP sockets per side (2 by
	// default): a packet that takes another call's path after the restart
	// (a party still sending to a port the new process gave another call)
	// then lands, 3 times in 4, on a socket not its call's, where it is
	// counted as crossed rather than as audio back.
	recoveryMediaSockets = 4
)

// recovery runs the recovery measurement for each -recovery-calls count.
func (s *suite) recovery() {
	for _, n := range s.opt.recoveryCalls {
		ramp := time.Duration(float64(n) / recoveryRate * float64(time.Second))
		need := ramp + 15*time.Second + recoveryStoreWait + recoveryWait + 2*recoverySettle + 15*time.Second
		if s.left() < need+time.Minute {
			s.note("recovery: %d calls skipped to keep the suite within its time (needs up to %v)", n, need.Round(time.Second))
			continue
		}
		run := s.recoveryRun(n)
		s.rep.Recovery = append(s.rep.Recovery, run)
		if run.Skipped != "" {
			s.note("recovery %d: %s", n, run.Skipped)
			continue
		}
		s.logf("recovery %d calls: %d of %d back, %d lost (%d hung up by callctl); kill → audio both ways p50 %.0f p99 %.0f max %.0f ms; ready %.0f ms after the kill; %d ended ok, %d failed %v",
			n, run.Readopted, run.Watched, run.Lost, run.EndedByPeer, run.P50Ms, run.P99Ms, run.MaxMs, run.ReadyMs, run.EndedOK, run.Failed, run.FailedBy)
	}
}

// recoveryRun is one run of n calls.
func (s *suite) recoveryRun(n int) RecoveryRun {
	run := RecoveryRun{Calls: n}
	c, err := s.startCallctlWith(phaseConfig{store: "embedded"})
	if err != nil {
		run.Skipped = err.Error()
		return run
	}
	start := s.starts
	// Whichever process runs at the end is stopped (the first one if the
	// kill never happened).
	cur := c
	defer func() { cur.stop() }()
	ramp := time.Duration(float64(n) / recoveryRate * float64(time.Second))
	cfg := s.baseConfig()
	cfg.Calls, cfg.Rate, cfg.Concurrency, cfg.RTP = n, recoveryRate, n, true
	cfg.MediaSockets = recoveryMediaSockets
	// The calls end when the measurement is done (EndCalls); the hold is
	// only a bound.
	cfg.Hold = ramp + 10*time.Minute
	r, err := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
		defer g.EndCalls()
		if !waitAnswered(s.ctx, g, uint64(n), ramp+15*time.Second) {
			run.Skipped = fmt.Sprintf("only %d of %d calls answered", g.Progress().Answered, n)
			return
		}
		run.Stored = s.waitStored(float64(n), recoveryStoreWait)
		h0 := g.Latency()
		sleepCtx(s.ctx, recoverySettle)
		run.LatencyP99BeforeMs = round(g.Latency().Since(h0).Summarize(time.Microsecond).P99/1000, 2)
		if s.ctx.Err() != nil {
			return
		}

		run.LoadAtKill = loadAvg()
		kill := time.Now()
		c.kill()
		dead := time.Now()
		run.ExitMs = ms(dead.Sub(kill))
		// Packets sent from now on cannot have gone through the dead
		// process: the first of each direction to arrive is audio again.
		run.Watched = g.WatchResume(dead)
		c2, err := restartCallctl(s.bin, s.dir, s.p, start)
		if err != nil {
			run.Skipped = "restart: " + err.Error()
			return
		}
		cur = c2
		ready := time.Now()
		run.ReadyMs = ms(ready.Sub(kill))

		var res []loadgen.CallResume
		for {
			res = g.Resumed()
			if allSettled(res) || time.Since(ready) > recoveryWait || s.ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		run.WaitedS = round(time.Since(ready).Seconds(), 1)
		run.CPUMs = ms(c2.stat().CPU())
		run.summarize(kill, res)
		h1 := g.Latency()
		sleepCtx(s.ctx, recoverySettle)
		run.LatencyP99AfterMs = round(g.Latency().Since(h1).Summarize(time.Microsecond).P99/1000, 2)
		if w, err := s.counters(storeWritesName); err == nil {
			run.StoreWritesThen = w[storeWritesName+`{result="ok"}`]
		}
		if m, err := s.counters("callctl_media_foreign_dropped_total"); err == nil {
			run.ForeignDropped = m["callctl_media_foreign_dropped_total"]
		}
	})
	if r == nil {
		if run.Skipped == "" {
			run.Skipped = fmt.Sprint(err)
		}
		return run
	}
	run.Answered = r.Calls.Answered
	run.EndedOK, run.Failed, run.FailedBy = r.Calls.OK, r.Calls.Attempted-r.Calls.OK, r.Calls.FailedBy
	run.Reinvites = r.Reinvites
	run.RTPSent, run.RTPLost, run.GeneratorDrops, run.Stray, run.Crossed = r.RTP.Sent, r.RTP.Lost, r.Generator.SocketDrops, r.RTP.Stray, r.RTP.Crossed
	return run
}

// waitStored waits until callctl counts n records written (ok), or limit.
func (s *suite) waitStored(n float64, limit time.Duration) float64 {
	end := time.Now().Add(limit)
	var got float64
	for s.ctx.Err() == nil {
		if w, err := s.counters(storeWritesName); err == nil {
			got = w[storeWritesName+`{result="ok"}`]
		}
		if got >= n || time.Now().After(end) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	return got
}

// allSettled reports whether every watched call has audio both ways again
// or has ended.
func allSettled(res []loadgen.CallResume) bool {
	for _, r := range res {
		if _, ok := r.Both(); !ok && !r.Ended {
			return false
		}
	}
	return true
}

// summarize fills the counts and percentiles from the calls' resume times.
func (run *RecoveryRun) summarize(kill time.Time, res []loadgen.CallResume) {
	times := make([]float64, 0, len(res))
	for _, r := range res {
		at, ok := r.Both()
		if !ok {
			run.Lost++
			if r.Ended {
				run.EndedByPeer++
			}
			times = append(times, math.Inf(1))
			continue
		}
		run.Readopted++
		times = append(times, ms(at.Sub(kill)))
	}
	slices.Sort(times)
	if len(times) == 0 {
		return
	}
	never := func(v float64) float64 {
		if math.IsInf(v, 1) {
			return -1 // JSON has no infinity
		}
		return v
	}
	run.FirstMs = never(times[0])
	run.P50Ms, run.P99Ms, run.MaxMs = never(rank(times, 0.50)), never(rank(times, 0.99)), never(times[len(times)-1])
}

// rank is the nearest-rank percentile q of sorted values.
func rank(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

// msText shows a time in ms, "never" for a call that did not come back
// (-1).
func msText(v float64) string {
	if v < 0 {
		return "never"
	}
	return fmt.Sprintf("%.0f ms", v)
}

// recoveryTargets compares the recovery runs with issue 12's goals.
func recoveryTargets(r *Report, add func(name, goal, reached string, met *bool, note string)) {
	for _, run := range r.Recovery {
		name := fmt.Sprintf("audio again after kill -9, %d calls", run.Calls)
		goal := "reported"
		if run.Calls >= 1000 {
			goal = "p99 < 3 s"
		}
		if run.Skipped != "" {
			add(name, goal, "not measured", nil, run.Skipped)
			continue
		}
		reached := fmt.Sprintf("kill → audio both ways p50 %s, p99 %s, max %s; %d of %d calls back, %d lost (callctl ready %.0f ms after the kill)",
			msText(run.P50Ms), msText(run.P99Ms), msText(run.MaxMs), run.Readopted, run.Watched, run.Lost, run.ReadyMs)
		var met *bool
		if run.Calls >= 1000 {
			met = ptr(run.Watched == run.Calls && run.P99Ms >= 0 && run.P99Ms < 3000)
		}
		add(name, goal, reached, met, "")
		add(fmt.Sprintf("calls re-adopted after kill -9, %d calls", run.Calls), "every call (issue 12, build 1), each ended normally after",
			fmt.Sprintf("%d of %d back, %d lost; at the end %d ended ok, %d failed", run.Readopted, run.Calls, run.Calls-run.Readopted, run.EndedOK, run.Failed),
			ptr(run.Readopted == run.Calls && run.Failed == 0), "")
	}
}

// recoveryMarkdown is the report's section.
func recoveryMarkdown(w func(string, ...any), r *Report) {
	if len(r.Recovery) == 0 {
		return
	}
	w("\n## Restart recovery: kill -9 under live calls (issue 12)\n\n")
	w("N calls with RTP both ways (PCMU, 20 ms) through callctl with `cluster.store: embedded`; once every record is written, callctl is killed with SIGKILL and started again on the same configuration. Per call, the time from the kill until a packet sent after the old process was gone has arrived in each direction (through the new process's relay, after its re-INVITEs); a call that did not come back within %.0f s counts as never. Then every call is hung up by its caller.\n\n", recoveryWait.Seconds())
	w("| calls | records written before the kill | kill → exit / ready | back / lost (callctl hung up) | kill → audio both ways p50 / p99 / max (first) | re-INVITEs answered caller / callee, ACKed | new process's CPU until all were back | RTP lost (of sent) | ended ok / failed | load average at the kill |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, run := range r.Recovery {
		if run.Skipped != "" {
			w("| %d | skipped: %s | | | | | | | | |\n", run.Calls, run.Skipped)
			continue
		}
		re := "–"
		if v := run.Reinvites; v != nil {
			re = fmt.Sprintf("%d / %d, %d", v.CallerAnswered, v.CalleeAnswered, v.ACKed)
		}
		w("| %d | %.0f | %.0f / %.0f ms | %d / %d (%d) | %s / %s / %s (%s) | %s | %.0f ms | %d (%d) | %d / %d | %s |\n",
			run.Calls, run.Stored, run.ExitMs, run.ReadyMs, run.Readopted, run.Lost, run.EndedByPeer,
			msText(run.P50Ms), msText(run.P99Ms), msText(run.MaxMs), msText(run.FirstMs), re, run.CPUMs,
			run.RTPLost, run.RTPSent, run.EndedOK, run.Failed, run.LoadAtKill)
	}
	w("\n")
	for _, run := range r.Recovery {
		if run.Skipped != "" {
			continue
		}
		w("- %d calls: one-way RTP latency p99 %.0f ms in the %.0f s before the kill, %.0f ms in the %.0f s after the last call was back; after the kill %d packets arrived through another call's relay (crossed), the new process dropped %.0f by its latching rules (parties still sending to ports it now used for other calls); the new process wrote %.0f records.",
			run.Calls, run.LatencyP99BeforeMs, recoverySettle.Seconds(), run.LatencyP99AfterMs, recoverySettle.Seconds(), run.Crossed, run.ForeignDropped, run.StoreWritesThen)
		if len(run.FailedBy) > 0 {
			w(" Failed: %s.", failedText(run.FailedBy))
		}
		w("\n")
	}
}

func failedText(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s × %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

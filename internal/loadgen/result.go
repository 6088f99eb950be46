package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Result is what a run measured. Times are in the units their names say.
type Result struct {
	Target string `json:"target"`
	// Mode is "b2bua" (both sides played here), "uas" (the target answers
	// and echoes RTP) or "loopback" (RTP between the two sides, no target).
	Mode        string  `json:"mode"`
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	HoldS       float64 `json:"hold_s"`
	RTPEnabled  bool    `json:"rtp_enabled"`
	Started     string  `json:"started"`
	LaunchS     float64 `json:"launch_s"`   // placing calls
	DurationS   float64 `json:"duration_s"` // until the last call ended

	Calls   CallsResult `json:"calls"`
	SetupMs Summary     `json:"setup_ms"` // INVITE sent to first 2xx received, at the caller
	RTP     RTPResult   `json:"rtp"`
	DTMF    *DTMFResult `json:"dtmf,omitempty"`
	// Extensions is what was negotiated with Config.Extensions.
	Extensions *ExtensionsResult `json:"extensions,omitempty"`
	API        *APIResult        `json:"api,omitempty"`
	// Reinvites counts the in-dialog INVITEs answered, when there were any.
	Reinvites *ReinviteResult `json:"reinvites,omitempty"`
	// CalleeErrors counts what went wrong on the callee side (requests for
	// unknown dialogs, missing ACKs).
	CalleeErrors map[string]uint64 `json:"callee_errors,omitempty"`
	Generator    GeneratorResult   `json:"generator"`
}

// CallsResult counts calls; a call is ok when it was answered, held and
// its BYE answered 2xx, with no BYE from the target before.
type CallsResult struct {
	Attempted uint64            `json:"attempted"`
	Answered  uint64            `json:"answered"`
	OK        uint64            `json:"ok"`
	Failed    uint64            `json:"failed"`
	FailedBy  map[string]uint64 `json:"failed_by,omitempty"`
	Peak      int64             `json:"peak_concurrent"`
}

// RTPResult counts the generator's audio packets, both directions summed.
type RTPResult struct {
	Sent       uint64  `json:"sent"`
	Received   uint64  `json:"received"` // first arrivals
	Lost       uint64  `json:"lost"`     // sent - received
	LossPct    float64 `json:"loss_pct"`
	Reordered  uint64  `json:"reordered"`  // first arrivals after a higher counter
	Duplicated uint64  `json:"duplicated"` // second and later arrivals
	Stray      uint64  `json:"stray"`      // generator packets of no known stream
	// Crossed is audio of a stream under a resume watch that arrived at a
	// socket other than its own call's: it took another call's path.
	Crossed    uint64 `json:"crossed,omitempty"`
	Foreign    uint64 `json:"foreign"` // RTP not from the generator (music on hold)
	SendErrors uint64 `json:"send_errors"`
	// LostAtStart, LostMidCall and LostAtEnd split Lost by where in their
	// stream the packets were missing: before the first packet received,
	// between two received, after the last.
	LostAtStart uint64 `json:"lost_at_start"`
	LostMidCall uint64 `json:"lost_mid_call"`
	LostAtEnd   uint64 `json:"lost_at_end"`
	// LatencyUs is one-way, send to receive, through the target (or, in
	// uas mode, there and back through its echo).
	LatencyUs Summary `json:"latency_us"`
}

// DTMFResult counts RFC 4733 events.
type DTMFResult struct {
	KeysSent        uint64 `json:"keys_sent"`
	EventsReceived  uint64 `json:"events_received"`
	PacketsSent     uint64 `json:"packets_sent"`
	PacketsReceived uint64 `json:"packets_received"`
}

// ExtensionsResult counts RFC 3262 and RFC 4028 on each leg: calls whose
// caller PRACKed a reliable 18x and got a 200 with a session timer, and
// calls whose callee side was asked for 100rel and a timer and got its
// PRACK.
type ExtensionsResult struct {
	CallerPRACKs     uint64 `json:"caller_pracks"`
	CallerTimers     uint64 `json:"caller_timers"`
	CalleeReliable   uint64 `json:"callee_reliable"`
	CalleePRACKed    uint64 `json:"callee_pracked"`
	CalleeTimerAsked uint64 `json:"callee_timer_asked"`
}

type extCounters struct {
	callerPRACKs, callerTimers, calleeReliable, calleePRACKed, calleeTimer atomic.Uint64
}

func (c *extCounters) result() *ExtensionsResult {
	return &ExtensionsResult{
		CallerPRACKs: c.callerPRACKs.Load(), CallerTimers: c.callerTimers.Load(),
		CalleeReliable: c.calleeReliable.Load(), CalleePRACKed: c.calleePRACKed.Load(), CalleeTimerAsked: c.calleeTimer.Load(),
	}
}

// GeneratorResult is what the generator itself cost.
type GeneratorResult struct {
	CPUSeconds float64 `json:"cpu_s"`
	// SocketDrops are datagrams the kernel dropped at the generator's own
	// sockets (full buffers): losses that are the generator's, not the
	// target's.
	SocketDrops uint64 `json:"socket_drops"`
}

func (g *Generator) result(start time.Time, launched, total time.Duration) *Result {
	cfg := g.cfg
	r := &Result{
		Target:      cfg.Target,
		Mode:        "b2bua",
		Rate:        cfg.Rate,
		Concurrency: cfg.Concurrency,
		HoldS:       cfg.Hold.Seconds(),
		RTPEnabled:  cfg.RTP,
		Started:     start.UTC().Format(time.RFC3339),
		LaunchS:     round3(launched.Seconds()),
		DurationS:   round3(total.Seconds()),
	}
	switch {
	case cfg.TargetIsUAS:
		r.Mode = "uas"
	case cfg.Loopback:
		r.Mode, r.Target = "loopback", ""
	}
	g.mu.Lock()
	r.Calls = CallsResult{Attempted: g.attempted.Load(), Answered: g.answered.Load(), OK: g.ok.Load(),
		Failed: g.failed.Load(), Peak: g.peak.Load()}
	if len(g.failures) > 0 {
		r.Calls.FailedBy = maps.Clone(g.failures)
	}
	if len(g.uasErrs) > 0 {
		r.CalleeErrors = maps.Clone(g.uasErrs)
	}
	r.SetupMs = g.setup.Summarize(time.Millisecond)
	g.mu.Unlock()

	lat := NewHistogram()
	var dtmf DTMFResult
	for _, m := range g.allMedia() {
		r.RTP.Sent += m.sent.Load()
		r.RTP.Received += m.rx.unique.Load()
		r.RTP.Reordered += m.rx.reordered.Load()
		r.RTP.Duplicated += m.rx.dups.Load()
		r.RTP.Stray += m.rx.stray.Load()
		r.RTP.Crossed += m.rx.crossed.Load()
		r.RTP.Foreign += m.rx.foreign.Load()
		r.RTP.SendErrors += m.sendErr.Load()
		dtmf.PacketsSent += m.sentEv.Load()
		dtmf.PacketsReceived += m.rx.dtmf.Load()
		dtmf.EventsReceived += m.rx.digits.Load()
	}
	for _, m := range g.allMedia() {
		m.histMu.Lock()
		lat.Merge(m.hist)
		m.histMu.Unlock()
	}
	if r.RTP.Sent > r.RTP.Received {
		r.RTP.Lost = r.RTP.Sent - r.RTP.Received
	}
	r.RTP.LostAtStart, r.RTP.LostMidCall, r.RTP.LostAtEnd = g.lossBreakdown()
	if r.RTP.Sent > 0 {
		r.RTP.LossPct = float64(r.RTP.Lost) * 100 / float64(r.RTP.Sent)
	}
	r.RTP.LatencyUs = lat.Summarize(time.Microsecond)
	if cfg.DTMF != "" {
		dtmf.KeysSent = r.Calls.Answered * uint64(len(cfg.DTMF))
		r.DTMF = &dtmf
	}
	if cfg.Extensions {
		r.Extensions = g.ext.result()
	}
	r.Reinvites = g.reinv.result()
	if g.api != nil {
		g.api.ops.Wait()
		r.API = g.api.result(g)
	}
	r.Generator.SocketDrops = g.socketDrops()
	return r
}

// WriteSummary writes r for people: a few aligned lines.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "target %s (%s)  rate %.0f/s  concurrency %d  hold %.1fs  took %.1fs\n",
		r.Target, r.Mode, r.Rate, r.Concurrency, r.HoldS, r.DurationS)
	fmt.Fprintf(w, "calls    attempted %d  answered %d  ok %d  failed %d  peak %d concurrent\n",
		r.Calls.Attempted, r.Calls.Answered, r.Calls.OK, r.Calls.Failed, r.Calls.Peak)
	for _, k := range slices.Sorted(maps.Keys(r.Calls.FailedBy)) {
		fmt.Fprintf(w, "         failed: %s × %d\n", k, r.Calls.FailedBy[k])
	}
	if r.SetupMs.Count > 0 {
		fmt.Fprintf(w, "setup    INVITE→200 p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", r.SetupMs.P50, r.SetupMs.P99, r.SetupMs.Max)
	}
	if r.RTPEnabled {
		fmt.Fprintf(w, "rtp      sent %d  received %d  lost %d (%.4f%%)  reordered %d  duplicated %d  foreign %d\n",
			r.RTP.Sent, r.RTP.Received, r.RTP.Lost, r.RTP.LossPct, r.RTP.Reordered, r.RTP.Duplicated, r.RTP.Foreign)
		if r.RTP.Lost > 0 {
			fmt.Fprintf(w, "         lost at call start %d, mid-call %d, at call end %d\n", r.RTP.LostAtStart, r.RTP.LostMidCall, r.RTP.LostAtEnd)
		}
		fmt.Fprintf(w, "latency  one-way p50 %.0f µs  p99 %.0f µs  p99.9 %.0f µs  max %.0f µs\n",
			r.RTP.LatencyUs.P50, r.RTP.LatencyUs.P99, r.RTP.LatencyUs.P999, r.RTP.LatencyUs.Max)
	}
	if r.DTMF != nil {
		fmt.Fprintf(w, "dtmf     keys sent %d  events received %d\n", r.DTMF.KeysSent, r.DTMF.EventsReceived)
	}
	if e := r.Extensions; e != nil {
		fmt.Fprintf(w, "100rel   caller PRACKed %d, callee sent %d reliable 180s, %d PRACKed\n", e.CallerPRACKs, e.CalleeReliable, e.CalleePRACKed)
		fmt.Fprintf(w, "timers   caller got Session-Expires in %d answers, callee was asked in %d INVITEs\n", e.CallerTimers, e.CalleeTimerAsked)
	}
	if v := r.Reinvites; v != nil {
		fmt.Fprintf(w, "reinvite answered by the caller %d, the callee %d, refused %d; media moved %d; ACKed %d, not %d\n",
			v.CallerAnswered, v.CalleeAnswered, v.Refused, v.MediaMoved, v.ACKed, v.NotACKed)
	}
	if a := r.API; a != nil {
		fmt.Fprintf(w, "api      hold ok %d failed %d  unhold ok %d failed %d  op p50 %.1f ms p99 %.1f ms\n",
			a.HoldOK, a.HoldFailed, a.UnholdOK, a.UnholdFailed, a.OpMs.P50, a.OpMs.P99)
		if l := a.Listeners; l != nil {
			if l.Skipped != "" {
				fmt.Fprintf(w, "listen   skipped: %s\n", l.Skipped)
			} else {
				fmt.Fprintf(w, "listen   started %d/%d  failed %d  packets %d\n", l.Started, l.Requested, l.Failed, l.Packets)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(a.Errors)) {
			fmt.Fprintf(w, "         api error: %s × %d\n", k, a.Errors[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.CalleeErrors)) {
		fmt.Fprintf(w, "callee   %s × %d\n", k, r.CalleeErrors[k])
	}
	fmt.Fprintf(w, "generator cpu %.2f s  socket drops %d\n", r.Generator.CPUSeconds, r.Generator.SocketDrops)
}

// OK reports whether every call succeeded (and at least one was placed).
func (r *Result) OK() bool { return r.Calls.Attempted > 0 && r.Calls.OK == r.Calls.Attempted }

// Progress is a live snapshot of a run.
type Progress struct {
	Attempted, Answered, OK, Failed uint64
	Active                          int64
	RTPSent, RTPReceived            uint64
	// MaxLatency is the highest one-way latency since the previous call
	// of Progress.
	MaxLatency time.Duration
	// ListenersStarted and ListenerPackets count the WebRTC listeners
	// attached so far and the RTP they received.
	ListenersStarted, ListenerPackets uint64
	// ListenUnavailable is set once the API answered 501 to a listener.
	ListenUnavailable bool
}

// Progress returns the counters now; safe to call while Run runs.
func (g *Generator) Progress() Progress {
	p := Progress{Attempted: g.attempted.Load(), Answered: g.answered.Load(), OK: g.ok.Load(),
		Failed: g.failed.Load(), Active: g.active.Load()}
	for _, m := range g.allMedia() {
		p.RTPSent += m.sent.Load()
		p.RTPReceived += m.rx.unique.Load()
		p.MaxLatency = max(p.MaxLatency, time.Duration(m.maxLat.Swap(0)))
	}
	if a := g.api; a != nil {
		a.mu.Lock()
		p.ListenersStarted = a.lst.Started
		a.mu.Unlock()
		p.ListenerPackets = a.packets.Load()
		p.ListenUnavailable = a.noListn.Load()
	}
	return p
}

// Latency returns a copy of the one-way latency histogram so far; with
// Histogram.Since, the latency of a window of the run.
func (g *Generator) Latency() *Histogram {
	h := NewHistogram()
	for _, m := range g.allMedia() {
		m.histMu.Lock()
		h.Merge(m.hist)
		m.histMu.Unlock()
	}
	return h
}

// progressLoop prints a line a second to cfg.Progress until stopped.
func (g *Generator) progressLoop(start time.Time) (stop func()) {
	w := g.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p := g.Progress()
				var b strings.Builder
				fmt.Fprintf(&b, "%5.0fs  calls %d answered %d ok %d failed %d active %d",
					time.Since(start).Seconds(), p.Attempted, p.Answered, p.OK, p.Failed, p.Active)
				if g.cfg.RTP {
					fmt.Fprintf(&b, "  rtp sent %d received %d  latency max %.1f ms", p.RTPSent, p.RTPReceived, p.MaxLatency.Seconds()*1000)
				}
				fmt.Fprintln(w, b.String())
			}
		}
	}()
	return func() { close(done); <-ended }
}

package loadgen

// placeLoopback starts "call" i of a loopback run: no SIP and no target,
// the caller side's RTP socket streams straight to the callee side's and
// back. It measures the generator alone: the baseline under the latency
// and CPU figures of a run through a target.
func (g *Generator) placeLoopback(i int) {
	a, b := mediaFor(g.uacMedia, i), mediaFor(g.uasMedia, i)
	g.calls.Add(1)
	g.attempted.Add(1)
	g.answered.Add(1)
	if n := g.active.Add(1); n > g.peak.Load() {
		g.peak.Store(n)
	}
	ab, ba := newStream(g.table, b.addr), newStream(g.table, a.addr)
	a.start(ab)
	b.start(ba)
	g.sched.after(g.cfg.Hold, func() {
		ab.state.Store(streamStopped)
		ba.state.Store(streamStopped)
		// Let the last packets arrive before the call counts as done.
		g.sched.after(g.cfg.Drain, func() {
			g.ok.Add(1)
			g.active.Add(-1)
			if g.slots != nil {
				<-g.slots
			}
			g.calls.Done()
		})
	})
}

package main

import (
	"fmt"
	"time"

	"github.com/callctl/callctl/internal/loadgen"
)

// rssSoak places s.opt.soakCalls calls without RTP (each held 1 s) at
// s.opt.soakRate on one fresh callctl, samples its RSS every 5 s, and 11 s
// after the last call (when the sessions it retains have expired) once
// more. What ended calls and completed transactions keep shows as the
// level RSS climbs to; a leak as growth after it.
func (s *suite) rssSoak() {
	rate, total := s.opt.soakRate, s.opt.soakCalls
	need := time.Duration(float64(total)/rate*float64(time.Second)) + 20*time.Second
	if s.left() < need+2*time.Minute {
		s.note("RSS soak: skipped, %v does not fit in the suite's time", need.Round(time.Second))
		return
	}
	c, err := s.startCallctl()
	if err != nil {
		s.note("RSS soak: %v", err)
		return
	}
	defer c.stop()
	soak := &Soak{Rate: rate}
	s.rep.RSSSoak = soak
	cfg := s.baseConfig()
	cfg.Rate, cfg.Calls, cfg.Hold, cfg.SetupTimeout = rate, total, time.Second, 5*time.Second
	sample := func(calls uint64) {
		st := c.stat()
		soak.RSSSamples = append(soak.RSSSamples, RSSAt{Calls: calls, RSSKiB: st.RSSKiB})
		soak.MaxKiB = max(soak.MaxKiB, st.RSSKiB, st.HWMKiB)
	}
	sample(0)
	r, err := runGenerator(s.ctx, cfg, func(g *loadgen.Generator) {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-s.ctx.Done():
				return
			}
			p := g.Progress()
			sample(p.OK + p.Failed)
			if p.Active == 0 && p.OK+p.Failed == p.Attempted && p.Attempted > 0 {
				return
			}
		}
	})
	if r == nil {
		s.note("RSS soak: %v", err)
		return
	}
	done := r.Calls.OK + r.Calls.Failed
	soak.Calls = r.Calls.OK
	if f := r.Calls.Attempted - r.Calls.OK; f > 0 {
		s.note("RSS soak: %d of %d calls failed (%v)", f, r.Calls.Attempted, r.Calls.FailedBy)
	}
	sleepCtx(s.ctx, 11*time.Second)
	sample(done)
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
	s.logf("RSS soak: %d calls at %.0f/s, RSS level %d KiB over the second half, max %d KiB, %+.0f KiB per 10,000 calls",
		done, rate, soak.PlateauKiB, soak.MaxKiB, soak.GrowthKiBPer10k)
}

// soakTargets compares the soak with issue 10's goal (and issue 6's: no
// growth).
func soakTargets(sk *Soak, add func(name, goal, reached string, met *bool, note string)) {
	if len(sk.RSSSamples) < 3 {
		add("RSS over 100,000 calls", "levels off under 512 MiB", "not measured", nil, "")
		return
	}
	last := sk.RSSSamples[len(sk.RSSSamples)-1]
	reached := fmt.Sprintf("%d calls at %.0f/s: max %.0f MiB, level over the second half %.0f MiB, %+.0f KiB per 10,000 calls, %.0f MiB 11 s after the last call",
		last.Calls, sk.Rate, float64(sk.MaxKiB)/1024, float64(sk.PlateauKiB)/1024, sk.GrowthKiBPer10k, float64(last.RSSKiB)/1024)
	half := float64(last.Calls) / 2 / 10000
	// Growth over the second half under 2% of the level is the Go heap's
	// breathing, not a leak.
	level := sk.GrowthKiBPer10k*half < 0.02*float64(sk.PlateauKiB)
	var met *bool
	if last.Calls >= 100000 {
		met = ptr(level && sk.MaxKiB < 512<<10)
	}
	add("RSS over 100,000 calls at 1,000/s", "levels off under 512 MiB", reached, met,
		"what ended calls (calls.ended_retention, 10 s here) and completed SIP transactions keep")
}

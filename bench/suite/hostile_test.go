package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/callctl/callctl/internal/loadgen"
)

func TestSIPCountersReadsWhateverCallctlSIPFamiliesExist(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+adminToken {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`# HELP callctl_sip_refused_total refused
# TYPE callctl_sip_refused_total counter
callctl_sip_refused_total 12
# TYPE callctl_sip_dropped_total counter
callctl_sip_dropped_total{reason="rate"} 7
callctl_sip_dropped_total{reason="scanner"} 0
# TYPE callctl_live_sessions gauge
callctl_live_sessions 3
`))
	}))
	defer srv.Close()
	s := &suite{ctx: context.Background(), p: ports{api: strings.TrimPrefix(srv.URL, "http://")}}
	got, err := s.sipCounters()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"callctl_sip_refused_total": 12, `callctl_sip_dropped_total{reason="rate"}`: 7, `callctl_sip_dropped_total{reason="scanner"}`: 0}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v (callctl_sip_* only)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	d := counterDeltas(map[string]float64{"a": 1, "b": 5}, map[string]float64{"a": 1, "b": 9, "c": 2})
	if len(d) != 2 || d["b"] != 4 || d["c"] != 2 {
		t.Errorf("deltas %v, want b +4 and c +2 (a did not move)", d)
	}
}

func TestHostileTargetsJudgeTheFloodedRunsOnly(t *testing.T) {
	h := &Hostile{Calls: 100, AloneP99Us: 400, Runs: []HostileRun{
		{Name: "no flood", Sent: 1000, LatencyP99Us: 900, AddedP99Us: 500, RSSStartKiB: 20000, RSSPeakKiB: 21000, RSSGrowthKiB: 1000},
		{Name: "flood from an allowed source", Sent: 1000, Lost: 1, LossPct: 0.1, LatencyP99Us: 700000, AddedP99Us: 699600,
			RSSStartKiB: 20000, RSSPeakKiB: 1 << 20, RSSGrowthKiB: 1<<20 - 20000, LogBytesPerS: 5 << 20, CallsFailed: 3,
			Flood: &loadgen.FloodResult{InvitesSent: 90000, InvitesAnswered: 90000, AnsweredPct: 100, Reflection: 6, Responses: map[string]uint64{"403": 540000}}},
		{Name: "flood from a refused source", Sent: 1000, LatencyP99Us: 900, AddedP99Us: 500, RSSStartKiB: 20000, RSSPeakKiB: 22000, RSSGrowthKiB: 2000,
			LogBytesPerS: 100, Flood: &loadgen.FloodResult{InvitesSent: 90000}},
	}}
	var names []string
	met := map[string]bool{}
	hostileTargets(h, func(name, goal, reached string, m *bool, note string) {
		names = append(names, name)
		if m == nil {
			t.Errorf("%s: not judged", name)
			return
		}
		met[name] = *m
	})
	if len(names) != 10 {
		t.Fatalf("targets %v: want 5 for each flooded run, none for the run without a flood", names)
	}
	for _, n := range names {
		allowed := strings.Contains(n, "allowed source")
		if met[n] == allowed {
			t.Errorf("%s: met = %v, want %v", n, met[n], !allowed)
		}
	}
	var b strings.Builder
	hostileMarkdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, h)
	md := b.String()
	for _, want := range []string{"| no flood (sip.allow ) | flood from an allowed source", "403 × 540000", "6.000 (0 back)", "100.00% (0.00% shed)"} {
		if !strings.Contains(md, want) {
			t.Errorf("the hostile table lacks %q:\n%s", want, md)
		}
	}
	h.Runs[1] = HostileRun{Name: "flood from an allowed source", Crashed: "callctl exited during the run: panic: nil", Flood: &loadgen.FloodResult{}}
	var crashed []bool
	hostileTargets(h, func(name, goal, reached string, m *bool, note string) {
		if strings.Contains(name, "allowed") {
			crashed = append(crashed, *m)
		}
	})
	if len(crashed) != 1 || crashed[0] {
		t.Errorf("a crashed run gives %v, want one target, not met", crashed)
	}
}

func TestPhaseSetRefusesUnknownPhases(t *testing.T) {
	if set, err := phaseSet("hostile, soak"); err != nil || !set["hostile"] || !set["soak"] || len(set) != 2 {
		t.Errorf("phaseSet(hostile, soak) = %v, %v", set, err)
	}
	if _, err := phaseSet("hostile,nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("an unknown phase gave %v, want an error naming it", err)
	}
}

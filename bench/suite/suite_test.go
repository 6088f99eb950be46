package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/loadgen"
)

func TestParseBenchReadsPackagesMetricsAndCustomUnits(t *testing.T) {
	out := `goos: linux
pkg: github.com/callctl/callctl/internal/media
BenchmarkRelayReceiveRTP-2   	  500000	      2276 ns/op	       0 B/op	       0 allocs/op
pkg: github.com/callctl/callctl/bench
BenchmarkDTMFSendPerPacket-2   	       2	 925221788 ns/op	       180.2 B/packet	         2.054 allocs/packet	   21624 B/op	     246 allocs/op
PASS
`
	got := parseBench(out)
	if len(got) != 2 {
		t.Fatalf("parsed %d benchmarks, want 2: %+v", len(got), got)
	}
	if g := got[0]; g.Package != "internal/media" || g.Name != "RelayReceiveRTP" || g.NsPerOp != 2276 || g.AllocsPerOp != 0 {
		t.Errorf("first = %+v", g)
	}
	if g := got[1]; g.Package != "bench" || g.Extra["allocs/packet"] != 2.054 || g.AllocsPerOp != 246 || g.BytesPerOp != 21624 {
		t.Errorf("second = %+v", g)
	}
}

func TestSlopeFitsGrowthAfterTheWarmUp(t *testing.T) {
	samples := []RSSAt{{0, 1000}, {5000, 90000}} // warm-up, ignored
	for c := uint64(10000); c <= 100000; c += 10000 {
		samples = append(samples, RSSAt{Calls: c, RSSKiB: 100000 + c/100}) // 0.01 KiB per call
	}
	if got := slope(samples, 10000); math.Abs(got-0.01) > 1e-9 {
		t.Errorf("slope = %v KiB per call, want 0.01", got)
	}
	if got := slope(samples[:3], 10000); got != 0 {
		t.Errorf("slope of one sample after warm-up = %v, want 0 (not enough points)", got)
	}
}

func TestChartIsOneSVGWithBothPanels(t *testing.T) {
	r := &Report{Machine: Machine{Cores: 2, CPUModel: "Test <CPU>"}, Concurrency: []Level{
		{Calls: 100, LatencyP50Us: 200, LatencyP99Us: 600, BaseP50Us: 20, BaseP99Us: 80, CPUPerPacketUs: 12},
		{Calls: 500, LatencyP50Us: 900, LatencyP99Us: 3400, BaseP50Us: 50, BaseP99Us: 300, CPUPerPacketUs: 8},
	}}
	svg := chart(r)
	for _, want := range []string{"<svg", "</svg>", "one-way latency", "CPU per relayed packet", "Test &lt;CPU&gt;", "<polyline"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if strings.Count(svg, "<polyline") != 5 {
		t.Errorf("chart has %d lines, want 5 (4 latency, 1 CPU)", strings.Count(svg, "<polyline"))
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 7: 10, 12: 20, 4800: 5000, 5000: 5000} {
		if got := niceCeil(in); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestConfigForLoadsAndLiftsTheFloodLimitOutsideTheHostilePhase(t *testing.T) {
	p := ports{sip: "127.0.0.1:5070", api: "127.0.0.1:8080", uas: "127.0.0.1:5060", rtpLo: 20000, rtpHi: 39999}
	for _, pc := range []phaseConfig{{}, {hostile: true, allow: []string{"127.0.0.1/32"}}} {
		dir := t.TempDir()
		path := filepath.Join(dir, "callctl.yaml")
		if err := os.WriteFile(path, []byte(configFor(p, dir, 0, pc)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("hostile=%v: %v", pc.hostile, err)
		}
		want := config.Default().SIP.Flood.Rate
		if !pc.hostile {
			want = 0
		}
		if got := cfg.SIP.Flood.Rate; got != want {
			t.Errorf("hostile=%v: sip.flood.rate = %v, want %v", pc.hostile, got, want)
		}
	}
}

func TestConfigForSetsTheStoreAndADataDirectoryPerStart(t *testing.T) {
	p := ports{sip: "127.0.0.1:5070", api: "127.0.0.1:8080", uas: "127.0.0.1:5060", rtpLo: 20000, rtpHi: 39999}
	for _, store := range []string{"", "off", "embedded"} {
		dir := t.TempDir()
		path := filepath.Join(dir, "callctl.yaml")
		if err := os.WriteFile(path, []byte(configFor(p, dir, 7, phaseConfig{store: store})), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("store %q: %v", store, err)
		}
		want := store
		if want == "" {
			want = config.Default().Cluster.Store
		}
		if cfg.Cluster.Store != want || cfg.NodeName() != benchNode {
			t.Errorf("store %q: cluster.store %q node %q, want %q and %q", store, cfg.Cluster.Store, cfg.NodeName(), want, benchNode)
		}
		if store != "off" && cfg.StoreDir() != filepath.Join(dir, "nats-7") {
			t.Errorf("store %q: data dir %q, want one per start (nats-7)", store, cfg.StoreDir())
		}
	}
}

func TestRecoverySummaryCountsLostCallsAsNever(t *testing.T) {
	kill := time.Now()
	var res []loadgen.CallResume
	for i := 1; i <= 98; i++ { // back after i·10 ms
		at := kill.Add(time.Duration(i) * 10 * time.Millisecond)
		res = append(res, loadgen.CallResume{Call: i, CallerToCallee: at.Add(-5 * time.Millisecond), CalleeToCaller: at})
	}
	// One call came back one way only, one was hung up by callctl.
	res = append(res, loadgen.CallResume{Call: 99, CallerToCallee: kill.Add(time.Millisecond)},
		loadgen.CallResume{Call: 100, Ended: true})
	var run RecoveryRun
	run.summarize(kill, res)
	if run.Readopted != 98 || run.Lost != 2 || run.EndedByPeer != 1 {
		t.Errorf("readopted %d lost %d ended by callctl %d, want 98, 2, 1", run.Readopted, run.Lost, run.EndedByPeer)
	}
	if run.FirstMs != 10 || run.P50Ms != 500 {
		t.Errorf("first %v p50 %v ms, want 10 and 500 (the later direction)", run.FirstMs, run.P50Ms)
	}
	// 2 of 100 never came back: the 99th value is one of them.
	if run.P99Ms != -1 || run.MaxMs != -1 || msText(run.P99Ms) != "never" {
		t.Errorf("p99 %v max %v, want -1 (never): lost calls rank last", run.P99Ms, run.MaxMs)
	}
	one := RecoveryRun{Calls: 1000, Watched: 1000}
	one.summarize(kill, res[:98])
	r := &Report{Recovery: []RecoveryRun{one}}
	var met *bool
	recoveryTargets(r, func(name, goal, reached string, m *bool, note string) {
		if strings.HasPrefix(name, "audio again") {
			met = m
		}
	})
	if met == nil || !*met {
		t.Errorf("p99 %v ms at 1,000 calls: target not met, want met", one.P99Ms)
	}
}

func TestResultLabel(t *testing.T) {
	if got := resultLabel(`callctl_store_writes_total{result="conflict"}`); got != "conflict" {
		t.Errorf("resultLabel = %q, want conflict", got)
	}
}

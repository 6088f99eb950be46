// Command suite is callctl's benchmark suite, run by `make bench`: it
// starts the built callctl (bin/callctl) for each phase, drives it with the
// load generator (internal/loadgen) on loopback, reads callctl's CPU time
// and RSS from /proc, runs the Go micro-benchmarks and in-process CPU
// profiles, and writes bench/results/latest.{json,md,svg}. What each figure
// means and how it is measured: bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callctl/callctl/internal/loadgen"
)

// options are the suite's flags.
type options struct {
	probe     time.Duration // each call-rate probe
	sustain   time.Duration // the sustained call-rate run
	window    time.Duration // each concurrency level's measurement
	rates     []float64
	levels    []int
	sippCalls int
	listenN   int // calls with listeners; 2 listeners each
	skip      map[string]bool
	only      map[string]bool // if set, only these phases run

	hostileCalls  int           // live calls of the hostile phase
	hostileWindow time.Duration // how long each flood sends
	floodRate     float64       // flood INVITEs per second
	garbageRate   float64       // garbage datagrams per second
	garbage       []string      // garbage kinds (loadgen.GarbageKinds)

	soakRate  float64 // the RSS soak's calls per second
	soakCalls int

	storeRun      time.Duration // each call-rate run of the store phase
	storeRate     float64       // its rate; 0: the rate phase's sustained rate, else 1,000/s
	recoveryCalls []int         // the recovery phase's call counts
}

// runs reports whether phase runs in this suite (-only, -skip).
func (s *suite) runs(phase string) bool {
	return !s.opt.skip[phase] && (len(s.opt.only) == 0 || s.opt.only[phase])
}

func main() {
	var (
		s        suite
		budget   time.Duration
		rates    string
		levels   string
		skip     string
		render   string
		only     string
		garb     string
		recCalls string
	)
	flag.StringVar(&s.bin, "callctl", "bin/callctl", "the built callctl `binary`")
	flag.StringVar(&s.loadBin, "load", "bin/callctl-load", "the built generator `binary` (for the in-process profiles)")
	flag.StringVar(&s.goBin, "go", "go", "the go command (micro-benchmarks, pprof)")
	flag.StringVar(&s.out, "out", "bench/results", "results `directory`")
	flag.DurationVar(&budget, "budget", 18*time.Minute, "the whole suite's time limit; phases that would not fit are skipped and noted")
	flag.DurationVar(&s.opt.probe, "probe", 6*time.Second, "length of each call-rate probe")
	flag.DurationVar(&s.opt.sustain, "sustain", 60*time.Second, "length of the sustained call-rate run")
	flag.DurationVar(&s.opt.window, "window", 15*time.Second, "measurement window of each concurrency level")
	flag.StringVar(&rates, "rates", "100,200,300,400,500,650,800,1000,1250,1500,2000", "call-rate probes, calls/s, in order")
	flag.StringVar(&levels, "levels", "100,250,500,1000,1500,2000", "concurrency levels with RTP, in order")
	flag.IntVar(&s.opt.sippCalls, "sipp-calls", 500, "calls through SIPp's RTP echo (one stream each: the packet rate of half as many calls through callctl)")
	flag.IntVar(&s.opt.listenN, "listener-calls", 100, "calls with 2 WebRTC listeners each")
	flag.StringVar(&skip, "skip", "", "comma-separated phases to skip: "+strings.Join(phaseNames, ", "))
	flag.StringVar(&only, "only", "", "comma-separated phases to run, the others skipped (e.g. hostile,soak)")
	flag.IntVar(&s.opt.hostileCalls, "hostile-calls", 100, "live calls with RTP during the hostile phase")
	flag.DurationVar(&s.opt.hostileWindow, "hostile-window", 30*time.Second, "how long each flood of the hostile phase sends (and the window without one)")
	flag.Float64Var(&s.opt.floodRate, "flood-rate", 3000, "the hostile phase's flood: INVITEs per second from one source")
	flag.Float64Var(&s.opt.garbageRate, "garbage-rate", 300, "garbage datagrams per second mixed into the flood")
	flag.StringVar(&garb, "garbage", "random,truncated,missing-header", "garbage kinds of the flood: "+strings.Join(loadgen.GarbageKinds(), ", "))
	flag.Float64Var(&s.opt.soakRate, "soak-rate", 1000, "calls per second of the RSS soak")
	flag.IntVar(&s.opt.soakCalls, "soak-calls", 100000, "calls of the RSS soak")
	flag.DurationVar(&s.opt.storeRun, "store-run", 30*time.Second, "length of each call-rate run of the store phase (store off, then embedded)")
	flag.Float64Var(&s.opt.storeRate, "store-rate", 0, "calls per second of the store phase; 0: the rate the rate phase sustained, or 1000 without it")
	flag.StringVar(&recCalls, "recovery-calls", "100,1000", "live calls with RTP through each kill -9 of the recovery phase, in order")
	flag.StringVar(&render, "render", "", "only rewrite latest.md and latest.svg (and the targets) from this `latest.json`, measuring nothing")
	flag.Parse()
	if render != "" {
		if err := rerender(render, s.out); err != nil {
			fatal(1, "%v", err)
		}
		return
	}
	var err error
	if s.opt.rates, err = floats(rates); err != nil {
		fatal(2, "-rates: %v", err)
	}
	var lv []float64
	if lv, err = floats(levels); err != nil {
		fatal(2, "-levels: %v", err)
	}
	for _, v := range lv {
		s.opt.levels = append(s.opt.levels, int(v))
	}
	var rc []float64
	if rc, err = floats(recCalls); err != nil {
		fatal(2, "-recovery-calls: %v", err)
	}
	for _, v := range rc {
		if v != math.Trunc(v) || v > 20000 {
			fatal(2, "-recovery-calls: %v is not a whole number of calls from 1 to 20000 (calls.max_sessions)", v)
		}
		s.opt.recoveryCalls = append(s.opt.recoveryCalls, int(v))
	}
	if s.opt.storeRun < time.Second {
		fatal(2, "-store-run: %v; want at least 1s", s.opt.storeRun)
	}
	if s.opt.storeRate < 0 {
		fatal(2, "-store-rate: %v; want 0 (the sustained rate) or a positive rate", s.opt.storeRate)
	}
	if s.opt.skip, err = phaseSet(skip); err != nil {
		fatal(2, "-skip: %v", err)
	}
	if s.opt.only, err = phaseSet(only); err != nil {
		fatal(2, "-only: %v", err)
	}
	for _, k := range strings.Split(garb, ",") {
		if k = strings.TrimSpace(k); k != "" {
			s.opt.garbage = append(s.opt.garbage, k)
		}
	}
	if err := (loadgen.FloodConfig{Target: "127.0.0.1:5070", Duration: time.Second, Garbage: s.opt.garbage}).Validate(); err != nil {
		fatal(2, "-garbage: %v", err)
	}
	for _, b := range []string{s.bin, s.loadBin} {
		if _, err := os.Stat(b); err != nil {
			fatal(2, "%v (run `make bench`, which builds it)", err)
		}
	}
	if s.bin, err = filepath.Abs(s.bin); err != nil {
		fatal(2, "%v", err)
	}
	if s.loadBin, err = filepath.Abs(s.loadBin); err != nil {
		fatal(2, "%v", err)
	}
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		fatal(1, "%v", err)
	}
	if s.dir, err = os.MkdirTemp("", "callctl-bench-"); err != nil {
		fatal(1, "%v", err)
	}
	defer os.RemoveAll(s.dir)
	if s.p, err = freePorts(); err != nil {
		fatal(1, "%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s.ctx = ctx
	start := time.Now()
	s.deadline = start.Add(budget)
	s.rep = &Report{Generated: start.UTC().Format(time.RFC3339), Machine: machine()}
	s.logf("machine: %d cores, %s, load average %s; scratch %s", s.rep.Machine.Cores, s.rep.Machine.CPUModel, s.rep.Machine.LoadStart, s.dir)

	phases := []struct {
		name string
		run  func()
	}{
		{"micro", s.micro},
		{"concurrency", s.concurrency},
		{"baseline", s.baseline},
		{"sipp", s.sippEcho},
		{"listeners", s.listeners},
		{"hostile", s.hostile},
		{"soak", s.rssSoak},
		{"rate", s.callRate},
		{"extensions", s.extensionsPhase},
		{"store", s.storePhase},
		{"recovery", s.recovery},
		{"profiles", func() { s.profiles(profileRate(s.rep)) }},
	}
	for _, ph := range phases {
		if ctx.Err() != nil {
			break
		}
		if s.opt.skip[ph.name] {
			s.note("%s: skipped (-skip)", ph.name)
			continue
		}
		if !s.runs(ph.name) {
			s.logf("%s: not selected (-only)", ph.name)
			continue
		}
		t := time.Now()
		s.logf("== %s (%.0fs left)", ph.name, s.left().Seconds())
		ph.run()
		s.logf("== %s took %.0fs", ph.name, time.Since(t).Seconds())
	}
	s.rep.Machine.LoadEnd = loadAvg()
	s.rep.DurationS = round(time.Since(start).Seconds(), 1)
	s.rep.Targets = targets(s.rep)
	if err := writeResults(s.out, s.rep); err != nil {
		fatal(1, "%v", err)
	}
	s.logf("done in %.0fs: %s", s.rep.DurationS, filepath.Join(s.out, "latest.md"))
	if ctx.Err() != nil {
		os.Exit(1)
	}
}

// phaseNames are the suite's phases, in the order they run.
var phaseNames = []string{"micro", "concurrency", "baseline", "sipp", "listeners", "hostile", "soak", "rate", "extensions", "store", "recovery", "profiles"}

// phaseSet parses a comma-separated list of phase names.
func phaseSet(list string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(phaseNames, p) {
			return nil, fmt.Errorf("no phase %q; the phases are %s", p, strings.Join(phaseNames, ", "))
		}
		set[p] = true
	}
	return set, nil
}

// profileRate is the call rate of the call-rate profile: 70% of the rate
// sustained, so that callctl is busy but not failing.
func profileRate(r *Report) float64 {
	if cr := r.CallRate; cr != nil {
		for _, run := range []*RateRun{cr.Sustained, cr.Retry} {
			if run != nil && run.Passed {
				return max(50, float64(int(run.Rate*0.7/10))*10)
			}
		}
	}
	return 200
}

func floats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func fatal(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(code)
}

// Command callctl-load is callctl's load generator: it places calls through
// a SIP target (callctl, another B2BUA, or a plain SIPp UAS with
// -target-is-uas), answers them on the far side, streams RTP both ways and
// reports set-up times, loss, reordering and latency as JSON and a summary.
//
//	callctl-load -target 127.0.0.1:5070 -uas 127.0.0.1:5060 -calls 100 -rate 20 -hold 10s
//	callctl-load -inproc -calls 5 -hold 1s                # callctl started in this process
//	callctl-load -target 127.0.0.1:5080 -target-is-uas   # sipp -sn uas -rtp_echo on 5080
//	callctl-load -calls 100 -hold 40s -flood-source 127.0.0.5 -flood-after 5s -flood-duration 30s
//	callctl-load -target 127.0.0.1:5070 -calls 0 -flood-source 127.0.0.5   # the flood alone
//
// The -flood-* flags add a flood from another source address (INVITEs with
// fresh Call-IDs at a rate, mixed with garbage datagrams) and count what
// the target answers to it: how much it shed, how much it reflected.
//
// The exit code is 0 when every call succeeded, 1 when any failed, 2 for bad
// usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/callctl/callctl/internal/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("callctl-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        loadgen.Config
		noRTP      bool
		jsonOut    string
		quiet      bool
		cpuprofile string
		memprofile string
		inproc     bool
		inprocRTP  string
		inprocKeep time.Duration
		inprocStor string
		pid        int
		flood      floodFlags
	)
	fs.StringVar(&cfg.Target, "target", "127.0.0.1:5070", "SIP `host:port` to place calls through (callctl's sip.listen)")
	fs.BoolVar(&cfg.Loopback, "loopback", false, "no target: RTP only, straight between the two sides (the generator's own baseline)")
	fs.BoolVar(&cfg.TargetIsUAS, "target-is-uas", false, "the target answers the calls itself and echoes RTP (sipp -sn uas -rtp_echo): no callee side")
	fs.StringVar(&cfg.UASListen, "uas", "127.0.0.1:5060", "callee side's SIP `host:port` (callctl's trunk.address); port 0 picks one")
	fs.IntVar(&cfg.Calls, "calls", 0, "number of calls to place (0: as many as -duration allows)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to place calls (0: until -calls)")
	fs.Float64Var(&cfg.Rate, "rate", 10, "new calls per second")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "most calls up at once (0: no cap)")
	fs.DurationVar(&cfg.Hold, "hold", 5*time.Second, "call length from 200 OK to BYE")
	fs.DurationVar(&cfg.RingTime, "ring", 0, "callee side rings this long before answering")
	fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", 32*time.Second, "a call with no final answer to its INVITE in this time fails")
	fs.BoolVar(&noRTP, "no-rtp", false, "signalling only: no RTP")
	fs.BoolVar(&cfg.Extensions, "100rel-timers", false, "negotiate RFC 3262 reliable provisionals (with PRACK) and RFC 4028 session timers on both legs")
	fs.IntVar(&cfg.MediaSockets, "media-sockets", 2, "shared RTP sockets per side")
	fs.StringVar(&cfg.DTMF, "dtmf", "", "`keys` the caller sends per call as RFC 4733 events (e.g. 123#)")
	fs.StringVar(&cfg.API.URL, "api", "", "callctl API base `URL` for per-call operations (e.g. http://127.0.0.1:8080)")
	fs.StringVar(&cfg.API.Token, "api-token", os.Getenv("CALLCTL_TOKEN"), "API bearer token (default $CALLCTL_TOKEN)")
	fs.BoolVar(&cfg.API.HoldUnhold, "hold-unhold", false, "hold each call at a third of -hold and unhold it at two thirds, through the API")
	fs.IntVar(&cfg.API.Listeners, "listeners", 0, "WebRTC listen-in clients per call, through the API (skipped if it answers 501)")
	fs.StringVar(&jsonOut, "json", "", "write the JSON result to `FILE` (- for stdout)")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of this process to `FILE` (with -inproc it covers callctl too; the generator's goroutines carry the label side=loadgen)")
	fs.StringVar(&memprofile, "memprofile", "", "write a heap profile of this process to `FILE` once every call is up (with -inproc: callctl's memory per call)")
	fs.BoolVar(&inproc, "inproc", false, "start callctl in this process as the target (its SIP, API and trunk are set up for the run)")
	fs.StringVar(&inprocRTP, "inproc-rtp-ports", "40000-43999", "RTP port range of the in-process callctl")
	fs.DurationVar(&inprocKeep, "inproc-ended-retention", 0, "calls.ended_retention of the in-process callctl (0: its default, 5m); shorter keeps ended sessions out of a -memprofile")
	fs.StringVar(&inprocStor, "inproc-store", "embedded", "cluster.store of the in-process callctl: embedded (NATS JetStream in the process, its files in a temporary directory) or off")
	fs.IntVar(&pid, "pid", 0, "report this process's CPU time and RSS over the run (e.g. callctl's)")
	flood.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "callctl-load: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.RTP = !noRTP
	floodOnly := flood.enabled() && cfg.Calls == 0 && cfg.Duration == 0
	if flood.enabled() {
		check := flood.cfg
		check.Target = cfg.Target
		check.Garbage = strings.Split(flood.garbage, ",")
		if err := check.Validate(); err != nil {
			fmt.Fprintf(stderr, "callctl-load: %v\n", err)
			return 2
		}
	}
	if !quiet {
		cfg.Progress = stderr
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "callctl-load: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "callctl-load: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	if inproc && cfg.TargetIsUAS {
		fmt.Fprintln(stderr, "callctl-load: -inproc and -target-is-uas exclude each other")
		return 2
	}
	if inproc {
		if inprocStor != "embedded" && inprocStor != "off" {
			fmt.Fprintf(stderr, "callctl-load: -inproc-store %q: want embedded or off\n", inprocStor)
			return 2
		}
		c, err := startInprocFor(&cfg, inprocRTP, inprocKeep, inprocStor, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "callctl-load: %v\n", err)
			return 2
		}
		defer c.stop()
	}
	if floodOnly {
		return runFloodOnly(ctx, &flood, cfg.Target, jsonOut, stdout, stderr)
	}
	var code int
	// The generator's goroutines carry a profile label, so that a profile
	// of an -inproc run can be split: -tagfocus side=callctl is callctl,
	// -tagfocus side=loadgen the generator.
	pprof.Do(ctx, pprof.Labels("side", "loadgen"), func(ctx context.Context) {
		g, err := loadgen.New(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "callctl-load: %v\n", err)
			code = 2
			return
		}
		defer g.Close()
		var before loadgen.ProcStat
		if pid > 0 {
			if before, err = loadgen.ReadProcStat(pid); err != nil {
				fmt.Fprintf(stderr, "callctl-load: -pid %d: %v\n", pid, err)
				code = 2
				return
			}
		}
		var heapWritten chan struct{}
		runDone := make(chan struct{})
		if memprofile != "" {
			heapWritten = make(chan struct{})
			go func() {
				defer close(heapWritten)
				writeHeapProfile(ctx, g, cfg, memprofile, runDone, stderr)
			}()
		}
		var floodWait func() (*loadgen.FloodResult, error)
		if flood.enabled() {
			floodWait = flood.start(ctx, cfg.Target)
		}
		res, err := g.Run(ctx)
		close(runDone)
		if heapWritten != nil {
			<-heapWritten // the calls may end before the profile's second of settling
		}
		var fr *loadgen.FloodResult
		if floodWait != nil {
			var ferr error
			if fr, ferr = floodWait(); fr == nil {
				fmt.Fprintf(stderr, "callctl-load: flood: %v\n", ferr)
			}
		}
		if res == nil {
			fmt.Fprintf(stderr, "callctl-load: %v\n", err)
			code = 1
			return
		}
		out := struct {
			*loadgen.Result
			Process *procResult          `json:"process,omitempty"`
			Flood   *loadgen.FloodResult `json:"flood,omitempty"`
		}{Result: res, Flood: fr}
		if pid > 0 {
			if after, err := loadgen.ReadProcStat(pid); err == nil {
				out.Process = newProcResult(pid, before, after, res)
			}
		}
		res.WriteSummary(stdout)
		if fr != nil {
			fr.WriteSummary(stdout)
		}
		if out.Process != nil {
			out.Process.write(stdout)
		}
		if jsonOut != "" {
			if err := writeJSON(jsonOut, stdout, out); err != nil {
				fmt.Fprintf(stderr, "callctl-load: %v\n", err)
				code = 2
				return
			}
		}
		if errors.Is(err, context.Canceled) || !res.OK() {
			code = 1
		}
	})
	return code
}

// runFloodOnly floods target with no calls beside it; the exit code is 0
// when the flood ran (what the target answered is its result, not a
// verdict).
func runFloodOnly(ctx context.Context, flood *floodFlags, target, jsonOut string, stdout, stderr io.Writer) int {
	r, err := flood.start(ctx, target)()
	if r == nil {
		fmt.Fprintf(stderr, "callctl-load: flood: %v\n", err)
		return 2
	}
	r.WriteSummary(stdout)
	if jsonOut != "" {
		if err := writeJSON(jsonOut, stdout, struct {
			Flood *loadgen.FloodResult `json:"flood"`
		}{r}); err != nil {
			fmt.Fprintf(stderr, "callctl-load: %v\n", err)
			return 2
		}
	}
	if err != nil {
		return 1
	}
	return 0
}

// startInprocFor starts callctl in this process for cfg: its trunk is a
// port reserved for the generator's callee side, and the generator targets
// its SIP address (and API, if none was given).
func startInprocFor(cfg *loadgen.Config, rtpPorts string, retention time.Duration, store string, stderr io.Writer) (*inprocCallctl, error) {
	// callctl's trunk is fixed when it starts: give the callee side a
	// port now, and callctl that port as its trunk.
	uas, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	c, err := startInproc(uas, rtpPorts, retention, store, stderr)
	if err != nil {
		return nil, err
	}
	cfg.UASListen, cfg.Target = uas, c.sipAddr
	if cfg.API.URL == "" {
		cfg.API.URL, cfg.API.Token = c.apiURL, c.token
	}
	return c, nil
}

func writeJSON(path string, stdout io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// procResult is what -pid reports about another process.
type procResult struct {
	PID             int     `json:"pid"`
	CPUSeconds      float64 `json:"cpu_s"`
	RSSBeforeKiB    uint64  `json:"rss_before_kib"`
	RSSAfterKiB     uint64  `json:"rss_after_kib"`
	CPUPerCallUs    float64 `json:"cpu_per_call_us,omitempty"`
	CPUPerPacketUs  float64 `json:"cpu_per_packet_us,omitempty"`
	CPUUtilisation  float64 `json:"cpu_cores"`
	RelayedPackets  uint64  `json:"relayed_packets"`
	CompletedCalls  uint64  `json:"completed_calls"`
	MeasuredSeconds float64 `json:"measured_s"`
}

func newProcResult(pid int, before, after loadgen.ProcStat, r *loadgen.Result) *procResult {
	cpu := (after.CPU() - before.CPU()).Seconds()
	p := &procResult{PID: pid, CPUSeconds: cpu, RSSBeforeKiB: before.RSSKiB, RSSAfterKiB: after.RSSKiB,
		RelayedPackets: r.RTP.Received, CompletedCalls: r.Calls.OK, MeasuredSeconds: r.DurationS}
	if r.Calls.OK > 0 && !r.RTPEnabled {
		p.CPUPerCallUs = cpu * 1e6 / float64(r.Calls.OK)
	}
	if r.RTP.Received > 0 {
		p.CPUPerPacketUs = cpu * 1e6 / float64(r.RTP.Received)
	}
	if r.DurationS > 0 {
		p.CPUUtilisation = cpu / r.DurationS
	}
	return p
}

func (p *procResult) write(w io.Writer) {
	fmt.Fprintf(w, "process  pid %d  cpu %.2f s (%.2f cores)  rss %d → %d KiB", p.PID, p.CPUSeconds, p.CPUUtilisation, p.RSSBeforeKiB, p.RSSAfterKiB)
	if p.CPUPerCallUs > 0 {
		fmt.Fprintf(w, "  %.0f µs/call", p.CPUPerCallUs)
	}
	if p.CPUPerPacketUs > 0 {
		fmt.Fprintf(w, "  %.2f µs/packet (set-up and tear-down included)", p.CPUPerPacketUs)
	}
	fmt.Fprintln(w)
}

// writeHeapProfile writes a heap profile once every call of the run is up,
// or, for a run by duration, near its end (90% of -duration).
func writeHeapProfile(ctx context.Context, g *loadgen.Generator, cfg loadgen.Config, path string, runDone <-chan struct{}, stderr io.Writer) {
	start := time.Now()
	wait := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-runDone:
			return false
		}
	}
	for ctx.Err() == nil {
		p := g.Progress()
		if (cfg.Calls > 0 && p.Answered >= uint64(cfg.Calls)) || (cfg.Calls == 0 && time.Since(start) >= cfg.Duration*9/10) {
			wait(time.Second)
			break
		}
		if !wait(100 * time.Millisecond) {
			break // the run ended first (failed calls): profile what is left
		}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "callctl-load: %v\n", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		fmt.Fprintf(stderr, "callctl-load: heap profile: %v\n", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(stderr, "callctl-load: heap profile written with %d calls up: %d goroutines, heap in use %d KiB, stacks %d KiB, Go runtime total %d KiB\n",
		g.Progress().Active, runtime.NumGoroutine(), ms.HeapInuse>>10, ms.StackInuse>>10, ms.Sys>>10)
}

package main

import (
	"context"
	"flag"
	"strings"
	"time"

	"github.com/callctl/callctl/internal/loadgen"
)

// floodFlags are the -flood-* flags: a flood from a second source beside
// (or instead of) the calls, to measure what it costs them.
type floodFlags struct {
	cfg     loadgen.FloodConfig
	garbage string
	after   time.Duration
}

func (f *floodFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cfg.Source, "flood-source", "", "flood the target from this local IPv4 `address` (e.g. 127.0.0.5) beside the calls; with neither -calls nor -duration, only the flood runs")
	fs.Float64Var(&f.cfg.Rate, "flood-rate", 3000, "flood INVITEs per second, each with a fresh Call-ID and branch")
	fs.Float64Var(&f.cfg.GarbageRate, "flood-garbage-rate", 300, "garbage datagrams per second mixed into the flood (0: none)")
	fs.StringVar(&f.garbage, "flood-garbage", "random,truncated,missing-header", "comma-separated garbage `kinds`: "+strings.Join(loadgen.GarbageKinds(), ", "))
	fs.StringVar(&f.cfg.UserAgent, "flood-ua", "callctl-flood", "User-Agent of the flood's INVITEs (e.g. friendly-scanner, to try a scanner filter)")
	fs.DurationVar(&f.cfg.Duration, "flood-duration", 10*time.Second, "how long the flood sends")
	fs.DurationVar(&f.after, "flood-after", 0, "start the flood this long after the first call")
	fs.DurationVar(&f.cfg.Linger, "flood-linger", 2*time.Second, "go on counting the target's answers this long after the flood's last datagram")
}

func (f *floodFlags) enabled() bool { return f.cfg.Source != "" }

// start runs the flood against target in the background; wait returns
// its result.
func (f *floodFlags) start(ctx context.Context, target string) (wait func() (*loadgen.FloodResult, error)) {
	cfg := f.cfg
	cfg.Target = target
	for _, k := range strings.Split(f.garbage, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.Garbage = append(cfg.Garbage, k)
		}
	}
	type out struct {
		r   *loadgen.FloodResult
		err error
	}
	ch := make(chan out, 1)
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(f.after):
		}
		r, err := loadgen.Flood(ctx, cfg)
		ch <- out{r, err}
	}()
	return func() (*loadgen.FloodResult, error) { o := <-ch; return o.r, o.err }
}

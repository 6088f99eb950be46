package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callctl/callctl/internal/loadgen"
)

// ports are the loopback addresses of one suite run.
type ports struct {
	sip, api, uas string // callctl SIP, callctl API, the generator's callee side
	rtpLo, rtpHi  int    // callctl's RTP range: below the ephemeral ports the generator binds
}

// callctlProc is the built callctl binary running for one phase.
type callctlProc struct {
	cmd  *exec.Cmd
	pid  int
	log  string
	done chan struct{}
	err  error
}

const adminToken = "bench-admin-token"

// phaseConfig is what a phase changes in callctl's configuration.
type phaseConfig struct {
	// allow is sip.allow; empty keeps the default (all of loopback).
	allow []string
	// hostile keeps callctl's flood protection at its defaults: the
	// hostile phase measures it. The other phases lift it (liftFloodLimit).
	hostile bool
	// store is cluster.store (config.ClusterStores); empty keeps the
	// default, embedded. Each start has its own JetStream directory.
	store string
}

// benchNode is cluster.node of every start: a callctl started again finds
// the records of its node (the host name would do too, but a fixed name
// says what the records are).
const benchNode = "bench"

// liftFloodLimit is YAML under sip: for every phase but the hostile one.
// The throughput phases send far more new requests from one source (the
// generator's 127.0.0.1: up to 2,000 calls/s, each an INVITE and a BYE)
// than callctl's per-source flood limit (sip.flood; defaults 100/s, burst
// 200) lets through, which would measure the limit, not callctl. Rate 0
// turns the limiter off (internal/flood: Config.Rate); the other
// sip.flood keys stay at their defaults and do nothing then.
const liftFloodLimit = "  flood:\n    rate: 0\n"

// configFor is the run's callctl configuration: the defaults, except what
// a load run needs (see bench/README.md, "Configuration").
func configFor(p ports, dir string, n int, pc phaseConfig) string {
	sip := ""
	if len(pc.allow) > 0 {
		sip += "  allow: [" + strings.Join(quoteAll(pc.allow), ", ") + "]\n"
	}
	if !pc.hostile {
		sip += liftFloodLimit
	}
	cluster := "cluster:\n  node: " + benchNode + "\n"
	if pc.store != "" {
		cluster += "  store: " + pc.store + "\n"
	}
	if pc.store != "off" {
		cluster += "  data_dir: " + filepath.Join(dir, "nats-"+strconv.Itoa(n)) + "\n"
	}
	return fmt.Sprintf(`# callctl configuration of a benchmark phase (bench/suite).
sip:
  listen: %s
  transports: [udp]
%strunk:
  address: %s
calls:
  max_sessions: 20000
  ended_retention: 10s
media:
  rtp_ports: %d-%d
  port_rest: 1s
api:
  listen: %s
audit:
  path: %s
admin:
  token: %s
log:
  level: info
shutdown:
  drain_timeout: 1s
%s`, p.sip, sip, p.uas, p.rtpLo, p.rtpHi, p.api, filepath.Join(dir, "audit-"+strconv.Itoa(n)+".db"), adminToken, cluster)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// startCallctl starts bin with a fresh configuration and audit database
// and waits until its API answers /readyz.
func startCallctl(bin, dir string, p ports, n int, pc phaseConfig) (*callctlProc, error) {
	cfgPath := filepath.Join(dir, "callctl-"+strconv.Itoa(n)+".yaml")
	if err := os.WriteFile(cfgPath, []byte(configFor(p, dir, n, pc)), 0o600); err != nil {
		return nil, err
	}
	return launch(bin, cfgPath, filepath.Join(dir, "callctl-"+strconv.Itoa(n)+".log"), p.api)
}

// restartCallctl starts bin again on start n's configuration: the same
// addresses, node, audit database and JetStream directory, as an operator
// (or systemd) starts a callctl that died. Its log is a file of its own.
func restartCallctl(bin, dir string, p ports, n int) (*callctlProc, error) {
	return launch(bin, filepath.Join(dir, "callctl-"+strconv.Itoa(n)+".yaml"), filepath.Join(dir, "callctl-"+strconv.Itoa(n)+"-again.log"), p.api)
}

// launch runs bin on cfgPath and waits until api answers /readyz.
func launch(bin, cfgPath, logPath, api string) (*callctlProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	c := &callctlProc{cmd: cmd, pid: cmd.Process.Pid, log: logPath, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-c.done:
			return nil, fmt.Errorf("callctl exited at start (%v); see %s", c.err, logPath)
		default:
		}
		resp, err := http.Get("http://" + api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("callctl not ready after 15 s; see %s", logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL (kill -9: no drain, no clean-up) and
// waits until it is reaped, when its sockets are closed.
func (c *callctlProc) kill() {
	_ = syscall.Kill(c.pid, syscall.SIGKILL)
	<-c.done
}

// stat reads the process's CPU time and RSS.
func (c *callctlProc) stat() loadgen.ProcStat {
	s, _ := loadgen.ReadProcStat(c.pid)
	return s
}

// stop sends SIGTERM (callctl drains for its drain_timeout, 1 s) and kills
// the process if it is still there 15 s later.
func (c *callctlProc) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// freePorts picks the suite's loopback ports.
func freePorts() (ports, error) {
	p := ports{rtpLo: 20000, rtpHi: 39999} // clear of test/peers' 11000-19600
	var err error
	for _, dst := range []*string{&p.sip, &p.api, &p.uas} {
		if *dst, err = freePort(); err != nil {
			return p, err
		}
	}
	return p, nil
}

func freePort() (string, error) {
	// Both protocols: callctl's SIP and API share nothing, but a port free
	// for UDP and TCP serves either.
	for range 20 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := u.LocalAddr().String()
		t, err := net.Listen("tcp4", addr)
		u.Close()
		if err == nil {
			t.Close()
			return addr, nil
		}
	}
	return "", errors.New("no free loopback port")
}

// runGenerator runs one generator configuration; during, if set, runs
// beside it (to measure a window) and must return before the calls end.
func runGenerator(ctx context.Context, cfg loadgen.Config, during func(g *loadgen.Generator)) (*loadgen.Result, error) {
	g, err := loadgen.New(cfg)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	type out struct {
		r   *loadgen.Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		r, err := g.Run(ctx)
		ch <- out{r, err}
	}()
	if during != nil {
		during(g)
	}
	o := <-ch
	return o.r, o.err
}

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// microPackages hold the micro-benchmarks: the relay, the DTMF encoder and
// detector, SDP parse and rewrite and the DTMF packet path (bench/).
var microPackages = []string{"./internal/media/", "./internal/dtmf/", "./bench/"}

// micro runs the Go micro-benchmarks and parses their lines.
func (s *suite) micro() {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1", "-benchtime", "1s"}, microPackages...)
	cmd := exec.CommandContext(s.ctx, s.goBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		s.note("micro-benchmarks: %s %s: %v\n%s", s.goBin, strings.Join(args, " "), err, out.String())
	}
	_ = os.WriteFile(filepath.Join(s.dir, "micro.txt"), out.Bytes(), 0o644)
	s.rep.Micro = parseBench(out.String())
	for _, m := range s.rep.Micro {
		s.logf("%s %s: %.1f ns/op, %.0f B/op, %.2f allocs/op %v", m.Package, m.Name, m.NsPerOp, m.BytesPerOp, m.AllocsPerOp, m.Extra)
	}
}

// parseBench reads `go test -bench -benchmem` output: "pkg:" lines and
// "BenchmarkName-N  iterations  value unit  value unit ...".
func parseBench(out string) []MicroResult {
	var res []MicroResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/callctl/callctl/")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		m := MicroResult{Package: pkg, Name: strings.TrimPrefix(name, "Benchmark")}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				m.NsPerOp = v
			case "B/op":
				m.BytesPerOp = v
			case "allocs/op":
				m.AllocsPerOp = v
			default:
				if m.Extra == nil {
					m.Extra = map[string]float64{}
				}
				m.Extra[f[i+1]] = v
			}
		}
		res = append(res, m)
	}
	return res
}

// profiles runs callctl in-process under the generator with a CPU profile
// (bin/callctl-load -inproc -cpuprofile) for the relay and for the call
// rate, and keeps the top of callctl's part (-tagfocus side=callctl).
func (s *suite) profiles(rate float64) {
	// The relay's time is in a few leaf functions (system calls): the flat
	// view. A call's is spread over the SIP stack, the session and the
	// audit store: the cumulative view, without the runtime's frames.
	scenarios := []struct {
		name, file string
		args       []string
		view       []string
	}{
		{"relay: 500 calls with RTP, 15 s held", "cpu-relay.pprof",
			[]string{"-calls", "500", "-rate", "250", "-hold", "15s"}, []string{"-top"}},
		{fmt.Sprintf("calls: %.0f calls/s for 10 s, no RTP, 1 s held", rate), "cpu-calls.pprof",
			[]string{"-no-rtp", "-duration", "10s", "-rate", strconv.FormatFloat(rate, 'f', 0, 64), "-hold", "1s"},
			[]string{"-top", "-cum", `-hide=^(runtime|internal/runtime|syscall|internal/poll|database/sql)\.`}},
	}
	for _, sc := range scenarios {
		if s.left() < 75*time.Second {
			s.note("profiles: %q skipped to keep the suite within its time", sc.name)
			continue
		}
		prof := filepath.Join(s.out, sc.file)
		args := append([]string{"-inproc", "-inproc-rtp-ports", fmt.Sprintf("%d-%d", s.p.rtpLo, s.p.rtpHi),
			"-quiet", "-cpuprofile", prof}, sc.args...)
		cmd := exec.CommandContext(s.ctx, s.loadBin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			s.note("profile %q: %v\n%s", sc.name, err, out.String())
		}
		pargs := append(append([]string{"tool", "pprof"}, sc.view...), "-nodecount=30", "-tagfocus=side=callctl", s.loadBin, prof)
		top := exec.CommandContext(s.ctx, s.goBin, pargs...)
		var tout bytes.Buffer
		top.Stdout, top.Stderr = &tout, &tout
		if err := top.Run(); err != nil {
			s.note("pprof %s: %v", prof, err)
		}
		s.rep.Profiles = append(s.rep.Profiles, Profile{Scenario: sc.name, File: filepath.ToSlash(prof), Top: trimTop(tout.String())})
	}
}

// trimTop keeps pprof's summary and table, without the file and build
// lines that change every run.
func trimTop(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") || strings.HasPrefix(l, "Type:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

// machine describes this computer.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemTotalMiB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadStart = loadAvg()
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Commit += "+changes"
		}
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

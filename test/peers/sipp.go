package peers

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SIPpOptions says how to run one SIPp instance. Zero values pick sane
// defaults: free ports, one call, UDP, a fresh working directory.
type SIPpOptions struct {
	// Scenario is the path of an XML scenario (-sf), or the name of a
	// built-in one such as "uac" or "uas" (-sn).
	Scenario string
	// Name prefixes the log files; default: the scenario's base name and the
	// local port.
	Name string
	// LocalPort is the SIP port SIPp binds on 127.0.0.1 (-p); 0 picks one.
	LocalPort int
	// RemoteAddr is the host:port a UAC sends its INVITE to (the positional
	// argument); empty for a UAS.
	RemoteAddr string
	// MediaPort is SIPp's RTP port (-mp); SIPp also binds MediaPort+2. 0 picks
	// a free range of four ports.
	MediaPort int
	// Calls is the number of calls after which SIPp exits (-m); 0 means 1, a
	// negative value means no limit.
	Calls int
	// Rate is the number of new calls per second a UAC starts (-r); 0 leaves
	// SIPp's default (10).
	Rate float64
	// Limit caps simultaneous calls (-l); 0 leaves SIPp's default.
	Limit int
	// Transport is SIPp's -t value: "u1" (UDP, the default) or "t1" (TCP).
	Transport string
	// Keys are scenario keywords (-key name value), used as [name].
	Keys map[string]string
	// Service is the Request-URI user of a UAC's INVITE (-s), e.g. the dialled
	// number.
	Service string
	// Dir is the working directory (where scenarios find tone.raw and SIPp
	// writes its logs); default a new t.TempDir().
	Dir string
	// Timeout ends SIPp after this long, failing it (-timeout,
	// -timeout_error); 0 means no limit (the test's cleanup still stops it).
	Timeout time.Duration
	// ExtraArgs are appended to the command line as they are.
	ExtraArgs []string
}

// SIPp is a running SIPp process. Its exit code is the verdict: 0 when every
// call passed, 1 when any failed (TESTING.md).
type SIPp struct {
	p    *process
	opts SIPpOptions
}

// StartSIPp starts SIPp in the foreground (no terminal: stdin is /dev/null and
// -nostdin is given) with error, message, action and screen traces in its
// working directory. The test's cleanup stops it by PID and prints its logs if
// the test failed.
func StartSIPp(t testing.TB, opts SIPpOptions) *SIPp {
	t.Helper()
	bin := requireBinary(t, "sipp", "sip-tester")
	if opts.Scenario == "" {
		t.Fatal("peers: SIPpOptions.Scenario is empty; give an XML path or a built-in name such as \"uas\"")
	}
	if opts.LocalPort == 0 {
		opts.LocalPort = FreeUDPPort(t)
	}
	if opts.MediaPort == 0 {
		opts.MediaPort, _ = FreePortRange(t, 4)
	}
	if opts.Calls == 0 {
		opts.Calls = 1
	}
	if opts.Transport == "" {
		opts.Transport = "u1"
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Name == "" {
		opts.Name = strings.TrimSuffix(filepath.Base(opts.Scenario), ".xml") + "-" + strconv.Itoa(opts.LocalPort)
	}

	var args []string
	if opts.RemoteAddr != "" {
		args = append(args, opts.RemoteAddr)
	}
	if strings.HasSuffix(opts.Scenario, ".xml") || strings.ContainsRune(opts.Scenario, '/') {
		scenario, err := filepath.Abs(opts.Scenario)
		if err != nil {
			t.Fatalf("peers: %v", err)
		}
		args = append(args, "-sf", scenario)
	} else {
		args = append(args, "-sn", opts.Scenario)
	}
	s := &SIPp{opts: opts}
	args = append(args,
		"-i", "127.0.0.1",
		"-p", strconv.Itoa(opts.LocalPort),
		"-mp", strconv.Itoa(opts.MediaPort),
		"-t", opts.Transport,
		// The control socket binds 0.0.0.0:8888 and up unless told otherwise.
		"-ci", "127.0.0.1", "-cp", strconv.Itoa(FreeUDPPort(t)),
		"-nostdin",
		"-trace_err", "-error_file", s.ErrorsLog(),
		"-trace_msg", "-message_file", s.MessagesLog(),
		"-trace_logs", "-log_file", s.ActionsLog(),
		"-trace_screen", "-screen_file", s.ScreenLog(),
	)
	if opts.Calls > 0 {
		args = append(args, "-m", strconv.Itoa(opts.Calls))
	}
	if opts.Rate > 0 {
		args = append(args, "-r", strconv.FormatFloat(opts.Rate, 'f', -1, 64))
	}
	if opts.Limit > 0 {
		args = append(args, "-l", strconv.Itoa(opts.Limit))
	}
	if opts.Service != "" {
		args = append(args, "-s", opts.Service)
	}
	keys := make([]string, 0, len(opts.Keys))
	for k := range opts.Keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "-key", k, opts.Keys[k])
	}
	if opts.Timeout > 0 {
		args = append(args, "-timeout", strconv.Itoa(int(opts.Timeout.Milliseconds()))+"ms", "-timeout_error")
	}
	args = append(args, opts.ExtraArgs...)

	s.p = startProcess(t, "sipp-"+opts.Name, opts.Dir, bin, args,
		s.ErrorsLog(), s.ActionsLog(), s.MessagesLog(), s.ScreenLog())
	// A UAC started right after its UAS must find it listening: over TCP a
	// refused connection is fatal to SIPp.
	if opts.RemoteAddr == "" {
		proto := "udp"
		if strings.HasPrefix(opts.Transport, "t") {
			proto = "tcp"
		}
		if !waitListening(proto, opts.LocalPort, 5*time.Second, s.p.done) && !s.p.exited() {
			t.Fatalf("peers: SIPp %s not listening on %s port %d after 5 s", opts.Name, proto, opts.LocalPort)
		}
	}
	return s
}

// Wait waits up to timeout for SIPp to exit and returns its exit code: 0 all
// calls passed, 1 some failed, 97/99 exited without completing calls, 255/254
// fatal or bind error, -1 killed by a signal. A timeout returns ErrTimeout and
// leaves SIPp running.
func (s *SIPp) Wait(timeout time.Duration) (exitCode int, err error) {
	return s.p.wait(timeout)
}

// ExpectPass waits up to timeout for SIPp to exit and reports, as a test
// error with the reason from SIPp's error log, anything but exit code 0. It
// returns whether SIPp passed.
func (s *SIPp) ExpectPass(t testing.TB, timeout time.Duration) bool {
	t.Helper()
	code, err := s.Wait(timeout)
	if err != nil {
		t.Errorf("SIPp %s: %v", s.opts.Name, err)
		return false
	}
	if code != 0 {
		t.Errorf("SIPp %s exited %d (0 = every call passed); its errors:\n%s", s.opts.Name, code, tail(s.Errors(), 4096))
		return false
	}
	return true
}

// Stop ends SIPp (SIGTERM, then SIGKILL after 2 s) and waits for it.
func (s *SIPp) Stop() { s.p.stop(sigTerm, 2*time.Second) }

// PID is SIPp's process id.
func (s *SIPp) PID() int { return s.p.PID() }

// LocalPort is the SIP port SIPp listens on.
func (s *SIPp) LocalPort() int { return s.opts.LocalPort }

// LocalAddr is SIPp's SIP address, "127.0.0.1:port".
func (s *SIPp) LocalAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.opts.LocalPort))
}

// MediaPort is SIPp's RTP port ([media_port] in scenarios); it also binds
// MediaPort+2.
func (s *SIPp) MediaPort() int { return s.opts.MediaPort }

// Dir is SIPp's working directory.
func (s *SIPp) Dir() string { return s.opts.Dir }

// ErrorsLog is the path of SIPp's error trace (-trace_err): why calls failed.
func (s *SIPp) ErrorsLog() string { return s.logPath("errors") }

// MessagesLog is the path of SIPp's message trace (-trace_msg): every SIP
// message sent and received.
func (s *SIPp) MessagesLog() string { return s.logPath("messages") }

// ActionsLog is the path of the trace of the scenario's <log> actions
// (-trace_logs).
func (s *SIPp) ActionsLog() string { return s.logPath("actions") }

// ScreenLog is the path of SIPp's final statistics screens (-trace_screen).
func (s *SIPp) ScreenLog() string { return s.logPath("screen") }

// Errors returns the error trace so far.
func (s *SIPp) Errors() string { return readLog(s.ErrorsLog()) }

// Messages returns the message trace so far.
func (s *SIPp) Messages() string { return readLog(s.MessagesLog()) }

// Actions returns the <log> action trace so far.
func (s *SIPp) Actions() string { return readLog(s.ActionsLog()) }

func (s *SIPp) logPath(kind string) string {
	return filepath.Join(s.opts.Dir, "sipp-"+s.opts.Name+"-"+kind+".log")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

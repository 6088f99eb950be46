package pbx

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/callctltest"
	"github.com/callctl/callctl/test/peers"
)

func TestMain(m *testing.M) {
	// Every test stops its callctl, Kamailio and phones in its cleanup.
	goleak.VerifyTestMain(m)
}

// repoPath is a path inside the repository, from this package's directory.
func repoPath(t testing.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tool finds a command (also in /usr/sbin, where Debian puts kamailio and
// which a non-root PATH may lack). A missing one fails the test with the
// command that installs it, or skips it under -short.
func tool(t testing.TB, bin, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, bin)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found; install it with: bash scripts/install-test-deps.sh (Debian package %s)", bin, pkg)
	if testing.Short() {
		t.Skip(msg)
	}
	t.Fatal(msg)
	return ""
}

// proc is one peer process, in its own process group, with its output in
// files that are printed when the test fails. The test's cleanup stops it
// by its PID.
type proc struct {
	name  string
	cmd   *exec.Cmd
	logs  []string
	done  chan struct{}
	state *os.ProcessState
}

func startProc(t testing.TB, name, dir, bin string, args ...string) *proc {
	t.Helper()
	stdout := filepath.Join(dir, name+".stdout")
	stderr := filepath.Join(dir, name+".stderr")
	outF, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logs: []string{stdout, stderr}, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Logf("started %s (pid %d): %s %s", name, cmd.Process.Pid, bin, strings.Join(args, " "))
	t.Cleanup(func() {
		p.stop(3 * time.Second)
		if t.Failed() {
			p.printLogs(t)
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process, then after grace SIGKILL to its
// process group (Kamailio's children are in it), and waits.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// output is what the process wrote to stdout so far.
func (p *proc) output() string {
	data, _ := os.ReadFile(p.logs[0])
	return string(data)
}

// errors is what the process wrote to stderr so far.
func (p *proc) errors() string {
	data, _ := os.ReadFile(p.logs[1])
	return string(data)
}

func (p *proc) printLogs(t testing.TB) {
	const tail = 24 << 10
	var b strings.Builder
	fmt.Fprintf(&b, "%s (pid %d): %s\n", p.name, p.cmd.Process.Pid, strings.Join(p.cmd.Args, " "))
	for _, f := range p.logs {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > tail {
			data = data[len(data)-tail:]
		}
		fmt.Fprintf(&b, "----- %s -----\n%s\n", f, data)
	}
	t.Log(b.String())
}

// kamailio is Debian's Kamailio running the shipped
// configs/kamailio/kamailio.cfg on a free loopback port, with sipdump on:
// every message it receives or sends is in dumpDir, read back by Ladder.
type kamailio struct {
	*proc
	port    int
	dumpDir string
	names   map[int]string // port → who, for the ladder
}

// startKamailio runs the shipped config with its site defines overridden
// (-A): its own port, and callctl at 127.0.0.1:callctlPorts[0]; with more
// than one port, the dispatcher section instead (WITH_DISPATCHER), with a
// list of those callctl nodes. It returns once Kamailio answers an OPTIONS
// to itself. When the test fails, the ladder is printed.
func startKamailio(t *testing.T, callctlPorts ...int) *kamailio {
	t.Helper()
	bin := tool(t, "kamailio", "kamailio")
	dir := t.TempDir()
	k := &kamailio{dumpDir: filepath.Join(dir, "sipdump"), names: map[int]string{}}
	if err := os.Mkdir(k.dumpDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var defines []string
	if len(callctlPorts) == 1 {
		k.names[callctlPorts[0]] = "callctl"
		defines = append(defines, `CALLCTL_IP="127.0.0.1"`, "CALLCTL_PORT="+strconv.Itoa(callctlPorts[0]))
	} else {
		var list strings.Builder
		for i, p := range callctlPorts {
			k.names[p] = fmt.Sprintf("callctl%d", i+1)
			fmt.Fprintf(&list, "1 sip:127.0.0.1:%d\n", p)
		}
		path := filepath.Join(dir, "dispatcher.list")
		if err := os.WriteFile(path, []byte(list.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		defines = append(defines, "WITH_DISPATCHER", `DISPATCHER_LIST="`+path+`"`)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("SIP ladder at Kamailio (%s):\n%s", k.dumpDir, k.Ladder(t))
		}
	})

	// A port taken between the pool's check and Kamailio's bind (by a
	// process outside the pool) is retried with another.
	for attempt := 1; ; attempt++ {
		k.port = peers.FreeUDPPort(t)
		k.names[k.port] = "kamailio"
		args := []string{
			"-f", repoPath(t, "configs/kamailio/kamailio.cfg"),
			"-DD", "-E", "-n", "1", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"),
			"-A", "SIP_PORT=" + strconv.Itoa(k.port),
			"-A", "WITH_SIPDUMP",
			"-A", `SIPDUMP_DIR="` + k.dumpDir + `"`,
		}
		for _, d := range defines {
			args = append(args, "-A", d)
		}
		k.proc = startProc(t, fmt.Sprintf("kamailio-%d", attempt), dir, bin, args...)
		deadline := time.Now().Add(10 * time.Second)
		for !k.exited() {
			if status, _ := sendOptions(k.addr(), 200*time.Millisecond); status == 200 {
				return k
			}
			if time.Now().After(deadline) {
				t.Fatalf("kamailio does not answer OPTIONS at %s after 10 s", k.addr())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if attempt < 3 && strings.Contains(k.errors(), "Address already in use") {
			t.Logf("kamailio: port %d was taken meanwhile; again with another", k.port)
			continue
		}
		t.Fatalf("kamailio (port %d) exited while starting: %s", k.port, k.state)
	}
}

// addr is Kamailio's SIP address, "127.0.0.1:port": the phones' domain and
// callctl's trunk.
func (k *kamailio) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port)) }

// name tells the ladder who uses a port.
func (k *kamailio) name(port int, who string) { k.names[port] = who }

// sendOptions sends one out-of-dialog OPTIONS over UDP to addr, addressed
// to addr itself, and returns the status of the answer.
func sendOptions(addr string, timeout time.Duration) (int, error) {
	return sendRequest(addr, "OPTIONS", "sip:"+addr, "<sip:"+addr+">", timeout)
}

// register REGISTERs contact (a sip: URI) as user's at Kamailio, for an
// hour: a SIPp callee that cannot register itself becomes a phone Kamailio
// finds in its location table.
func register(t *testing.T, k *kamailio, user, contact string) {
	t.Helper()
	status, err := sendRequest(k.addr(), "REGISTER", "sip:"+k.addr(), "<sip:"+user+"@"+k.addr()+">", 2*time.Second,
		"Contact: <"+contact+">", "Expires: 3600")
	if err != nil || status != 200 {
		t.Fatalf("REGISTER %s → %s at Kamailio: %d, %v; want 200", user, contact, status, err)
	}
}

// sendRequest sends one out-of-dialog request over UDP to addr, with
// Request-URI uri, To to and the extra header lines, and returns the status
// of the first answer that is not 1xx.
func sendRequest(addr, method, uri, to string, timeout time.Duration, extra ...string) (int, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	msg := method + " " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: " + to + ";tag=probe\r\n" +
		"To: " + to + "\r\n" +
		"Call-ID: probe-" + id + "@127.0.0.1\r\n" +
		"CSeq: 1 " + method + "\r\n"
	for _, h := range extra {
		msg += h + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		return 0, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return 0, err
		}
		var status int
		if _, err := fmt.Sscanf(string(buf[:n]), "SIP/2.0 %d", &status); err != nil {
			return 0, fmt.Errorf("answer %q: %w", buf[:n], err)
		}
		if status >= 200 {
			return status, nil
		}
	}
}

// sipMessage is one message in Kamailio's sipdump.
type sipMessage struct {
	Sent     bool // "snd": Kamailio sent it; else it received it
	Time     time.Time
	SrcPort  int
	DstPort  int
	Raw      string
	Start    string // request or status line
	Method   string // request method, or the CSeq method of a response
	Status   int    // 0 for a request
	CallID   string
	HasRoute bool // the request carries Route headers (loose routing)
}

// Request reports whether the message is a request of method m.
func (m sipMessage) Request(method string) bool { return m.Status == 0 && m.Method == method }

// Header returns the first value of header name (long form), or "".
func (m sipMessage) Header(name string) string {
	for _, line := range strings.Split(m.Raw, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Messages reads every message of the sipdump so far, in time order.
func (k *kamailio) Messages(t testing.TB) []sipMessage {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(k.dumpDir, "*.data"))
	var msgs []sipMessage
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, entry := range strings.Split(string(data), "====================\n") {
			head, body, ok := strings.Cut(entry, "~~~~~~~~~~~~~~~~~~~~\n")
			if !ok {
				continue
			}
			body, _, _ = strings.Cut(body, "||||||||||||||||||||")
			m := sipMessage{Raw: body}
			for _, line := range strings.Split(head, "\n") {
				key, val, _ := strings.Cut(line, ": ")
				switch key {
				case "tag":
					m.Sent = val == "snd"
				case "time":
					if f, err := strconv.ParseFloat(val, 64); err == nil {
						m.Time = time.Unix(0, int64(f*1e9))
					}
				case "srcport":
					m.SrcPort, _ = strconv.Atoi(val)
				case "dstport":
					m.DstPort, _ = strconv.Atoi(val)
				}
			}
			m.Start, _, _ = strings.Cut(body, "\r\n")
			if strings.HasPrefix(m.Start, "SIP/2.0 ") {
				fmt.Sscanf(m.Start, "SIP/2.0 %d", &m.Status)
				if f := strings.Fields(m.Header("CSeq")); len(f) == 2 {
					m.Method = f[1]
				}
			} else {
				m.Method, _, _ = strings.Cut(m.Start, " ")
			}
			m.CallID = m.Header("Call-ID")
			m.HasRoute = m.Header("Route") != ""
			msgs = append(msgs, m)
		}
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Time.Before(msgs[j].Time) })
	return msgs
}

// Ladder is the sipdump as one line per message: time, who sent it to
// whom, the start line, CSeq and Call-ID.
func (k *kamailio) Ladder(t testing.TB) string {
	var b strings.Builder
	for _, m := range k.Messages(t) {
		route := ""
		if m.HasRoute {
			route = " [Route: " + m.Header("Route") + "]"
		}
		fmt.Fprintf(&b, "%s %-8s → %-8s %s (CSeq %s, Call-ID %s)%s\n", m.Time.Format("15:04:05.000"),
			k.who(m.SrcPort), k.who(m.DstPort), m.Start, m.Header("CSeq"), m.CallID, route)
	}
	return b.String()
}

func (k *kamailio) who(port int) string {
	if n, ok := k.names[port]; ok {
		return n
	}
	return ":" + strconv.Itoa(port)
}

// waitRelayed waits until Kamailio has received from port `from` and sent
// to port `to` a message that match accepts (the same message, one hop each
// side of the proxy), and returns what it sent. It fails the test with the
// ladder if it has not within timeout.
func (k *kamailio) waitRelayed(t *testing.T, what string, from, to int, timeout time.Duration, match func(sipMessage) bool) sipMessage {
	t.Helper()
	var found sipMessage
	ok := callctltest.Eventually(timeout, func() bool {
		var in bool
		for _, m := range k.Messages(t) {
			if !match(m) {
				continue
			}
			if !m.Sent && m.SrcPort == from {
				in = true
			}
			if m.Sent && m.DstPort == to && in {
				found = m
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("Kamailio did not relay %s from %s to %s within %v; ladder:\n%s", what, k.who(from), k.who(to), timeout, k.Ladder(t))
	}
	return found
}

// waitSent waits until Kamailio has sent to port `to` a message that match
// accepts (relayed or its own answer) and returns it.
func (k *kamailio) waitSent(t *testing.T, what string, to int, timeout time.Duration, match func(sipMessage) bool) sipMessage {
	t.Helper()
	var found sipMessage
	if !callctltest.Eventually(timeout, func() bool {
		for _, m := range k.Messages(t) {
			if m.Sent && m.DstPort == to && match(m) {
				found = m
				return true
			}
		}
		return false
	}) {
		t.Fatalf("Kamailio did not send %s to %s within %v; ladder:\n%s", what, k.who(to), timeout, k.Ladder(t))
	}
	return found
}

// phone is a baresip softphone registered to Kamailio: its account is
// sip:USER@<kamailio> with regint > 0, so it REGISTERs its contact there and
// sends new requests (INVITE, and the INVITE a REFER asks for) to Kamailio.
type phone struct {
	*peers.BaresipCtrl
	user    string
	sipPort int
	proc    *proc
}

// startPhone writes a baresip configuration as TESTING.md describes, with a
// registering account, starts it and waits until Kamailio accepted its
// REGISTER (baresip's reginfo says OK). A port taken between the pool's
// check and baresip's bind (by a process outside the pool) is retried with
// fresh ports.
func startPhone(t *testing.T, user string, k *kamailio) *phone {
	t.Helper()
	bin := tool(t, "baresip", "baresip-core")
	dir := t.TempDir()
	wav := peers.WavFile(t, dir, 300, 440)
	var p *phone
	var ctrlPort int
	for attempt := 1; ; attempt++ {
		sipPort, _ := peers.FreePortRange(t, 2) // +1 is baresip's TLS port
		ctrlPort = peers.FreeUDPPort(t)
		rtpLo, rtpHi := peers.FreePortRange(t, 10)
		config := strings.Join([]string{
			"sip_listen 127.0.0.1:" + strconv.Itoa(sipPort),
			"net_interface 127.0.0.1",
			"audio_source aufile," + wav,
			"audio_player aubridge,nil",
			"audio_alert aubridge,nil",
			"ausrc_srate 8000",
			"auplay_srate 8000",
			"ausrc_channels 1",
			"auplay_channels 1",
			fmt.Sprintf("rtp_ports %d-%d", rtpLo, rtpHi),
			"module_path /usr/lib/baresip/modules",
			"module g711.so",
			"module aufile.so",
			"module aubridge.so",
			"module ctrl_tcp.so",
			"module_app account.so",
			"module_app menu.so",
			"ctrl_tcp_listen 127.0.0.1:" + strconv.Itoa(ctrlPort),
			"statmode_default off",
			"",
		}, "\n")
		// The account's domain is Kamailio: REGISTER goes there, and so do
		// the phone's new INVITEs. regint=60: re-REGISTER well within the test.
		account := fmt.Sprintf("<sip:%s@%s>;regint=60;answermode=auto;audio_codecs=PCMU,PCMA\n", user, k.addr())
		for name, data := range map[string]string{"config": config, "accounts": account} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p = &phone{user: user, sipPort: sipPort}
		p.proc = startProc(t, fmt.Sprintf("baresip-%s-%d", user, attempt), dir, bin, "-f", dir)

		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.proc.output(), "baresip is ready.") && !p.proc.exited() {
			if time.Now().After(deadline) {
				t.Fatalf("baresip %s not ready after 10 s", user)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !p.proc.exited() {
			break
		}
		if out := p.proc.output(); attempt < 3 && strings.Contains(out, "Address already in use") {
			t.Logf("baresip %s: a port of SIP %d, control %d or RTP %d-%d was taken meanwhile; again with other ports", user, sipPort, ctrlPort, rtpLo, rtpHi)
			continue
		}
		t.Fatalf("baresip %s (SIP port %d, control %d, RTP %d-%d) exited while starting: %s", user, sipPort, ctrlPort, rtpLo, rtpHi, p.proc.state)
	}
	k.name(p.sipPort, user)

	deadline := time.Now().Add(10 * time.Second)
	ctrl, err := peers.DialBaresipCtrl(net.JoinHostPort("127.0.0.1", strconv.Itoa(ctrlPort)), time.Until(deadline))
	if err != nil {
		t.Fatal(err)
	}
	p.BaresipCtrl = ctrl
	t.Cleanup(func() { ctrl.Close() })

	var info string
	if !callctltest.Eventually(time.Until(deadline), func() bool {
		info, _ = ctrl.Command("reginfo", "")
		return registeredOK.MatchString(ansi.ReplaceAllString(info, ""))
	}) {
		t.Fatalf("baresip %s did not register to Kamailio at %s: reginfo %q", user, k.addr(), info)
	}
	return p
}

var (
	ansi         = regexp.MustCompile("\x1b\\[[0-9;]*m")
	registeredOK = regexp.MustCompile(`sip:\S+\s+OK\b`)
)

// expectNoCalls waits until the phone has no call left.
func (p *phone) expectNoCalls(t *testing.T) {
	t.Helper()
	var calls string
	if !callctltest.Eventually(5*time.Second, func() bool {
		calls, _ = p.ListCalls()
		return strings.Contains(calls, "Active calls (0)")
	}) {
		t.Errorf("%s still has calls: %q", p.user, calls)
	}
}

// callctl is callctl running in-process, with a subscription to its session
// events taken before any call.
type callctl struct {
	app                *app.App
	cfg                config.Config
	callctltest.Events // its session events, subscribed to before any call
}

// startCallctl runs callctl on SIP port sipPort of 127.0.0.1 with trunk as
// its trunk and 127.0.0.0/8 allowed, its own RTP range and short timers.
func startCallctl(t *testing.T, sipPort int, trunk string, configure func(*config.Config)) *callctl {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(sipPort))
	cfg.SIP.Transports = []string{"udp", "tcp"}
	cfg.SIP.Allow = []string{"127.0.0.0/8"}
	cfg.Trunk.Address = trunk
	cfg.Trunk.Transport = "udp"
	cfg.API.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(peers.FreeUDPPort(t)))
	lo, hi := peers.FreePortRange(t, 64)
	cfg.Media.IP = "127.0.0.1"
	cfg.Media.RTPPorts = fmt.Sprintf("%d-%d", lo, hi)
	cfg.Media.PortRest = 200 * time.Millisecond
	cfg.Media.Timeout = 15 * time.Second
	cfg.Calls.RingTimeout = 15 * time.Second
	cfg.Shutdown.DrainTimeout = 2 * time.Second
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = "pbx-admin-token"
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.New(cfg, zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	c := &callctl{app: a, cfg: cfg, Events: callctltest.Events{Sub: a.Sessions().Subscribe(4096)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("callctl Run: %v", err)
			}
		case <-time.After(cfg.Shutdown.DrainTimeout + 15*time.Second):
			t.Errorf("callctl Run still running after cancel")
		}
		c.Sub.Close()
	})
	return c
}

// waitState waits for session id to enter state after event `after` (nil:
// at any time).
func (c *callctl) waitState(t *testing.T, id string, state session.State, after *session.Event, timeout time.Duration) session.Event {
	t.Helper()
	var seq uint64
	if after != nil {
		seq = after.Seq
	}
	return c.WaitEvent(t, timeout, fmt.Sprintf("session %s entering %s", id, state), func(e session.Event) bool {
		return e.Type == session.EventStateChanged && e.SessionID == id && e.State == state && e.Seq > seq
	})
}

func (c *callctl) snapshot(t *testing.T, id string) session.Snapshot {
	t.Helper()
	s, ok := c.app.Sessions().Get(id)
	if !ok {
		t.Fatalf("session %s not in the registry", id)
	}
	return s
}

// expectIdle checks no session is live and no RTP port pair is held once
// the port rest is over.
func (c *callctl) expectIdle(t *testing.T) {
	t.Helper()
	if !callctltest.Eventually(5*time.Second, func() bool { return c.app.Sessions().LiveCount() == 0 }) {
		t.Errorf("%d sessions still live after the calls ended", c.app.Sessions().LiveCount())
	}
	if !callctltest.Eventually(c.cfg.Media.PortRest+5*time.Second, func() bool { return c.app.PortsInUse() == 0 }) {
		t.Errorf("%d RTP port pairs still allocated after the calls ended", c.app.PortsInUse())
	}
}

// sdpHas reports whether a message's body has the SDP line.
func sdpHas(m sipMessage, line string) bool {
	_, body, _ := strings.Cut(m.Raw, "\r\n\r\n")
	return bytes.Contains([]byte(body), []byte(line+"\r\n")) || strings.HasSuffix(body, line)
}

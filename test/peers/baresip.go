package peers

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BaresipOptions says how to run one headless baresip softphone. Zero values
// pick free ports, a user "baresip", a 5-minute 440 Hz tone as the microphone
// and automatic answering.
type BaresipOptions struct {
	// User is the account's user part: the phone is sip:User@127.0.0.1:SIPPort.
	User string
	// SIPPort is the SIP port on 127.0.0.1 (UDP and TCP); baresip also takes
	// SIPPort+1 for TLS. 0 picks a free pair.
	SIPPort int
	// CtrlPort is the ctrl_tcp control port; 0 picks one.
	CtrlPort int
	// RTPPorts is the RTP port range "lo-hi"; "" picks ten free ports.
	RTPPorts string
	// AudioWav is the audio source, an 8 kHz mono S16 WAV (see WavFile). A
	// call ends when the file does, so make it longer than the test. ""
	// writes a 300 s 440 Hz tone.
	AudioWav string
	// AnswerMode is the account's answermode: "auto" (default), "manual" or
	// "early".
	AnswerMode string
	// Dir is the configuration directory (config, accounts, logs); default a
	// new t.TempDir().
	Dir string
	// MediaEnc is the account's mediaenc: "" (plain RTP), "srtp" (best
	// effort: RTP/AVP with a=crypto), "srtp-mand" (RTP/SAVP, SDES keys,
	// RFC 4568) or "srtp-mandf" (RTP/SAVPF). Any of them loads srtp.so.
	MediaEnc string
	// TLSCert, when set, is a PEM file with baresip's certificate and then
	// its key (Leaf.PEMFile): baresip then takes SIP over TLS on
	// SIPPort+1 and its account is sip:User@127.0.0.1:SIPPort+1;transport=tls
	// (TLSURI), so its Contact and the calls it places use TLS.
	TLSCert string
	// TLSCAFile is the CA baresip trusts for the TLS peers it talks to
	// (sip_cafile).
	TLSCAFile string
	// SIPTrace runs baresip with -s: every SIP message it sends and
	// receives is printed to its log (Log), decrypted, so a test can read
	// what went over TLS.
	SIPTrace bool
}

// Baresip is a running baresip with its control connection. Commands act on
// its current call; events (CALL_INCOMING, CALL_RINGING, CALL_ESTABLISHED,
// CALL_CLOSED, CALL_RTCP, ...) are collected from the start.
type Baresip struct {
	*BaresipCtrl
	p    *process
	opts BaresipOptions
	rtp  [2]int
}

// StartBaresip writes a configuration directory as TESTING.md shows
// (modules g711, aufile, aubridge, ctrl_tcp, account, menu; no audio device,
// no registration), starts `baresip -f DIR`, waits until it is ready and
// connects to its control port. The test's cleanup closes the control
// connection, stops baresip by PID and prints its log if the test failed.
func StartBaresip(t testing.TB, opts BaresipOptions) *Baresip {
	t.Helper()
	bin := requireBinary(t, "baresip", "baresip-core")
	if opts.User == "" {
		opts.User = "baresip"
	}
	if opts.SIPPort == 0 {
		opts.SIPPort, _ = FreePortRange(t, 2)
	}
	if opts.CtrlPort == 0 {
		opts.CtrlPort = FreeUDPPort(t)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	b := &Baresip{opts: opts}
	if opts.RTPPorts == "" {
		b.rtp[0], b.rtp[1] = FreePortRange(t, 10)
		opts.RTPPorts = fmt.Sprintf("%d-%d", b.rtp[0], b.rtp[1])
	} else if _, err := fmt.Sscanf(opts.RTPPorts, "%d-%d", &b.rtp[0], &b.rtp[1]); err != nil {
		t.Fatalf("peers: BaresipOptions.RTPPorts %q: want \"lo-hi\"", opts.RTPPorts)
	}
	if opts.AudioWav == "" {
		opts.AudioWav = WavFile(t, opts.Dir, 300, 440)
	}
	if opts.AnswerMode == "" {
		opts.AnswerMode = "auto"
	}
	b.opts = opts

	config := strings.Join([]string{
		"sip_listen 127.0.0.1:" + strconv.Itoa(opts.SIPPort),
		"net_interface 127.0.0.1",
		"audio_source aufile," + opts.AudioWav,
		"audio_player aubridge,nil",
		"audio_alert aubridge,nil",
		"ausrc_srate 8000",
		"auplay_srate 8000",
		"ausrc_channels 1",
		"auplay_channels 1",
		"rtp_ports " + opts.RTPPorts,
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module aubridge.so",
		"module ctrl_tcp.so",
		srtpModule(opts.MediaEnc),
		tlsLine("sip_certificate", opts.TLSCert),
		tlsLine("sip_cafile", opts.TLSCAFile),
		"module_app account.so",
		"module_app menu.so",
		"ctrl_tcp_listen 127.0.0.1:" + strconv.Itoa(opts.CtrlPort),
		// No bitrate line on stdout ten times a second.
		"statmode_default off",
		"",
	}, "\n")
	// regint=0: no REGISTER.
	aor := b.URI()
	if opts.TLSCert != "" {
		aor = b.TLSURI()
	}
	accounts := fmt.Sprintf("<%s>;regint=0;answermode=%s;audio_codecs=PCMU,PCMA", aor, opts.AnswerMode)
	if opts.MediaEnc != "" {
		accounts += ";mediaenc=" + opts.MediaEnc
	}
	accounts += "\n"
	for name, data := range map[string]string{"config": config, "accounts": accounts} {
		if err := os.WriteFile(filepath.Join(opts.Dir, name), []byte(data), 0o644); err != nil {
			t.Fatalf("peers: %v", err)
		}
	}

	args := []string{"-f", opts.Dir}
	if opts.SIPTrace {
		args = append(args, "-s")
	}
	b.p = startProcess(t, "baresip-"+opts.User, opts.Dir, bin, args)
	ctrlAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.CtrlPort))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readLog(b.p.logs[0]), "baresip is ready.") {
		if b.p.exited() {
			t.Fatalf("peers: baresip %s exited while starting: %s", opts.User, b.p.state)
		}
		if time.Now().After(deadline) {
			t.Fatalf("peers: baresip %s not ready after 10 s", opts.User)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctrl, err := DialBaresipCtrl(ctrlAddr, time.Until(deadline))
	if err != nil {
		t.Fatalf("peers: baresip %s: %v", opts.User, err)
	}
	b.BaresipCtrl = ctrl
	t.Cleanup(func() { ctrl.Close() })
	return b
}

// URI is the phone's SIP URI, sip:User@127.0.0.1:SIPPort.
func (b *Baresip) URI() string {
	return fmt.Sprintf("sip:%s@127.0.0.1:%d", b.opts.User, b.opts.SIPPort)
}

// TLSURI is the phone's SIP URI over TLS,
// sip:User@127.0.0.1:SIPPort+1;transport=tls (with BaresipOptions.TLSCert).
func (b *Baresip) TLSURI() string {
	return fmt.Sprintf("sip:%s@%s;transport=tls", b.opts.User, b.TLSAddr())
}

// TLSAddr is the phone's SIP-over-TLS address, "127.0.0.1:SIPPort+1".
func (b *Baresip) TLSAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.opts.SIPPort+1))
}

// SIPAddr is the phone's SIP address, "127.0.0.1:port".
func (b *Baresip) SIPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.opts.SIPPort))
}

// SIPPort is the phone's SIP port.
func (b *Baresip) SIPPort() int { return b.opts.SIPPort }

// RTPPorts is the phone's RTP port range.
func (b *Baresip) RTPPorts() (lo, hi int) { return b.rtp[0], b.rtp[1] }

// PID is baresip's process id.
func (b *Baresip) PID() int { return b.p.PID() }

// Log returns what baresip printed so far.
func (b *Baresip) Log() string { return readLog(b.p.logs[0]) }

// Stop closes the control connection and ends baresip (SIGTERM, then SIGKILL
// after 3 s), waiting for it. Calls in progress are torn down with BYE.
func (b *Baresip) Stop() {
	b.BaresipCtrl.Close()
	b.p.stop(sigTerm, 3*time.Second)
}

// srtpModule is the config line that loads SDES-SRTP when mediaenc asks for
// it (a comment line otherwise, which baresip ignores).
func srtpModule(mediaEnc string) string {
	if mediaEnc == "" {
		return "# no srtp"
	}
	return "module srtp.so"
}

// tlsLine is a config line setting key to file, or a comment when file is
// empty.
func tlsLine(key, file string) string {
	if file == "" {
		return "# no " + key
	}
	return key + " " + file
}

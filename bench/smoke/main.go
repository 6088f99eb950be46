// Command smoke is `make bench-smoke`: a few seconds that keep the load
// generator from rotting. It runs bin/callctl-load twice and checks only
// that every call succeeded (no timing assertions; figures belong to
// `make bench`):
//
//  1. five calls through callctl started in the generator's process, with
//     RTP both ways, DTMF, hold and unhold through the API and one WebRTC
//     listener per call, while a small flood with garbage comes from a
//     second loopback address (the flood mode of the hostile phase);
//  2. five calls to a plain SIPp UAS that echoes RTP (-target-is-uas), the
//     mode that measures a peer without callctl.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	load := flag.String("load", "bin/callctl-load", "the built generator `binary`")
	flag.Parse()
	dir, err := os.MkdirTemp("", "callctl-bench-smoke-")
	if err != nil {
		fail("%v", err)
	}
	defer os.RemoveAll(dir)
	if err := throughCallctl(*load, dir); err != nil {
		fail("through callctl: %v", err)
	}
	if err := throughSIPp(*load, dir); err != nil {
		fail("through a SIPp UAS: %v", err)
	}
	fmt.Println("bench-smoke: ok")
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-smoke: "+format+"\n", args...)
	os.Exit(1)
}

// result is the part of the generator's JSON the smoke test reads.
type result struct {
	Calls struct {
		Attempted, OK uint64
		FailedBy      map[string]uint64 `json:"failed_by"`
	} `json:"calls"`
	RTP struct {
		Sent, Received uint64
	} `json:"rtp"`
	DTMF *struct {
		KeysSent       uint64 `json:"keys_sent"`
		EventsReceived uint64 `json:"events_received"`
	} `json:"dtmf"`
	Flood *struct {
		InvitesSent       uint64            `json:"invites_sent"`
		InvitesAnswered   uint64            `json:"invites_answered"`
		GarbageSent       map[string]uint64 `json:"garbage_sent"`
		DatagramsReceived uint64            `json:"datagrams_received"`
	} `json:"flood"`
	API *struct {
		HoldOK    uint64 `json:"hold_ok"`
		UnholdOK  uint64 `json:"unhold_ok"`
		Listeners *struct {
			Started uint64
			Skipped string
		} `json:"listeners"`
	} `json:"api"`
}

// generate runs the generator with args and reads its JSON result.
func generate(load, dir, name string, args ...string) (*result, error) {
	out := filepath.Join(dir, name+".json")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, load, append(args, "-quiet", "-json", out)...)
	text, err := cmd.CombinedOutput()
	fmt.Printf("--- %s\n%s", name, text)
	var r result
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	if jerr := json.Unmarshal(b, &r); jerr != nil {
		return nil, jerr
	}
	if err != nil {
		return &r, fmt.Errorf("%s: %v (failures: %v)", name, err, r.Calls.FailedBy)
	}
	return &r, nil
}

func throughCallctl(load, dir string) error {
	// The flood's garbage includes INVITEs without a mandatory header
	// (missing-header: no To, no From, ...), which callctl must refuse
	// (RFC 3261 8.1.1) and survive beside the calls.
	r, err := generate(load, dir, "inproc", "-inproc", "-calls", "5", "-rate", "10", "-hold", "3s",
		"-dtmf", "1#", "-hold-unhold", "-listeners", "1",
		"-flood-source", "127.0.0.5", "-flood-rate", "300", "-flood-garbage-rate", "30", "-flood-garbage", "random,truncated,missing-header",
		"-flood-after", "500ms", "-flood-duration", "1500ms", "-flood-linger", "1s")
	if err != nil {
		return err
	}
	var problems []string
	if r.Calls.OK != 5 {
		problems = append(problems, fmt.Sprintf("%d of 5 calls ok", r.Calls.OK))
	}
	if r.RTP.Received == 0 {
		problems = append(problems, "no RTP received")
	}
	if r.DTMF == nil || r.DTMF.EventsReceived != r.DTMF.KeysSent {
		problems = append(problems, fmt.Sprintf("DTMF %+v: not every key arrived", r.DTMF))
	}
	if r.API == nil || r.API.HoldOK != 5 || r.API.UnholdOK != 5 {
		problems = append(problems, fmt.Sprintf("API %+v: want 5 holds and 5 unholds", r.API))
	}
	if l := r.API.Listeners; l == nil || (l.Skipped == "" && l.Started != 5) {
		problems = append(problems, fmt.Sprintf("listeners %+v: want 5 started (or skipped: 501)", l))
	}
	// What callctl answers to the flood depends on its flood protection:
	// only that the flood ran and was counted is checked.
	if f := r.Flood; f == nil || f.InvitesSent == 0 || f.GarbageSent["random"] == 0 || f.GarbageSent["truncated"] == 0 || f.GarbageSent["no-to"] == 0 || f.InvitesAnswered > f.InvitesSent {
		problems = append(problems, fmt.Sprintf("flood %+v: want INVITEs and every kind of garbage sent, no more answered than sent", f))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func throughSIPp(load, dir string) error {
	bin, err := exec.LookPath("sipp")
	if err != nil {
		return errors.New("sipp not found; install it with: apt-get install -y --no-install-recommends sip-tester")
	}
	sip, err := freeUDP()
	if err != nil {
		return err
	}
	ctl, err := freeUDP()
	if err != nil {
		return err
	}
	mp, err := freeMediaPorts()
	if err != nil {
		return err
	}
	_, sipPort, _ := net.SplitHostPort(sip)
	_, ctlPort, _ := net.SplitHostPort(ctl)
	cmd := exec.Command(bin, "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", sipPort, "-mp", strconv.Itoa(mp),
		"-m", "5", "-nostdin", "-ci", "127.0.0.1", "-cp", ctlPort, "-timeout", "30s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "sipp-errors.log"))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	time.Sleep(300 * time.Millisecond) // SIPp binds its socket
	r, err := generate(load, dir, "sipp-uas", "-target", sip, "-target-is-uas", "-calls", "5", "-rate", "10", "-hold", "1s")
	if err != nil {
		stop()
		return err
	}
	if r.Calls.OK != 5 || r.RTP.Received == 0 {
		stop()
		return fmt.Errorf("%d of 5 calls ok, %d RTP packets echoed back", r.Calls.OK, r.RTP.Received)
	}
	// SIPp exits by itself after its 5 calls; its exit code is its verdict.
	select {
	case err := <-exited:
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "sipp-errors.log"))
			return fmt.Errorf("SIPp UAS: %v\n%s", err, b)
		}
	case <-time.After(10 * time.Second):
		stop()
		return errors.New("SIPp UAS still running 10 s after its 5 calls")
	}
	return nil
}

func freeUDP() (string, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// freeMediaPorts finds an even port p with p and p+2 free (SIPp's -mp).
func freeMediaPorts() (int, error) {
	for p := 31000; p < 32000; p += 4 {
		a, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p+2))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p, nil
	}
	return 0, errors.New("no free media ports for SIPp in 31000-31999")
}

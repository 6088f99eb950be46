package torture

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

// TestTorture sends every case to one callctl per transport and checks each
// answer, then checks that a real call through the same callctl still
// works: SIPp calls SIPp with RTP, the call connects and ends cleanly, and
// nothing is left behind.
func TestTorture(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			peers.ToneFile(t, dir, 2, 440)
			uas := peers.StartSIPp(t, peers.SIPpOptions{Scenario: sipp.Scenario(t, "uas_pcmu_rtp.xml"), Dir: dir})
			// The trunk swallows what callctl forwards (an invalid INVITE it
			// should have refused); only 1000 reaches the real callee.
			blackhole, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { blackhole.Close() })
			// The scripted callee of the call and response cases, over the
			// transport under test; it answers callctl once callctl exists.
			var cc *callctl
			ce := startCallee(t, transport, func() string { return cc.addr() })
			cc = startCallctl(t, blackhole.LocalAddr().String(), func(cfg *config.Config) {
				cfg.Routes = []config.Route{
					{Match: "1000", Target: "sip:{number}@" + uas.LocalAddr()},
					{Match: `[23]\d{3}`, Target: "sip:{number}@" + ce.addr, Transport: transport},
				}
			})

			for _, group := range []struct {
				name  string
				cases []requestCase
			}{{"valid", validOddities}, {"invalid", invalid}} {
				for _, c := range group.cases {
					if c.only != "" && c.only != transport {
						continue
					}
					t.Run(group.name+"/"+c.name, func(t *testing.T) { runCase(t, cc, transport, c) })
				}
			}

			for i, c := range calls {
				number := fmt.Sprint(2001 + i)
				t.Run("call/"+c.name, func(t *testing.T) { runCall(t, cc, transport, ce, number, c) })
			}
			for i, c := range responses {
				if c.only != "" && c.only != transport {
					continue
				}
				number := fmt.Sprint(3001 + i)
				t.Run("response/"+c.name+" is dropped", func(t *testing.T) { runResponse(t, cc, transport, ce, number, c) })
			}

			t.Run("live call after the torture", func(t *testing.T) {
				tp := "u1"
				if transport == "tcp" {
					tp = "t1"
				}
				uac := peers.StartSIPp(t, peers.SIPpOptions{
					Scenario:   sipp.Scenario(t, "uac_pcmu_rtp.xml"),
					RemoteAddr: cc.addr(),
					Transport:  tp,
					Service:    "1000",
					Keys:       map[string]string{"duration": "2000"},
					Dir:        dir,
				})
				id := cc.sessionFor(t, "1000", 10*time.Second)
				cc.waitState(t, id, session.InCall, 15*time.Second)
				uacOK := uac.ExpectPass(t, 30*time.Second)
				uasOK := uas.ExpectPass(t, 10*time.Second)
				if end := cc.WaitEnded(t, id, 5*time.Second); end.State != session.CallerHungUp {
					t.Errorf("live call ended %s (%s); want %s", end.State, end.Reason, session.CallerHungUp)
				}
				if !uacOK || !uasOK {
					t.Errorf("SIPp caller passed %v, callee passed %v; want both", uacOK, uasOK)
				}
				s, _ := cc.app.Sessions().Get(id)
				for _, l := range s.Legs {
					if l.PacketsIn < 50 || l.PacketsOut < 50 {
						t.Errorf("live call's %s leg relayed %d in / %d out RTP packets in 2 s; want ≥ 50 each", l.Role, l.PacketsIn, l.PacketsOut)
					}
				}
				cc.expectIdle(t)
			})
		})
	}
}

// runCase sends c on a fresh socket and checks the answer; then callctl must
// still answer a plain OPTIONS on another.
func runCase(t *testing.T, cc *callctl, transport string, c requestCase) {
	w := dial(t, transport, cc.addr())
	v := newVars(w.Remote(), w.Local(), transport)
	msg := c.raw
	if msg == nil {
		msg = render(c.msg, v)
	}
	w.Send(t, msg)
	callID := v.CallID
	if c.noCallID {
		callID = ""
	}
	wait := 5 * time.Second
	if c.want == 0 {
		wait = time.Second
	}
	res, seen := finalFor(w, callID, wait)
	if res != nil && res.CSeqMethod() == "INVITE" {
		ackFinal(t, w, msg, res)
	}
	switch {
	case c.want == 0 && res != nil:
		t.Errorf("callctl answered %q to a message it cannot parse; want no answer", res.StartLine)
	case c.want != 0 && res == nil:
		t.Errorf("no final answer within %v (saw %q); want %d", wait, seen, c.want)
	case c.want != 0 && res.Code != c.want:
		t.Errorf("callctl answered %q; want %d\n  answer: %s", res.StartLine, c.want, res)
	case c.want != 0:
		checkHeaders(t, c, res)
	}

	// Still alive and still answering.
	ping := dial(t, transport, cc.addr())
	pv := newVars(ping.Remote(), ping.Local(), transport)
	ping.Send(t, render(options, pv))
	if res, seen := finalFor(ping, pv.CallID, 5*time.Second); res == nil || res.Code != 200 {
		t.Errorf("after this case callctl did not answer a plain OPTIONS with 200 (got %v, saw %q)", res, seen)
	}
}

// checkHeaders checks what the contract says the answer carries.
func checkHeaders(t *testing.T, c requestCase, res *message) {
	t.Helper()
	if c.warning != "" {
		ws := res.Header.Values("Warning")
		ok := false
		for _, w := range ws {
			if m := warningRE.FindStringSubmatch(strings.TrimSpace(w)); m != nil && names(m[2], c.warning) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%d carries Warning %q; want a 399 <host> \"...\" naming %s (RFC 3261 20.43)", res.Code, ws, c.warning)
		}
	}
	if c.unsupported != nil {
		if got := res.Values("Unsupported"); !sameSet(got, c.unsupported) {
			t.Errorf("420 carries Unsupported %q; want exactly %q (RFC 3261 8.2.2.3)", got, c.unsupported)
		}
	}
	for _, a := range c.accept {
		got := res.Values("Accept")
		found := false
		for _, g := range got {
			if strings.EqualFold(strings.TrimSpace(strings.Split(g, ";")[0]), a) {
				found = true
			}
		}
		if !found {
			t.Errorf("415 carries Accept %q; want it to include %s (RFC 3261 21.4.13)", got, a)
		}
	}
	if c.allow && len(res.Values("Allow")) == 0 {
		t.Errorf("405 carries no Allow header (RFC 3261 21.4.6)")
	}
}

// ackFinal sends the ACK for a final response to an INVITE (RFC 3261
// 17.1.1.3: same branch for a non-2xx); a 2xx here means a call was set up
// by mistake, so it is ACKed and ended with BYE.
func ackFinal(t *testing.T, w wire, invite []byte, res *message) {
	t.Helper()
	via, from, callID := res.Get("Via"), res.Get("From"), res.Get("Call-Id")
	to := res.Get("To")
	cseq := strings.Fields(res.Get("CSeq"))
	if len(cseq) != 2 {
		return
	}
	first := strings.SplitN(string(invite), "\r\n", 2)[0]
	ruri := strings.Fields(first)
	if len(ruri) < 2 {
		return
	}
	req := func(method, seq string) []byte {
		return []byte(method + " " + ruri[1] + " SIP/2.0\r\nVia: " + via + "\r\nMax-Forwards: 70\r\nFrom: " + from +
			"\r\nTo: " + to + "\r\nCall-ID: " + callID + "\r\nCSeq: " + seq + " " + method + "\r\nContent-Length: 0\r\n\r\n")
	}
	w.Send(t, req("ACK", cseq[0]))
	if res.Code < 300 {
		w.Send(t, req("BYE", "99"))
	}
}

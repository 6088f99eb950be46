package sip

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// fuzzSeparator splits one fuzz input into several datagrams sent in turn,
// so an input can set up a dialog and then act in it.
var fuzzSeparator = []byte("\x00--next--\x00")

// fuzzDialogTag is the local tag every dialog of the fuzzed agent gets, so
// inputs can address in-dialog requests to a dialog they created.
const fuzzDialogTag = "fuzztag"

// seedMessages are well-formed messages the corpus starts from; the fuzzer
// mutates them into everything else. {addr} is the agent's address.
var seedMessages = []string{
	"OPTIONS sip:callctl@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-o1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:callctl@{addr}>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"OPTIONS sips:callctl@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-o1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:callctl@{addr}>\r\nCall-ID: o2\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"INVITE sip:2001@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-i1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a1\r\nTo: <sip:2001@{addr}>\r\nCall-ID: d1\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1:5999>\r\nContent-Type: application/sdp\r\nContent-Length: 18\r\n\r\nv=0\r\ns=-\r\nt=0 0\r\n" +
		"\x00--next--\x00" +
		"ACK sip:callctl@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-a1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a1\r\nTo: <sip:2001@{addr}>;tag=fuzztag\r\nCall-ID: d1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n" +
		"\x00--next--\x00" +
		"INFO sip:callctl@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-n1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a1\r\nTo: <sip:2001@{addr}>;tag=fuzztag\r\nCall-ID: d1\r\nCSeq: 2 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 22\r\n\r\nSignal=5\r\nDuration=160" +
		"\x00--next--\x00" +
		"BYE sip:callctl@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-b1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a1\r\nTo: <sip:2001@{addr}>;tag=fuzztag\r\nCall-ID: d1\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
	"CANCEL sip:2001@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-i1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a1\r\nTo: <sip:2001@{addr}>\r\nCall-ID: d1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
	"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bK-x\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	// RFC 3262 and RFC 4028: a caller requiring 100rel with a session
	// timer, a PRACK, an in-dialog INFO ahead of its turn.
	"INVITE sip:2001@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-r1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a2\r\nTo: <sip:2001@{addr}>\r\nCall-ID: d2\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1:5999>\r\nRequire: 100rel, timer\r\nSupported: 100rel, timer\r\nSession-Expires: 90;refresher=uac\r\nMin-SE: 90\r\nContent-Length: 0\r\n\r\n" +
		"\x00--next--\x00" +
		"PRACK sip:callctl@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-p1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a2\r\nTo: <sip:2001@{addr}>;tag=fuzztag\r\nCall-ID: d2\r\nCSeq: 2 PRACK\r\nRAck: 1 1 INVITE\r\nContent-Length: 0\r\n\r\n" +
		"\x00--next--\x00" +
		"INFO sip:callctl@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-n2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a2\r\nTo: <sip:2001@{addr}>;tag=fuzztag\r\nCall-ID: d2\r\nCSeq: 5 INFO\r\nSession-Expires: 10\r\nContent-Length: 0\r\n\r\n",
	"NOTIFY sip:callctl@{addr} SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-f1\r\nMax-Forwards: 70\r\nf: <sip:1001@127.0.0.1>;tag=a1\r\nt: <sip:2001@{addr}>;tag=fuzztag\r\ni: d1\r\nCSeq: 4 NOTIFY\r\nEvent: refer\r\nc: message/sipfrag\r\nl: 16\r\n\r\nSIP/2.0 200 OK\r\n",
}

// FuzzAgent drives a running Agent (intake, transaction layer, request
// handlers and the dialog table) with datagrams over a real socket. After
// each input the agent must still answer an OPTIONS: a panic anywhere, a
// wedged read loop or a dead process fails the run.
func FuzzAgent(f *testing.F) {
	// Dialogs an input opened are closed after it, so state does not pile
	// up across the millions of inputs a run sends (a real owner ends its
	// calls too).
	legs := make(chan *Leg, 1024)
	agent, err := NewAgent(Config{
		Listen:     "127.0.0.1:0",
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}, zap.NewNop(), func(in *Leg) {
		in.SetSink(func(Event) {})
		in.Respond(200, "OK", []byte("v=0\r\ns=-\r\nt=0 0\r\n"))
		select {
		case legs <- in:
		default:
			in.Close()
		}
	})
	if err != nil {
		f.Fatal(err)
	}
	agent.tagHook = func() string { return fuzzDialogTag }
	agent.Serve()
	f.Cleanup(func() { agent.Close(); agent.Wait() })
	for _, m := range seedMessages {
		f.Add([]byte(m))
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	to, _ := net.ResolveUDPAddr("udp4", agent.Addr())
	probe := 0
	buf := make([]byte, 65535)
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.ReplaceAll(data, []byte("{addr}"), []byte(agent.Addr()))
		for _, dgram := range bytes.Split(data, fuzzSeparator) {
			if len(dgram) > 0 {
				_, _ = conn.WriteToUDP(dgram, to)
			}
		}
		probe++
		cid := fmt.Sprintf("probe-%d", probe)
		_, _ = conn.WriteToUDP([]byte("OPTIONS sip:callctl@"+agent.Addr()+" SIP/2.0\r\nVia: SIP/2.0/UDP "+conn.LocalAddr().String()+
			";branch=z9hG4bK-"+cid+"\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:callctl@127.0.0.1>\r\nCall-ID: "+cid+
			"\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"), to)
		defer func() {
			for {
				select {
				case l := <-legs:
					l.Close()
				default:
					return
				}
			}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_ = conn.SetReadDeadline(deadline)
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("the agent stopped answering after this input: %v", err)
			}
			if bytes.Contains(buf[:n], []byte("Call-ID: "+cid+"\r\n")) && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200")) {
				return
			}
		}
	})
}

// FuzzIntakeParse checks the intake's own parsing and checks in isolation:
// whatever a datagram holds, parseDatagram and checkRequest do not panic,
// and every answer callctl would send parses as a SIP response with the
// status of its rejection.
func FuzzIntakeParse(f *testing.F) {
	for _, m := range seedMessages {
		for _, part := range bytes.Split([]byte(m), fuzzSeparator) {
			f.Add(bytes.ReplaceAll(part, []byte("{addr}"), []byte("127.0.0.1:5070")))
		}
	}
	a := &Agent{cfg: Config{UserAgent: "callctl"}, host: "127.0.0.1"}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, rej := parseDatagram(data)
		req, ok := msg.(*gosip.Request)
		if !ok {
			if res, isRes := msg.(*gosip.Response); isRes {
				checkResponse(res)
			}
			return
		}
		if rej == nil {
			// As read from the TLS listener (sips: allowed) and elsewhere.
			if checkRequestOn(req, "TLS") == nil && strings.EqualFold(req.Recipient.Scheme, "sips") && checkRequest(req) == nil {
				t.Fatalf("a sips: Request-URI passed the checks on a transport other than TLS: %q", data)
			}
			rej = checkRequest(req)
		}
		if rej == nil {
			return
		}
		out, ok := a.statelessAnswer(req, rej)
		if !ok {
			return // not answered: dropped and counted
		}
		back, err := gosip.ParseMessage(out)
		if err != nil {
			t.Fatalf("callctl's %d answer does not parse: %v\n%s", rej.status, err, out)
		}
		if res, ok := back.(*gosip.Response); !ok || res.StatusCode != rej.status {
			t.Fatalf("answer re-parses as %v, want status %d", back, rej.status)
		}
	})
}

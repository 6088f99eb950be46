package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeB2BUA is the smallest target that exercises the generator's answer
// to a re-INVITE: it answers the caller side's INVITE itself, calls the
// callee side with a second dialog, relays RTP between them through a
// pair of sockets, and can then move each party to a new pair, as callctl
// does after a restart.
type fakeB2BUA struct {
	t    *testing.T
	sig  *net.UDPConn
	msgs chan *sipMsg
	srcs chan netip.AddrPort
}

func newFakeB2BUA(t *testing.T) *fakeB2BUA {
	t.Helper()
	f := &fakeB2BUA{t: t, sig: listenUDP(t), msgs: make(chan *sipMsg, 64), srcs: make(chan netip.AddrPort, 64)}
	go func() {
		for {
			buf := make([]byte, 65535)
			n, src, err := f.sig.ReadFromUDPAddrPort(buf)
			if err != nil {
				close(f.msgs)
				return
			}
			m := new(sipMsg)
			if parseSIP(buf[:n], m) == nil {
				f.msgs <- m
				f.srcs <- src
			}
		}
	}()
	return f
}

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// expect reads SIP messages until one matches, dropping the others
// (retransmissions, ACKs the test does not look at).
func (f *fakeB2BUA) expect(what string, match func(*sipMsg) bool) (*sipMsg, netip.AddrPort) {
	f.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-f.msgs:
			if !ok {
				f.t.Fatalf("waiting for %s: socket closed", what)
			}
			src := <-f.srcs
			if match(m) {
				return m, src
			}
		case <-deadline:
			f.t.Fatalf("no %s in 5 s", what)
		}
	}
}

func (f *fakeB2BUA) send(to netip.AddrPort, msg string) {
	f.t.Helper()
	if _, err := f.sig.WriteToUDPAddrPort([]byte(msg), to); err != nil {
		f.t.Fatal(err)
	}
}

func sdpOn(port uint16, version int) string {
	return fmt.Sprintf("v=0\r\no=- 42 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", version, port)
}

// request is an in-dialog or initial request from the fake.
func (f *fakeB2BUA) request(method, ruri, from, to, callID string, cseq int, branch, body string) string {
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\r\n"
	}
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:fake@%s>\r\n%sContent-Length: %d\r\n\r\n%s",
		method, ruri, addrOf(f.sig), branch, from, to, callID, cseq, method, addrOf(f.sig), ct, len(body), body)
}

// relay copies RTP arriving at in to dst, sent from out; it counts the
// packets and ends when in is closed.
func relay(in, out *net.UDPConn, dst func() netip.AddrPort, n *atomic.Uint64) {
	buf := make([]byte, 1500)
	for {
		k, _, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		n.Add(1)
		if d := dst(); d.IsValid() {
			_, _ = out.WriteToUDPAddrPort(buf[:k], d)
		}
	}
}

func mediaAddrOf(t *testing.T, m *sipMsg) netip.AddrPort {
	t.Helper()
	info, err := parseSDP(m.body)
	if err != nil {
		t.Fatalf("SDP: %v in %q", err, m.body)
	}
	a, ok := mediaDst(info)
	if !ok {
		t.Fatalf("SDP without a media address: %q", m.body)
	}
	return a
}

// A re-INVITE with a new media address in its offer, on either leg, is
// answered 200 with the generator's SDP (RFC 3261 14.2), the 200 is
// retransmitted until its ACK (13.3.1.4), a retransmitted re-INVITE gets
// the same answer, and from then on the party's RTP goes to the new
// address (RFC 3264 8.3.1): WatchResume/Resumed see audio flowing again
// both ways once both legs moved, and the call still ends normally.
func TestReinviteMovesMediaAndIsRetransmittedUntilACK(t *testing.T) {
	f := newFakeB2BUA(t)
	g, err := New(Config{Target: addrOf(f.sig).String(), UASListen: "127.0.0.1:0", Calls: 1, Hold: time.Minute, RTP: true, Drain: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	type runOut struct {
		r   *Result
		err error
	}
	done := make(chan runOut, 1)
	go func() { r, err := g.Run(context.Background()); done <- runOut{r, err} }()

	// Two relay socket pairs: old (a1 toward the caller, b1 toward the
	// callee) and new (a2, b2).
	a1, b1, a2, b2 := listenUDP(t), listenUDP(t), listenUDP(t), listenUDP(t)
	var callerMedia, calleeMedia atomic.Pointer[netip.AddrPort]
	get := func(p *atomic.Pointer[netip.AddrPort]) func() netip.AddrPort {
		return func() netip.AddrPort {
			if a := p.Load(); a != nil {
				return *a
			}
			return netip.AddrPort{}
		}
	}
	var atA1, atB1, atA2, atB2 atomic.Uint64
	go relay(a1, b1, get(&calleeMedia), &atA1)
	go relay(b1, a1, get(&callerMedia), &atB1)
	go relay(a2, b2, get(&calleeMedia), &atA2)
	go relay(b2, a2, get(&callerMedia), &atB2)

	// The caller's INVITE: answered here with the old port.
	inv, callerSIP := f.expect("the caller's INVITE", func(m *sipMsg) bool { return m.request && string(m.method) == "INVITE" })
	cm := mediaAddrOf(t, inv)
	callerMedia.Store(&cm)
	callerFrom, callerCallID, callerRURI := string(inv.from), string(inv.callID), string(inv.contactURI)
	callerTo := string(inv.to) + ";tag=fa"
	f.send(callerSIP, string(appendResponse(nil, inv.head(), 200, "OK", "fa",
		[]byte("Contact: <sip:fake@"+addrOf(f.sig).String()+">\r\n"), "application/sdp", []byte(sdpOn(addrOf(a1).Port(), 1)))))

	// The callee's leg, with the old port, to the number dialled (the
	// generator pairs its two sides by it).
	number, _, _ := strings.Cut(strings.TrimPrefix(string(inv.ruri), "sip:"), "@")
	calleeSIP := g.UASAddr()
	calleeFrom, calleeCallID := "<sip:fake@127.0.0.1>;tag=fb", "leg-b@fake"
	calleeTo := "<sip:" + number + "@" + calleeSIP.String() + ">"
	f.send(calleeSIP, f.request("INVITE", "sip:"+number+"@"+calleeSIP.String(), calleeFrom, calleeTo, calleeCallID, 1, "b1", sdpOn(addrOf(b1).Port(), 1)))
	ok, _ := f.expect("the callee's 200", func(m *sipMsg) bool { return !m.request && m.status == 200 && string(m.callID) == calleeCallID })
	em := mediaAddrOf(t, ok)
	calleeMedia.Store(&em)
	calleeTo = string(ok.to)
	f.send(calleeSIP, f.request("ACK", "sip:uas@"+calleeSIP.String(), calleeFrom, calleeTo, calleeCallID, 1, "b1a", ""))

	waitFor(t, "RTP both ways through the old ports", func() bool { return atA1.Load() > 5 && atB1.Load() > 5 })
	// The old relay dies (as a killed callctl's ports do); packets sent
	// from now on can only arrive through the new one.
	a1.Close()
	b1.Close()
	mark := time.Now()
	if n := g.WatchResume(mark); n != 1 {
		t.Fatalf("WatchResume watches %d calls, want 1", n)
	}
	time.Sleep(100 * time.Millisecond)
	if r := g.Resumed(); len(r) != 1 || !r[0].CallerToCallee.IsZero() || !r[0].CalleeToCaller.IsZero() {
		t.Fatalf("before any re-INVITE Resumed = %+v, want one call, neither direction resumed", r)
	}

	// Re-INVITE the caller onto a2; hold back the ACK to see the 200
	// retransmitted, and retransmit the re-INVITE to see the same answer.
	reinv := f.request("INVITE", callerRURI, callerTo, callerFrom, callerCallID, 1001, "ra", sdpOn(addrOf(a2).Port(), 2))
	f.send(callerSIP, reinv)
	isReinvOK := func(m *sipMsg) bool {
		return !m.request && string(m.callID) == callerCallID && m.cseq == 1001
	}
	first, _ := f.expect("the caller's 200 to the re-INVITE", isReinvOK)
	if first.status != 200 || len(first.body) == 0 || !strings.Contains(string(first.to), "tag=") {
		t.Fatalf("caller answered the re-INVITE %d with body %q, want 200 with SDP", first.status, first.body)
	}
	if got := mediaAddrOf(t, first); got != cm {
		t.Errorf("caller's answer offers %v, want its RTP socket %v", got, cm)
	}
	firstBody := string(first.body)
	t0 := time.Now()
	again, _ := f.expect("the caller's 200 retransmitted (no ACK yet)", isReinvOK)
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("200 retransmitted after %v, want about T1 (500 ms)", d)
	}
	if string(again.body) != firstBody {
		t.Errorf("retransmitted 200 differs: %q, want %q", again.body, firstBody)
	}
	f.send(callerSIP, reinv)
	dup, _ := f.expect("the answer to the retransmitted re-INVITE", isReinvOK)
	if string(dup.body) != firstBody {
		t.Errorf("a retransmitted re-INVITE got another answer: %q, want %q", dup.body, firstBody)
	}
	f.send(callerSIP, f.request("ACK", callerRURI, callerTo, callerFrom, callerCallID, 1001, "raa", ""))

	// Re-INVITE the callee onto b2, ACKed at once.
	f.send(calleeSIP, f.request("INVITE", "sip:uas@"+calleeSIP.String(), calleeFrom, calleeTo, calleeCallID, 1001, "rb", sdpOn(addrOf(b2).Port(), 2)))
	cok, _ := f.expect("the callee's 200 to the re-INVITE", func(m *sipMsg) bool {
		return !m.request && string(m.callID) == calleeCallID && m.cseq == 1001
	})
	if cok.status != 200 || len(cok.body) == 0 {
		t.Fatalf("callee answered the re-INVITE %d, want 200 with SDP", cok.status)
	}
	f.send(calleeSIP, f.request("ACK", "sip:uas@"+calleeSIP.String(), calleeFrom, calleeTo, calleeCallID, 1001, "rba", ""))

	waitFor(t, "RTP both ways through the new ports", func() bool { return atA2.Load() > 5 && atB2.Load() > 5 })
	waitFor(t, "Resumed to see audio both ways", func() bool {
		r := g.Resumed()
		_, both := r[0].Both()
		return both
	})
	r := g.Resumed()[0]
	at, _ := r.Both()
	if r.Ended || at.Before(mark) || at.Sub(mark) > 5*time.Second {
		t.Errorf("Resumed = %+v; want audio again both ways after the mark %v", r, mark)
	}

	// A normal end: the caller's BYE (answered here), a BYE to the callee.
	go g.EndCalls()
	bye, src := f.expect("the caller's BYE", func(m *sipMsg) bool { return m.request && string(m.method) == "BYE" })
	if !strings.HasPrefix(string(bye.ruri), "sip:fake@") {
		t.Errorf("BYE to %q, want the Contact of the re-INVITE (a target refresh)", bye.ruri)
	}
	f.send(src, string(appendResponse(nil, bye.head(), 200, "OK", "", nil, "", nil)))
	f.send(calleeSIP, f.request("BYE", "sip:uas@"+calleeSIP.String(), calleeFrom, calleeTo, calleeCallID, 1002, "bb", ""))
	f.expect("the callee's 200 to the BYE", func(m *sipMsg) bool { return !m.request && string(m.callID) == calleeCallID && m.cseq == 1002 })

	var out runOut
	select {
	case out = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the BYE")
	}
	if out.err != nil || !out.r.OK() {
		t.Fatalf("Run: %v, calls %+v", out.err, out.r.Calls)
	}
	v := out.r.Reinvites
	want := ReinviteResult{CallerAnswered: 1, CalleeAnswered: 1, MediaMoved: 2, ACKed: 2}
	if v == nil || *v != want {
		t.Errorf("Reinvites = %+v, want %+v", v, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("no %s in 5 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Under a resume watch, a packet sent after the mark counts as audio again
// only where its own call's far side receives it; arriving at another
// socket, it took another call's path and is counted as crossed.
func TestResumeWatchCountsOnlyTheStreamsOwnSocket(t *testing.T) {
	table := newStreamTable()
	own := &mediaSocket{table: table, hist: NewHistogram(), lastEvent: map[uint32]uint32{}}
	other := &mediaSocket{table: table, hist: NewHistogram(), lastEvent: map[uint32]uint32{}}
	s := newStream(table, netip.MustParseAddrPort("127.0.0.1:9"))
	s.receiver.Store(own)
	buf := make([]byte, audioLen)
	packet := func() []byte {
		s.next(buf)
		binary.BigEndian.PutUint64(buf[offSent:], uint64(nanotime()))
		return buf
	}
	var c batchCount
	own.receive(packet(), nanotime(), &c) // before any watch: nothing noted
	mark := nanotime()
	s.resumeFrom.Store(mark)
	other.receive(packet(), nanotime(), &c)
	if c.crossed != 1 || s.resumedAt.Load() != 0 {
		t.Fatalf("at another socket: crossed %d, resumedAt %d; want 1 and 0", c.crossed, s.resumedAt.Load())
	}
	now := nanotime()
	own.receive(packet(), now, &c)
	if got := s.resumedAt.Load(); got != now || c.crossed != 1 {
		t.Fatalf("at its own socket: resumedAt %d (want %d), crossed %d (want 1)", got, now, c.crossed)
	}
	// An older packet (sent before the mark) never counts.
	s2 := newStream(table, netip.MustParseAddrPort("127.0.0.1:9"))
	s2.receiver.Store(own)
	s2.next(buf)
	binary.BigEndian.PutUint64(buf[offSent:], uint64(mark-1))
	s2.resumeFrom.Store(mark)
	own.receive(buf, nanotime(), &c)
	if s2.resumedAt.Load() != 0 {
		t.Error("a packet sent before the mark counted as audio again")
	}
}

package loadgen

import (
	"strings"
	"testing"
)

const inviteFromCallctl = "INVITE sip:7123@127.0.0.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK.abc;rport\r\n" +
	"v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK.def\r\n" +
	"From: \"Alice\" <sip:5000@127.0.0.1>;tag=f1\r\n" +
	"To: <sip:7123@127.0.0.1:5060>\r\n" +
	"i: call-1@host\r\n" +
	"CSeq: 7 INVITE\r\n" +
	"m: <sip:callctl@127.0.0.1:5070;transport=udp>;expires=60\r\n" +
	"Content-Type: application/sdp\r\n" +
	"l: 137\r\n\r\n" +
	"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n" +
	"m=audio 20000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=sendonly\r\n" +
	"trailing garbage beyond Content-Length"

func TestParseSIPReadsDialogAndTransactionIdentifiers(t *testing.T) {
	var m sipMsg
	if err := parseSIP([]byte(inviteFromCallctl), &m); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"method", string(m.method), "INVITE"},
		{"ruri", string(m.ruri), "sip:7123@127.0.0.1:5060"},
		{"Call-ID (compact i)", string(m.callID), "call-1@host"},
		{"CSeq method", string(m.cseqMethod), "INVITE"},
		{"From tag", string(m.fromTag), "f1"},
		{"To tag", string(m.toTag), ""},
		{"top Via branch", string(m.branch), "z9hG4bK.abc"},
		{"Contact URI (compact m)", string(m.contactURI), "sip:callctl@127.0.0.1:5070;transport=udp"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if m.cseq != 7 || len(m.vias) != 2 || !m.request {
		t.Errorf("cseq %d, %d Vias, request %v; want 7, 2, true", m.cseq, len(m.vias), m.request)
	}
	if strings.Contains(string(m.body), "garbage") {
		t.Errorf("body %q goes past Content-Length", m.body)
	}
}

func TestParseSDPReadsAudioAddressDirectionAndTelephoneEvent(t *testing.T) {
	var m sipMsg
	if err := parseSIP([]byte(inviteFromCallctl), &m); err != nil {
		t.Fatal(err)
	}
	s, err := parseSDP(m.body)
	if err != nil {
		t.Fatal(err)
	}
	dst, ok := mediaDst(s)
	if !ok || dst.String() != "127.0.0.2:20000" || s.dir != "sendonly" || s.eventPT != 96 || !s.hasPCMU {
		t.Errorf("got %v %v dir %q event PT %d PCMU %v; want 127.0.0.2:20000, sendonly, 96, true", dst, ok, s.dir, s.eventPT, s.hasPCMU)
	}
	if answerDir(s.dir) != "recvonly" || mayRTP(s.dir) {
		t.Errorf("answer to sendonly is %q and mayRTP %v; want recvonly, false", answerDir(s.dir), mayRTP(s.dir))
	}
}

func TestResponseCopiesViasAndAddsToTagOnce(t *testing.T) {
	var req sipMsg
	if err := parseSIP([]byte(inviteFromCallctl), &req); err != nil {
		t.Fatal(err)
	}
	sdp := appendSDP(nil, "127.0.0.1", 30000, 1, 2, "recvonly", 96)
	b := appendResponse(nil, req.head().clone(), 200, "OK", "t9", []byte("Contact: <sip:uas@127.0.0.1:5060>\r\n"), "application/sdp", sdp)
	var resp sipMsg
	if err := parseSIP(b, &resp); err != nil {
		t.Fatalf("our own response does not parse: %v\n%s", err, b)
	}
	if resp.status != 200 || len(resp.vias) != 2 || string(resp.toTag) != "t9" || string(resp.method) != "INVITE" ||
		string(resp.callID) != "call-1@host" || string(resp.body) != string(sdp) {
		t.Errorf("response parsed as status %d, %d Vias, To tag %q, method %q, Call-ID %q; body ok %v\n%s",
			resp.status, len(resp.vias), resp.toTag, resp.method, resp.callID, string(resp.body) == string(sdp), b)
	}
	// A response to a request that has a To tag keeps it and adds none.
	again := appendResponse(nil, resp.head(), 200, "OK", "other", nil, "", nil)
	if strings.Count(string(again), "tag=") != 2 { // From's and To's
		t.Errorf("response to an in-dialog request has %d tags, want 2:\n%s", strings.Count(string(again), "tag="), again)
	}
}

func TestParseSIPRejectsGarbage(t *testing.T) {
	var m sipMsg
	for _, b := range []string{"", "hello", "SIP/2.0 2\r\n\r\n", "INVITE sip:x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n"} {
		if parseSIP([]byte(b), &m) == nil {
			t.Errorf("parseSIP(%q) = nil, want an error", b)
		}
	}
}

func FuzzParseSIP(f *testing.F) {
	f.Add([]byte(inviteFromCallctl))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z\r\nCall-ID: x\r\nCSeq: 1 BYE\r\nl: 0\r\n\r\n"))
	// The RFC 3262 and RFC 4028 headers Config.Extensions reads.
	f.Add([]byte("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nRequire: timer, 100rel\r\nRSeq: 4294967295\r\nl: 0\r\n\r\n"))
	f.Add([]byte("PRACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z\r\nCall-ID: x\r\nCSeq: 2 PRACK\r\nRAck: 1 1 INVITE\r\nk: 100rel\r\nx: 1800;refresher=uac\r\nl: 0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nRSeq: -1\r\nl: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m sipMsg
		if parseSIP(b, &m) == nil {
			_ = timerDelta(m.sessionExpires)
			_, _ = parseSDP(m.body)
			_ = appendResponse(nil, m.head().clone(), 200, "OK", "t", nil, "", nil)
		}
	})
}

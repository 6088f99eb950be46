package torture

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/session"
)

// callCase is an INVITE that is odd but valid: it must set up a call
// through callctl to the callee exactly as the plain one does (RFC 4475
// 3.1.1 categories, written for this project). The template's $number is
// the case's own dialled number, so its session is told from the others.
type callCase struct {
	name string
	msg  string
	// callIDSuffix is added to the Call-ID (RFC 3261 25.1 word characters).
	callIDSuffix string
}

// invite is the plain INVITE the call cases change.
const invite = `
INVITE sip:$number@$host:$port SIP/2.0
Via: SIP/2.0/$transport $lhost:$lport;branch=$branch
Max-Forwards: 70
To: <sip:$number@$host:$port>
From: "Torture" <sip:torture@$lhost:$lport>;tag=$tag
Call-ID: $callid
CSeq: 1 INVITE
Contact: <sip:torture@$lhost:$lport>
Content-Type: application/sdp
Content-Length: $len

` + offer

const offer = "v=0\no=torture 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 9 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"

// inviteReplacing returns invite with old replaced by new.
func inviteReplacing(pairs ...string) string {
	m := invite
	for i := 0; i+1 < len(pairs); i += 2 {
		m = strings.Replace(m, pairs[i], pairs[i+1], 1)
	}
	return m
}

var calls = []callCase{
	{name: "plain INVITE", msg: invite},
	{name: "compact header names v f t i m l c k s", msg: `
INVITE sip:$number@$host:$port SIP/2.0
v: SIP/2.0/$transport $lhost:$lport;branch=$branch
Max-Forwards: 70
t: <sip:$number@$host:$port>
f: "Torture" <sip:torture@$lhost:$lport>;tag=$tag
i: $callid
CSeq: 1 INVITE
m: <sip:torture@$lhost:$lport>
k: timer, 100rel
s: compact
c: application/sdp
l: $len

` + offer},
	{name: "header names in odd case", msg: `
INVITE sip:$number@$host:$port SIP/2.0
vIA: SIP/2.0/$transport $lhost:$lport;branch=$branch
MAX-forwards: 70
TO: <sip:$number@$host:$port>
fROM: "Torture" <sip:torture@$lhost:$lport>;tag=$tag
call-ID: $callid
cseq: 1 INVITE
CONTACT: <sip:torture@$lhost:$lport>
content-TYPE: application/sdp
Content-length: $len

` + offer},
	{name: "white space around separators and line folding", msg: `
INVITE sip:$number@$host:$port SIP/2.0
Via  :  SIP / 2.0 / $transport   $lhost:$lport
  ;  branch = $branch
Max-Forwards :	70
To:
	<sip:$number@$host:$port>
From   :   "Torture
   folded"   <sip:torture@$lhost:$lport>
    ; tag = $tag
Call-ID	: $callid
CSeq:  1
   INVITE
Subject: a subject
 folded over
	three lines
Contact :  <sip:torture@$lhost:$lport>  
Content-Type :  application / sdp
Content-Length:   $len

` + offer},
	{name: "escaped digits in the Request-URI user", msg: inviteReplacing("INVITE sip:$number@", "INVITE sip:$escnumber@")},
	{name: "escaped characters in From and To users and a display name with escapes", msg: inviteReplacing(
		`From: "Torture" <sip:torture@`, `From: "\"Tor\\ture\" \u00e9"<sip:tor%74ure%40example.net@`,
		"To: <sip:$number@", "To: <sip:$escnumber@"),
	},
	{name: "unknown headers, an empty one and long values", msg: inviteReplacing("Content-Type:", strings.Join([]string{
		"X-Torture-Unknown: ;;,,;;=\"\\\"\"",
		"X-Empty:",
		"NewFangledHeader:   newfangled value",
		"  continued newfangled value",
		"X-Long: " + strings.Repeat("long-value-", 400),
		"Subject: " + strings.Repeat("s", 2000),
		"User-Agent: " + strings.Repeat("agent/1.0 ", 100),
		"Content-Type:"}, "\n"))},
	{name: "Request-URI with user=phone and unknown parameters", msg: inviteReplacing(
		"INVITE sip:$number@$host:$port SIP/2.0", "INVITE sip:$number@$host:$port;user=phone;x-odd=%41b;novalue SIP/2.0")},
	{name: "To as a bare addr-spec and odd but legal tokens in tag and branch", msg: inviteReplacing(
		"To: <sip:$number@$host:$port>", "To: sip:$number@$host:$port",
		";tag=$tag", ";tag=$tag.!%*_+`'~-",
		";branch=$branch", ";branch=$branch.!%*_+`'~-")},
	{name: "three Via values, the first ours, in two headers", msg: inviteReplacing(
		"Via: SIP/2.0/$transport $lhost:$lport;branch=$branch",
		"Via: SIP/2.0/$transport $lhost:$lport;branch=$branch;rport, SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-other\nVia: SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bK-v6;received=192.0.2.1")},
	{name: "Call-ID with every word character", msg: invite, callIDSuffix: "-!%*_+`'~()<>:\\\"/[]?{}"},
	{name: "Content-Type in odd case with parameters, and Max-Forwards 0070", msg: inviteReplacing(
		"Content-Type: application/sdp", "Content-Type: Application/SDP;charset=ISO-10646 ; x=\"y;z\"",
		"Max-Forwards: 70", "Max-Forwards: 0070")},
}

// runCall sends c, lets the callee answer 200 with SDP, ACKs, checks the
// session is in call, then hangs up with BYE: the call must end as the
// caller's hang-up and leave nothing behind.
func runCall(t *testing.T, cc *callctl, transport string, ce *callee, number string, c callCase) {
	w := dial(t, transport, cc.addr())
	v := newVars(w.Remote(), w.Local(), transport)
	v.Number = number
	for _, d := range []byte(number) {
		v.EscNumber += fmt.Sprintf("%%%02X", d)
	}
	v.CallID += c.callIDSuffix
	w.Send(t, render(c.msg, v))

	inv := ce.expect(t, "INVITE", 5*time.Second)
	if got := strings.Fields(inv.m.StartLine); len(got) < 2 || !strings.HasPrefix(got[1], "sip:"+number+"@") {
		t.Errorf("callctl called %q; want sip:%s@ (the dialled number)", inv.m.StartLine, number)
	}
	inv.w.Send(t, []byte(ce.response(inv.m, 200, "OK", calleeSDP)))
	res := answerTo(t, w, v.CallID, "INVITE", 5*time.Second)
	if res.Code != 200 || len(res.Body) == 0 {
		t.Fatalf("callctl answered %q with a %d-byte body; want 200 with SDP\n  answer: %s", res.StartLine, len(res.Body), res)
	}
	w.Send(t, inDialog(res, v, "ACK", 1))
	ce.expect(t, "ACK", 5*time.Second)
	id := cc.sessionFor(t, number, 5*time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)

	w.Send(t, inDialog(res, v, "BYE", 2))
	if bye := answerTo(t, w, v.CallID, "BYE", 5*time.Second); bye.Code != 200 {
		t.Errorf("callctl answered the BYE %q; want 200", bye.StartLine)
	}
	bye := ce.expect(t, "BYE", 5*time.Second)
	bye.w.Send(t, []byte(ce.response(bye.m, 200, "OK", "")))
	if end := cc.WaitEnded(t, id, 5*time.Second); end.State != session.CallerHungUp {
		t.Errorf("call ended %s (%s); want %s", end.State, end.Reason, session.CallerHungUp)
	}
}

// answerTo reads callctl's final response to the caller's method request
// of dialog callID, skipping provisionals and retransmitted answers to
// others; the test fails if none comes within timeout.
func answerTo(t *testing.T, w wire, callID, method string, timeout time.Duration) *message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	for time.Now().Before(deadline) {
		m, seenNow := finalFor(w, callID, time.Until(deadline))
		seen = append(seen, seenNow...)
		if m == nil {
			break
		}
		if m.CSeqMethod() == method {
			return m
		}
	}
	t.Fatalf("no final answer to %s within %v (saw %q)", method, timeout, seen)
	return nil
}

// inDialog is the caller's ACK or BYE in the dialog res set up (RFC 3261
// 12.2.1.1): Request-URI the remote target, To with its tag, a new branch.
func inDialog(res *message, v vars, method string, seq int) []byte {
	target := res.Get("Contact")
	if i, j := strings.Index(target, "<"), strings.Index(target, ">"); i >= 0 && j > i {
		target = target[i+1 : j]
	}
	n := serial.Add(1)
	return []byte(fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/%s %s:%s;branch=z9hG4bK-indialog-%d\r\nMax-Forwards: 70\r\n"+
		"From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
		method, target, v.Transport, v.LHost, v.LPort, n, res.Get("From"), res.Get("To"), v.CallID, seq, method))
}

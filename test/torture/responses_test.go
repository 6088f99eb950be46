package torture

import (
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/session"
)

// responseCase is a malformed response the callee sends callctl, first to
// its INVITE, then during the call to its BYE. RFC 3261 18.1.2 and 18.3
// (and 8.1.3.3 for what a UAC needs of a response) make callctl discard
// it: no ACK, nothing passed to the caller, no state; the right response
// sent after it must work as if the broken one had never come.
type responseCase struct {
	name string
	// edit breaks the callee's right response.
	edit func(string) string
	// only limits the case to one transport ("udp"): on a stream a
	// Content-Length longer than the body would swallow the next message.
	only string
	// stray: the response cannot match callctl's transaction (its CSeq
	// method is another's), so RFC 3261 18.1.2 hands it to the core, which
	// discards it without counting it as malformed.
	stray bool
}

// dropLine removes the header lines named name (case-insensitive).
func dropLine(name string) func(string) string {
	return func(res string) string {
		var out []string
		for _, l := range strings.Split(res, "\r\n") {
			if n, _, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
				continue
			}
			out = append(out, l)
		}
		return strings.Join(out, "\r\n")
	}
}

// editLine rewrites the first header line named name with f.
func editLine(name string, f func(value string) string) func(string) string {
	return func(res string) string {
		lines := strings.Split(res, "\r\n")
		for i, l := range lines {
			if n, v, ok := strings.Cut(l, ":"); ok && i > 0 && strings.EqualFold(strings.TrimSpace(n), name) {
				lines[i] = n + ": " + f(strings.TrimSpace(v))
				break
			}
		}
		return strings.Join(lines, "\r\n")
	}
}

// cseqMethod replaces the method of a CSeq value.
func cseqMethod(m string) func(string) string {
	return func(v string) string { return strings.Fields(v)[0] + " " + m }
}

// addLine adds a header line after the status line.
func addLine(line string) func(string) string {
	return func(res string) string { return strings.Replace(res, "\r\n", "\r\n"+line+"\r\n", 1) }
}

var responses = []responseCase{
	{name: "without Via", edit: dropLine("Via")},
	{name: "without From", edit: dropLine("From")},
	{name: "without To", edit: dropLine("To")},
	{name: "without Call-ID", edit: dropLine("Call-ID")},
	{name: "without CSeq", edit: dropLine("CSeq")},
	{name: "CSeq number not an integer", edit: editLine("CSeq", func(v string) string { return "one " + strings.Fields(v)[1] })},
	{name: "CSeq number 2^31", edit: editLine("CSeq", func(v string) string { return "2147483648 " + strings.Fields(v)[1] })},
	{name: "CSeq without a method", edit: editLine("CSeq", func(v string) string { return strings.Fields(v)[0] })},
	{name: "CSeq method another request's", edit: editLine("CSeq", cseqMethod("OPTIONS")), stray: true},
	{name: "two CSeq headers", edit: addLine("CSeq: 99 INVITE")},
	{name: "two To headers", edit: addLine("To: <sip:other@127.0.0.1>;tag=other")},
	{name: "version SIP/3.0", edit: func(res string) string { return strings.Replace(res, "SIP/2.0 200", "SIP/3.0 200", 1) }},
	{name: "status code 700", edit: func(res string) string { return strings.Replace(res, "SIP/2.0 200 OK", "SIP/2.0 700 Beyond", 1) }},
	{name: "status code 2000", edit: func(res string) string { return strings.Replace(res, "SIP/2.0 200 OK", "SIP/2.0 2000 OK", 1) }},
	{name: "a header line without a colon", edit: addLine("This line has no colon")},
	{name: "Via without a sent-by", edit: editLine("Via", func(string) string { return "SIP/2.0/UDP" })},
	{name: "Content-Length past the end of the datagram", only: "udp", edit: editLine("Content-Length", func(string) string { return "9999" })},
}

// runResponse sets up a call whose callee first answers the INVITE with
// c's broken 200, then the right one; during the call the caller hangs up
// and the callee answers callctl's BYE the same way.
func runResponse(t *testing.T, cc *callctl, transport string, ce *callee, number string, c responseCase) {
	w := dial(t, transport, cc.addr())
	v := newVars(w.Remote(), w.Local(), transport)
	v.Number = number
	w.Send(t, render(invite, v))
	inv := ce.expect(t, "INVITE", 5*time.Second)

	before := droppedMetric(t, cc)
	inv.w.Send(t, []byte(c.edit(ce.response(inv.m, 200, "OK", calleeSDP))))
	ce.none(t, "ACK", 500*time.Millisecond)
	if res, _ := finalFor(w, v.CallID, 100*time.Millisecond); res != nil {
		t.Fatalf("after the broken 200 callctl answered the caller %q; want nothing yet", res.StartLine)
	}
	checkDropped(t, cc, c, before, "INVITE")

	inv.w.Send(t, []byte(ce.response(inv.m, 200, "OK", calleeSDP)))
	res := answerTo(t, w, v.CallID, "INVITE", 5*time.Second)
	if res.Code != 200 {
		t.Fatalf("after the right 200 callctl answered the caller %q; want 200", res.StartLine)
	}
	w.Send(t, inDialog(res, v, "ACK", 1))
	ce.expect(t, "ACK", 5*time.Second)
	id := cc.sessionFor(t, number, 5*time.Second)
	cc.waitState(t, id, session.InCall, 5*time.Second)

	w.Send(t, inDialog(res, v, "BYE", 2))
	bye := ce.expect(t, "BYE", 5*time.Second)
	before = droppedMetric(t, cc)
	bye.w.Send(t, []byte(c.edit(ce.response(bye.m, 200, "OK", ""))))
	checkDropped(t, cc, c, before, "BYE")
	bye.w.Send(t, []byte(ce.response(bye.m, 200, "OK", "")))
	if end := cc.WaitEnded(t, id, 5*time.Second); end.State != session.CallerHungUp {
		t.Errorf("call ended %s (%s); want %s", end.State, end.Reason, session.CallerHungUp)
	}
}

// checkDropped checks callctl counted the broken response as dropped
// (callctl_sip_dropped_total), unless it is a stray.
func checkDropped(t *testing.T, cc *callctl, c responseCase, before int, to string) {
	t.Helper()
	if c.stray {
		return
	}
	var after int
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if after = droppedMetric(t, cc); after > before {
			return
		}
	}
	t.Errorf("the broken 200 to %s was not counted in callctl_sip_dropped_total (%d before, %d after); want it dropped as malformed", to, before, after)
}

package torture

import (
	"regexp"
	"slices"
	"strings"
)

// requestCase is one message sent to callctl from an allowed source, and
// the answer RFC 3261 asks for.
type requestCase struct {
	name string
	// msg is the template (see render); raw, when set, is sent as it is.
	msg string
	raw []byte
	// only limits the case to one transport ("udp"): Content-Length rules
	// differ on streams (RFC 3261 18.3).
	only string
	// want is the status code; 0 means no answer at all.
	want int
	// warning, if set, is the header a 399 Warning's text must name.
	warning string
	// unsupported lists exactly the options a 420's Unsupported must name.
	unsupported []string
	// accept lists media types a 415's Accept must include.
	accept []string
	// allow: a 405 must carry Allow.
	allow bool
	// noCallID: the request has no Call-ID, so the answer is matched by
	// arrival, not by Call-ID.
	noCallID bool
}

// options is a plain OPTIONS out of dialog; the cases below are written as
// changes to it, so each says what is odd about it.
const options = `
OPTIONS sip:1000@$host:$port SIP/2.0
Via: SIP/2.0/$transport $lhost:$lport;branch=$branch
Max-Forwards: 70
To: <sip:1000@$host:$port>
From: "Torture" <sip:torture@$lhost:$lport>;tag=$tag
Call-ID: $callid
CSeq: 1 OPTIONS
Contact: <sip:torture@$lhost:$lport>
Accept: application/sdp
Content-Length: 0
`

// without returns options with the header line starting with name removed.
func without(name string) string {
	var out []string
	for _, l := range strings.Split(options, "\n") {
		if !strings.HasPrefix(l, name+":") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// with returns options with extra header lines added before Content-Length.
func with(lines ...string) string {
	return strings.Replace(options, "Content-Length:", strings.Join(lines, "\n")+"\nContent-Length:", 1)
}

// replacing returns options with old replaced by new.
func replacing(old, new string) string { return strings.Replace(options, old, new, 1) }

// withBody returns a request of method with the given body and extra
// header lines (Content-Type among them, or not).
func withBody(method, body string, lines ...string) string {
	m := strings.ReplaceAll(options, "OPTIONS", method)
	m = strings.Replace(m, "Content-Length: 0", strings.Join(append(lines, "Content-Length: $len"), "\n"), 1)
	return strings.TrimSuffix(m, "\n") + "\n\n" + body
}

const sdpBody = "v=0\no=t 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 9 RTP/AVP 0\n"

// validOddities must work exactly as the plain OPTIONS does (RFC 4475 3.1.1
// categories, written for this project).
var validOddities = []requestCase{
	{name: "plain OPTIONS gets 200", msg: options, want: 200},
	{name: "compact header names i f t v l m get 200", msg: `
OPTIONS sip:1000@$host:$port SIP/2.0
v: SIP/2.0/$transport $lhost:$lport;branch=$branch
Max-Forwards: 70
t: <sip:1000@$host:$port>
f: <sip:torture@$lhost:$lport>;tag=$tag
i: $callid
CSeq: 1 OPTIONS
m: <sip:torture@$lhost:$lport>
l: 0
`, want: 200},
	{name: "header names in odd case get 200", msg: `
OPTIONS sip:1000@$host:$port SIP/2.0
vIA: SIP/2.0/$transport $lhost:$lport;branch=$branch
max-forwards: 70
TO: <sip:1000@$host:$port>
fRoM: <sip:torture@$lhost:$lport>;tag=$tag
CALL-ID: $callid
cseq: 1 OPTIONS
content-length: 0
`, want: 200},
	{name: "white space around colons and line folding get 200", msg: `
OPTIONS sip:1000@$host:$port SIP/2.0
Via  :   SIP/2.0/$transport $lhost:$lport
   ;branch=$branch
Max-Forwards:	70
To:
 <sip:1000@$host:$port>
From   : "Torture
  folded" <sip:torture@$lhost:$lport>
  ;tag=$tag
Call-ID: $callid
CSeq:   1
	 OPTIONS
Content-Length:   0
`, want: 200},
	{name: "escaped characters in the Request-URI user get 200", msg: replacing("OPTIONS sip:1000@", "OPTIONS sip:10%30%300;x=%41@"), want: 200},
	{name: "escaped at-sign and colon in the Request-URI user get 200", msg: replacing("OPTIONS sip:1000@", "OPTIONS sip:sips%3Auser%40example.com@"), want: 200},
	{name: "a semicolon inside the Request-URI user gets 200", msg: replacing("OPTIONS sip:1000@", "OPTIONS sip:user;par=u%40example.net@"), want: 200},
	{name: "quoted display name with escapes and no space before the angle bracket gets 200", msg: replacing(`From: "Torture" <`, `From: "\"Tor\\ture\" \u00e9"<`), want: 200},
	{name: "unusual but legal tokens in tags and branch get 200", msg: replacing("tag=$tag", "tag=$tag.!%*_+`'~-"), want: 200},
	{name: "unknown headers with odd content get 200", msg: with(
		"X-Torture-Unknown: ;;,,;;=\"\\\"\"",
		"NewFangledHeader:   newfangled value",
		"  continued newfangled value",
		"UnknownHeaderWithUnusualValue: ;;,,;;,;",
	), want: 200},
	{name: "long header values get 200", msg: with(
		"X-Long: "+strings.Repeat("long-value-", 400),
		"Subject: "+strings.Repeat("s", 2000),
	), want: 200},
	{name: "two Via values in one header get 200", msg: replacing(
		"Via: SIP/2.0/$transport $lhost:$lport;branch=$branch",
		"Via: SIP/2.0/$transport $lhost:$lport;branch=$branch;rport, SIP/2.0/SCTP 192.0.2.10;branch=z9hG4bK-other, SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bK-v6"),
		want: 200},
	{name: "IPv6 references in Contact and From get 200", msg: replacing(
		"Contact: <sip:torture@$lhost:$lport>",
		"Contact: <sip:torture@[2001:db8::10]:5070;transport=udp>, <sip:[::ffff:192.0.2.1]>"),
		want: 200},
	{name: "Content-Length absent on UDP with no body gets 200", msg: without("Content-Length"), only: "udp", want: 200},
	{name: "Content-Length smaller than the datagram: the extra bytes are dropped and OPTIONS gets 200", only: "udp", want: 200,
		msg: strings.TrimSuffix(options, "\n") + "\n\ntrailing garbage that Content-Length 0 leaves out\n"},
	{name: "Require in CANCEL is ignored: a stray CANCEL gets 481", want: 481, msg: strings.ReplaceAll(with("Require: nothingsupported"), "OPTIONS", "CANCEL")},
	{name: "unknown method gets 405 with Allow", want: 405, allow: true,
		msg: strings.ReplaceAll(options, "OPTIONS", "!interesting-Method0123456789_*+`.%indeed'~")},
}

// invalid must be refused with the answer RFC 3261 asks for.
var invalid = []requestCase{
	// RFC 3261 8.1.1: the mandatory headers.
	{name: "OPTIONS without To gets 400 naming To", msg: without("To"), want: 400, warning: "To"},
	{name: "OPTIONS without From gets 400 naming From", msg: without("From"), want: 400, warning: "From"},
	{name: "OPTIONS without Call-ID gets 400 naming Call-ID", msg: without("Call-ID"), want: 400, warning: "Call-ID", noCallID: true},
	{name: "OPTIONS without CSeq gets 400 naming CSeq", msg: without("CSeq"), want: 400, warning: "CSeq"},
	{name: "OPTIONS without Via gets 400 naming Via at the source address", msg: without("Via"), want: 400, warning: "Via"},
	{name: "OPTIONS without Max-Forwards gets 400 naming Max-Forwards", msg: without("Max-Forwards"), want: 400, warning: "Max-Forwards"},
	{name: "INVITE without To gets 400 naming To", want: 400, warning: "To"}, // msg: see init
	// RFC 3261 7.3.1 and 20: headers that take one value.
	{name: "two To headers get 400 naming To", msg: with("To: <sip:2000@$host:$port>"), want: 400, warning: "To"},
	{name: "two From headers get 400 naming From", msg: with("From: <sip:other@$lhost:$lport>;tag=other"), want: 400, warning: "From"},
	{name: "two Call-ID headers get 400 naming Call-ID", msg: with("Call-ID: second-$callid"), want: 400, warning: "Call-ID", noCallID: true},
	{name: "two CSeq headers get 400 naming CSeq", msg: with("CSeq: 2 OPTIONS"), want: 400, warning: "CSeq"},
	{name: "two Max-Forwards headers get 400 naming Max-Forwards", msg: with("Max-Forwards: 69"), want: 400, warning: "Max-Forwards"},
	{name: "two Content-Length headers get 400 naming Content-Length", msg: with("Content-Length: 0"), want: 400, warning: "Content-Length"},
	{name: "two Content-Type headers get 400 naming Content-Type", msg: withBody("OPTIONS", sdpBody, "Content-Type: application/sdp", "Content-Type: application/sdp"), want: 400, warning: "Content-Type"},
	// RFC 3261 8.1.1.5 and 20.16.
	{name: "CSeq method not the request's gets 400 naming CSeq", msg: replacing("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"), want: 400, warning: "CSeq"},
	{name: "CSeq number not an integer gets 400 naming CSeq", msg: replacing("CSeq: 1 OPTIONS", "CSeq: one OPTIONS"), want: 400, warning: "CSeq"},
	{name: "CSeq number 2^31 gets 400 naming CSeq", msg: replacing("CSeq: 1 OPTIONS", "CSeq: 2147483648 OPTIONS"), want: 400, warning: "CSeq"},
	{name: "CSeq number far past 2^32 gets 400 naming CSeq", msg: replacing("CSeq: 1 OPTIONS", "CSeq: 36893488147419103232 OPTIONS"), want: 400, warning: "CSeq"},
	{name: "negative CSeq number gets 400 naming CSeq", msg: replacing("CSeq: 1 OPTIONS", "CSeq: -1 OPTIONS"), want: 400, warning: "CSeq"},
	// RFC 3261 18.3.
	{name: "Content-Length larger than the datagram's body gets 400", only: "udp", want: 400, warning: "Content-Length",
		msg: strings.Replace(withBody("OPTIONS", sdpBody, "Content-Type: application/sdp"), "Content-Length: $len", "Content-Length: 9999", 1)},
	// RFC 3261 8.2.2.1, 19.1.1, 21.4.17, 21.5.6.
	{name: "SIP/7.0 in the request line gets 505", msg: replacing("$port SIP/2.0", "$port SIP/7.0"), want: 505},
	{name: "tel Request-URI gets 416", msg: replacing("OPTIONS sip:1000@$host:$port", "OPTIONS tel:+1-201-555-0123"), want: 416},
	{name: "sips Request-URI gets 416", msg: replacing("OPTIONS sip:1000@", "OPTIONS sips:1000@"), want: 416},
	{name: "http Request-URI gets 416", msg: replacing("OPTIONS sip:1000@$host:$port", "OPTIONS http://$host:$port/1000"), want: 416},
	{name: "unknown Request-URI scheme gets 416", msg: replacing("OPTIONS sip:1000@", "OPTIONS kitten:1000@"), want: 416},
	// RFC 3261 8.2.2.3.
	{name: "unknown Require option gets 420 with Unsupported naming it", msg: with("Require: nothingsupported"), want: 420, unsupported: []string{"nothingsupported"}},
	{name: "Require 100rel and an unknown option get 420 naming the unknown one only", msg: with("Require: 100rel, nothingsupported"), want: 420, unsupported: []string{"nothingsupported"}},
	// RFC 3261 8.2.3, 21.4.13: bodies (RFC 3261 8.2 takes them before the
	// dialog, so an INFO or NOTIFY out of any dialog still gets 415).
	{name: "OPTIONS with a text/plain body gets 415 with Accept", msg: withBody("OPTIONS", "hello\n", "Content-Type: text/plain"), want: 415, accept: []string{"application/sdp"}},
	{name: "INFO with a text/plain body gets 415 with Accept naming the DTMF types", msg: withBody("INFO", "Signal=5\n", "Content-Type: text/plain"), want: 415,
		accept: []string{"application/dtmf-relay", "application/dtmf"}},
	{name: "NOTIFY with an SDP body gets 415 with Accept naming message/sipfrag", msg: withBody("NOTIFY", sdpBody, "Event: refer", "Subscription-State: active", "Content-Type: application/sdp"), want: 415,
		accept: []string{"message/sipfrag"}},
	{name: "a body without Content-Type gets 400 naming Content-Type", msg: withBody("OPTIONS", sdpBody), want: 400, warning: "Content-Type"},
	// Nothing to parse: no answer (an answer would go to whoever was forged).
	{name: "binary junk gets no answer", raw: []byte("\x00\x01\x02\xff\xfe SIP/2.0 \x80\x81\r\n\r\n"), want: 0},
	{name: "a request line alone gets no answer", raw: []byte("OPTIONS sip:1000@127.0.0.1 SIP/2.0\r\n\r\n"), want: 0},
	{name: "a request line without a version gets no answer", raw: []byte("OPTIONS sip:1000@127.0.0.1\r\nTo: <sip:a@b>\r\n\r\n"), want: 0},
	// Request line and headers parse, so there is someone to tell: RFC 3261
	// 21.4.1 (400 for malformed syntax).
	{name: "a header line without a colon gets 400", msg: with("This line has no colon"), want: 400},
}

// The INVITE without To (the message that crashed callctl, issue 10) dials
// 9999, which routes nowhere that answers.
func init() {
	for i, c := range invalid {
		if strings.HasPrefix(c.name, "INVITE without To") {
			m := strings.ReplaceAll(strings.ReplaceAll(without("To"), "OPTIONS", "INVITE"), "sip:1000@", "sip:9999@")
			invalid[i].msg = strings.Replace(m, "Content-Length: 0", "Content-Type: application/sdp\nContent-Length: $len", 1) + "\n" + sdpBody
		}
	}
}

// warningRE is an RFC 3261 20.43 Warning value: code, agent, quoted text.
var warningRE = regexp.MustCompile(`^399 (\S+) "(.*)"$`)

// names reports whether text names header: as a word, in any case except
// for the two-letter To, which must be written as such.
func names(text, header string) bool {
	flags := "(?i)"
	if header == "To" {
		flags = ""
	}
	return regexp.MustCompile(flags + `(^|[^A-Za-z-])` + regexp.QuoteMeta(header) + `($|[^A-Za-z-])`).MatchString(text)
}

// sameSet reports whether got and want hold the same options, in any order
// and case.
func sameSet(got, want []string) bool {
	g := slices.Clone(got)
	w := slices.Clone(want)
	for i := range g {
		g[i] = strings.ToLower(g[i])
	}
	for i := range w {
		w[i] = strings.ToLower(w[i])
	}
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

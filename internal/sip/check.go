package sip

import (
	"strings"

	gosip "github.com/emiago/sipgo/sip"
)

// A rejection is the answer RFC 3261 asks for a request that must not reach
// a handler: its status, reason phrase, and the header that explains it
// (Warning, Unsupported or Accept).
type rejection struct {
	status int
	reason string
	// warning is the text of a 399 Warning (RFC 3261 20.43), naming the
	// header at fault; empty for none.
	warning string
	// extra is a header the status calls for: Unsupported with 420
	// (RFC 3261 8.2.2.3), Accept with 415 (RFC 3261 21.4.13).
	extra gosip.Header
}

// mandatory are the headers every request must carry (RFC 3261 8.1.1), in
// the order a rejection names the first one missing.
var mandatory = []string{"Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards"}

// singleValue are the headers a message may carry once only (RFC 3261 7.3:
// headers whose grammar is not a comma-separated list).
var singleValue = []string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"}

// bodyTypes are the Content-Types callctl takes, per method. A method not
// listed takes no body type in particular (its body is ignored).
var bodyTypes = map[gosip.RequestMethod][]string{
	gosip.INVITE: {"application/sdp"},
	gosip.ACK:    {"application/sdp"},
	gosip.INFO:   {"application/dtmf-relay", "application/dtmf"},
	// RFC 3261 11.2: the 200 to OPTIONS says Accept: application/sdp, so
	// a body of another type is one callctl does not understand (8.2.3).
	gosip.OPTIONS: {"application/sdp"},
	gosip.NOTIFY:  {"message/sipfrag"},
}

// maxCSeq bounds CSeq numbers: RFC 3261 8.1.1.5 says they are below 2**31.
const maxCSeq = 1<<31 - 1

// checkRequest returns why req must be refused before any handler sees it,
// or nil. It checks what RFC 3261 makes the UAS check first (8.2): the
// version, the mandatory headers, single-value headers given twice, CSeq,
// the Request-URI scheme, Require and the body's type. The caller answers
// the rejection; nothing in req has been used yet. It runs before any
// dialog lookup: RFC 3261 12.2.2 has a UAS apply the rules of 8.2 to an
// in-dialog request first, so an INFO whose body callctl cannot take is
// 415 (8.2.3) even when no dialog matches it (481).
func checkRequest(req *gosip.Request) *rejection { return checkRequestOn(req, "") }

// checkRequestOn is checkRequest for a request that arrived on transport
// ("UDP", "TCP", "TLS"; "" when unknown): a sips: Request-URI is taken only
// over TLS (RFC 3261 26.2.2: a SIPS URI must be reached over TLS on every
// hop, so one that came in the clear was not).
func checkRequestOn(req *gosip.Request, transport string) *rejection {
	if req.SipVersion != "SIP/2.0" {
		return &rejection{status: 505, reason: "Version Not Supported",
			warning: "SIP version " + printable(req.SipVersion) + " is not supported: only SIP/2.0"}
	}
	if r := checkHeaders(req, true); r != nil {
		return r
	}
	if cseq := req.CSeq(); cseq.MethodName != req.Method {
		// sipgo upper-cases the request line's method; the CSeq keeps the
		// spelling that was sent. Method names are case-sensitive (RFC
		// 3261 7.1), so "Invite" is not INVITE but a method callctl does
		// not implement: 405 (8.2.1), as for any other unknown method.
		if strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
			return &rejection{status: 405, reason: "Method Not Allowed",
				extra: gosip.NewHeader("Allow", allowHeader)}
		}
		return badRequest("CSeq method " + printable(string(cseq.MethodName)) + " does not match the request's method " + printable(string(req.Method)))
	} else if cseq.SeqNo > maxCSeq {
		return badRequest("CSeq number is not below 2**31")
	}
	// RFC 3261 8.2.2.1: a scheme we do not understand is 416. callctl
	// speaks sip:, and sips: on its TLS listener.
	switch scheme := req.Recipient.Scheme; {
	case strings.EqualFold(scheme, "sip"):
	case strings.EqualFold(scheme, "sips") && strings.EqualFold(transport, "tls"):
	case strings.EqualFold(scheme, "sips"):
		return &rejection{status: 416, reason: "Unsupported URI Scheme",
			warning: "a sips: Request-URI needs TLS (RFC 3261 26.2.2); send it to callctl's TLS listener"}
	default:
		return &rejection{status: 416, reason: "Unsupported URI Scheme",
			warning: "Request-URI scheme " + printable(scheme) + " is not supported: only sip, and sips over TLS"}
	}
	if req.Recipient.Host == "" {
		return badRequest("Request-URI has no host")
	}
	// RFC 3261 8.2.2.3: Require is ignored in ACK and CANCEL.
	if !req.IsAck() && !req.IsCancel() {
		if unknown := unsupportedRequired(req); len(unknown) > 0 {
			return &rejection{status: 420, reason: "Bad Extension",
				extra: gosip.NewHeader("Unsupported", strings.Join(unknown, ", "))}
		}
	}
	return checkBody(req)
}

// headered is what requests and responses share of sipgo's header access.
type headered interface {
	GetHeader(name string) gosip.Header
	GetHeaders(name string) []gosip.Header
	From() *gosip.FromHeader
	To() *gosip.ToHeader
	CallID() *gosip.CallIDHeader
	Via() *gosip.ViaHeader
}

// checkHeaders finds a mandatory header missing or a single-value header
// given twice. Both requests and responses use it; responses carry no
// Max-Forwards.
func checkHeaders(msg headered, isRequest bool) *rejection {
	for _, name := range mandatory {
		if name == "Max-Forwards" && !isRequest {
			continue
		}
		if msg.GetHeader(name) == nil {
			return badRequest("Missing " + name + " header")
		}
	}
	for _, name := range singleValue {
		if len(msg.GetHeaders(name)) > 1 {
			return badRequest(name + " header given more than once")
		}
	}
	// The typed accessors are what the dialog layer uses: a header that
	// is present but did not become its type is as good as missing.
	if msg.From() == nil {
		return badRequest("Malformed From header")
	}
	if msg.To() == nil {
		return badRequest("Malformed To header")
	}
	if cid := msg.CallID(); cid == nil || cid.Value() == "" {
		return badRequest("Call-ID header is empty")
	}
	if via := msg.Via(); via == nil || via.Host == "" {
		return badRequest("Via header has no sent-by host")
	}
	return nil
}

// unsupportedRequired lists the option tags of Require that callctl does
// not implement.
func unsupportedRequired(req *gosip.Request) []string {
	var unknown []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			tag = strings.TrimSpace(tag)
			if tag != "" && !supportsOption(tag) { // optionTags, prack.go
				unknown = append(unknown, tag)
			}
		}
	}
	return unknown
}

// checkBody refuses a body without Content-Type (RFC 3261 20.15: it MUST be
// present when the body is not empty) and one of a type the method does not
// take (415, RFC 3261 8.2.3), saying in Accept what it does take.
func checkBody(req *gosip.Request) *rejection {
	if len(req.Body()) == 0 {
		return nil
	}
	ct := req.ContentType()
	if ct == nil {
		return badRequest("Missing Content-Type header for a body")
	}
	allowed, ok := bodyTypes[req.Method]
	if !ok {
		return nil
	}
	mediaType, _, _ := strings.Cut(ct.Value(), ";")
	mediaType = strings.TrimSpace(mediaType)
	for _, t := range allowed {
		if strings.EqualFold(mediaType, t) {
			return nil
		}
	}
	return &rejection{status: 415, reason: "Unsupported Media Type",
		warning: "Content-Type " + printable(mediaType) + " is not accepted for " + string(req.Method),
		extra:   gosip.NewHeader("Accept", strings.Join(allowed, ", "))}
}

// checkResponse reports whether a response may be handed to a transaction:
// version, mandatory headers and a well-formed CSeq. A bad one is dropped
// (RFC 3261 18.1.2 / 18.3: a malformed response is discarded).
func checkResponse(res *gosip.Response) bool {
	if res.SipVersion != "SIP/2.0" || res.StatusCode < 100 || res.StatusCode > 699 {
		return false
	}
	if checkHeaders(res, false) != nil {
		return false
	}
	return res.CSeq().SeqNo <= maxCSeq && res.CSeq().MethodName != ""
}

func badRequest(warning string) *rejection {
	return &rejection{status: 400, reason: "Bad Request", warning: warning}
}

// printable quotes at most 32 bytes of an attacker's string for a Warning or
// a log line, so neither can be used to smuggle control characters or bulk.
func printable(s string) string {
	const max = 32
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			c = '?'
		}
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "''"
	}
	return b.String()
}

// rejectionResponse builds the answer to req for r (RFC 3261 8.2.6): the
// usual copies of Via, From, To, Call-ID and CSeq, a To tag for a final
// answer, SIP/2.0 whatever the request said, and the explaining header.
func (a *Agent) rejectionResponse(req *gosip.Request, r *rejection) *gosip.Response {
	res := gosip.NewResponseFromRequest(req, r.status, r.reason, nil)
	res.SipVersion = "SIP/2.0"
	if to := res.To(); to != nil {
		if tag, _ := to.Params.Get("tag"); tag == "" {
			to.Params.Add("tag", gosip.GenerateTagN(16))
		}
	}
	res.AppendHeader(gosip.NewHeader("Server", a.cfg.UserAgent))
	if r.warning != "" {
		res.AppendHeader(gosip.NewHeader("Warning", `399 `+a.host+` "`+r.warning+`"`))
	}
	if r.extra != nil {
		res.AppendHeader(r.extra)
	}
	return res
}

// Package torture attacks a running callctl with SIP messages the way a
// hostile or merely odd network would, and checks what it answers. The
// messages were written for this project after the categories of RFC 4475
// (the SIP torture tests): valid oddities that must work exactly like their
// plain forms (white space and line folding, compact header names, escaped
// URIs, unknown headers, IPv6 references, ...), and invalid messages that
// must be refused with the answer RFC 3261 asks for (400 with a Warning
// naming the header, 405, 415, 416, 420, 505), or, when nothing can be
// parsed at all, with no answer.
//
// Each case is a template in cases_test.go (calls_test.go for INVITEs that
// set up calls, responses_test.go for malformed responses to callctl's own
// INVITE) and runs over UDP and over TCP against one callctl per transport,
// started in-process (internal/app) with a scripted trunk in Go. Messages go
// out of raw sockets on 127.0.0.1 and answers are read with a deadline. After
// the cases a real SIPp caller calls a real SIPp callee through the same
// callctl, with RTP, and the call must connect and end cleanly with no
// session or RTP port left behind.
//
// Run it with
//
//	go test -race -count=1 ./test/torture/
//
// It needs sip-tester (SIPp) and sox; see ../../../shared/TESTING.md.
package torture

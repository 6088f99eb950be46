package media

import (
	"bytes"
	"net/netip"
	"testing"
)

// A body parsed once by ParseSDPKeep and rewritten from that parse comes
// out exactly as Rewrite makes it from the bytes, and SentTelephoneEvent
// answers for the writer's own output what ParseSDP of it says.
func TestRewriteParsedIsRewrite(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.7")
	bodies := map[string][]byte{
		"asterisk": asteriskSDP, "baresip": baresipSDP, "sipp": sippSDP, "two streams": twoStreamsSDP,
		"old hold": oldHoldSDP, "srtp then rtp": srtpThenRTPSDP, "rejected audio": rejectedAudioSDP,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			info, p, err := ParseSDPKeep(body)
			want, wantErr := ParseSDP(body)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("ParseSDPKeep error %v, ParseSDP error %v", err, wantErr)
			}
			if err != nil {
				return
			}
			if info.TelephoneEvent != want.TelephoneEvent || info.Remote != want.Remote || info.Direction != want.Direction {
				t.Fatalf("ParseSDPKeep info %+v, ParseSDP %+v", info, want)
			}
			if !bytes.Equal(p.Body(), body) {
				t.Fatal("Body() is not the parsed body")
			}
			w1 := NewSDPWriter("callctl")
			w2 := &SDPWriter{username: w1.username, sessionID: w1.sessionID, version: w1.version} // the same start
			fromBytes, err1 := w1.Rewrite(body, addr, 30000)
			fromParse, err2 := w2.RewriteParsed(p, addr, 30000)
			if (err1 == nil) != (err2 == nil) || !bytes.Equal(fromBytes, fromParse) {
				t.Fatalf("Rewrite:\n%s (%v)\nRewriteParsed:\n%s (%v)", fromBytes, err1, fromParse, err2)
			}
			if err1 != nil {
				return
			}
			// The parse is used up: a second rewrite reads the body again
			// and still agrees.
			again, err := w2.RewriteParsed(p, addr, 30000)
			if err != nil || !bytes.Equal(again, fromBytes) {
				t.Fatalf("second RewriteParsed:\n%s (%v), want\n%s", again, err, fromBytes)
			}
			sent, err := ParseSDP(again)
			if err != nil {
				t.Fatalf("callctl's own SDP does not parse: %v", err)
			}
			if pt, ok := w2.SentTelephoneEvent(again); !ok || pt != sent.TelephoneEvent {
				t.Fatalf("SentTelephoneEvent = %d, %v; ParseSDP of the body says %d", pt, ok, sent.TelephoneEvent)
			}
			if _, ok := w2.SentTelephoneEvent(bytes.Clone(again)); ok {
				t.Fatal("SentTelephoneEvent answered for a copy, not the writer's output")
			}
			if _, ok := w2.SentTelephoneEvent(fromParse); ok {
				t.Fatal("SentTelephoneEvent answered for an output that is not the last")
			}
			again[0] = 'x'
			if _, ok := w2.SentTelephoneEvent(again); ok {
				t.Fatal("SentTelephoneEvent answered for an output changed since")
			}
		})
	}
}

func TestRewriteParsedRejectsBadArguments(t *testing.T) {
	_, p, err := ParseSDPKeep(asteriskSDP)
	if err != nil {
		t.Fatal(err)
	}
	w := NewSDPWriter("callctl")
	if _, err := w.RewriteParsed(p, netip.IPv4Unspecified(), 30000); err == nil {
		t.Fatal("rewrote toward 0.0.0.0")
	}
	if _, err := w.RewriteParsed(p, netip.MustParseAddr("198.51.100.7"), 0); err == nil {
		t.Fatal("rewrote toward port 0")
	}
	// A refused rewrite leaves the parse for the next one.
	if _, err := w.RewriteParsed(p, netip.MustParseAddr("198.51.100.7"), 30000); err != nil {
		t.Fatal(err)
	}
}

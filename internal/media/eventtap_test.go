package media

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"
)

type tapped struct {
	ssrc, ts uint32
	payload  []byte
}

// tapInto installs a tap on e that hands copies of what it sees to a
// channel.
func tapInto(e *Endpoint, pt int) <-chan tapped {
	ch := make(chan tapped, 16)
	e.SetEventTap(pt, func(ssrc, ts uint32, payload []byte) {
		ch <- tapped{ssrc: ssrc, ts: ts, payload: bytes.Clone(payload)}
	})
	return ch
}

func expectTapped(t *testing.T, ch <-chan tapped, want tapped) {
	t.Helper()
	select {
	case got := <-ch:
		if got.ssrc != want.ssrc || got.ts != want.ts || !bytes.Equal(got.payload, want.payload) {
			t.Errorf("tap saw SSRC %#x ts %d payload %x; want %#x, %d, %x", got.ssrc, got.ts, got.payload, want.ssrc, want.ts, want.payload)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("tap not called; want SSRC %#x ts %d payload %x", want.ssrc, want.ts, want.payload)
	}
}

// The tap runs on the reader after the packet is relayed; once a later
// packet has come out at the other side, a tap call for an earlier one would
// have happened.
func expectNotTapped(t *testing.T, ch <-chan tapped, what string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Errorf("%s: tap saw SSRC %#x ts %d payload %x, want no call", what, got.ssrc, got.ts, got.payload)
	default:
	}
}

func TestEventTapSeesTelephoneEventsAsTheyAreRelayed(t *testing.T) {
	c := newCall(t, 2)
	c.b.SetPayloadMap(101, 96) // leg B's telephone-event type differs
	events := tapInto(c.a, 101)

	src := &stream{ssrc: 0xA, seq: 10, ts: 8000, pt: 0}
	c.phoneA.send(rtpAddr(c.a), src.next())
	c.phoneB.recv()

	// RFC 4733 §2.3: digit 5, end bit clear, volume 10, duration 160; with
	// a CSRC, which the tap must skip.
	digit := []byte{5, 0x0a, 0, 160}
	ev := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, Marker: true, SequenceNumber: 11, Timestamp: 8160,
		SSRC: 0xA, CSRC: []uint32{0xC5}}, Payload: digit}
	c.phoneA.send(rtpAddr(c.a), ev)
	if got := c.phoneB.recv(); got.PayloadType != 96 || !bytes.Equal(got.Payload, digit) {
		t.Errorf("event relayed as PT %d payload %x, want PT 96 and %x: the tap must not stop or change the relay", got.PayloadType, got.Payload, digit)
	}
	expectTapped(t, events, tapped{ssrc: 0xA, ts: 8160, payload: digit})

	// Audio is not tapped.
	c.phoneA.send(rtpAddr(c.a), src.next())
	c.phoneB.recv()
	c.phoneA.send(rtpAddr(c.a), src.next())
	c.phoneB.recv()
	expectNotTapped(t, events, "audio, PT 0")

	// Still tapped when nothing is relayed (hold).
	c.a.Disconnect()
	end := []byte{5, 0x8a, 1, 64}
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 14, Timestamp: 8160, SSRC: 0xA}, Payload: end})
	expectTapped(t, events, tapped{ssrc: 0xA, ts: 8160, payload: end})
	Connect(c.a, c.b)

	// -1 removes the tap.
	c.a.SetEventTap(-1, func(uint32, uint32, []byte) { t.Error("tap called after SetEventTap(-1, f)") })
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 15, Timestamp: 8480, SSRC: 0xA}, Payload: digit})
	c.phoneB.recv()
	c.phoneA.send(rtpAddr(c.a), src.next())
	c.phoneB.recv()
	expectNotTapped(t, events, "after SetEventTap(-1, f)")
}

func TestEventTapIgnoresPacketsTheEndpointRefuses(t *testing.T) {
	c := newCall(t, 2)
	events := tapInto(c.a, 101)
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 1}, Payload: []byte{1}})
	c.phoneB.recv() // latched on phone A

	intruder := newPhone(t)
	intruder.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SSRC: 666}, Payload: []byte{1, 0x8a, 0, 160}})
	eventually(t, "the intruder's event is dropped", func() bool { return c.a.Stats().Dropped == 1 })
	expectNotTapped(t, events, "a packet from a source other than the latched one")
}

func TestRTPPayloadSkipsHeaderCSRCsExtensionAndPadding(t *testing.T) {
	hdr := func(b0 byte, rest ...byte) []byte {
		return append([]byte{b0, 101, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, rest...)
	}
	tests := []struct {
		name string
		pkt  []byte
		want []byte // nil: refused
	}{
		{name: "plain", pkt: hdr(0x80, 1, 2, 3, 4), want: []byte{1, 2, 3, 4}},
		{name: "header only", pkt: hdr(0x80), want: []byte{}},
		{name: "two CSRCs", pkt: hdr(0x82, 9, 9, 9, 9, 8, 8, 8, 8, 1, 2), want: []byte{1, 2}},
		{name: "extension of one word", pkt: hdr(0x90, 0xbe, 0xde, 0, 1, 7, 7, 7, 7, 1, 2), want: []byte{1, 2}},
		{name: "CSRC and empty extension", pkt: hdr(0x91, 9, 9, 9, 9, 0xbe, 0xde, 0, 0, 1), want: []byte{1}},
		{name: "padding of three", pkt: hdr(0xa0, 1, 2, 0, 0, 3), want: []byte{1, 2}},
		{name: "padding is all there is", pkt: hdr(0xa0, 0, 2), want: []byte{}},
		{name: "CSRCs beyond the packet", pkt: hdr(0x83, 9, 9, 9, 9), want: nil},
		{name: "extension header cut short", pkt: hdr(0x90, 0xbe, 0xde), want: nil},
		{name: "extension beyond the packet", pkt: hdr(0x90, 0xbe, 0xde, 0, 2, 7, 7, 7, 7), want: nil},
		{name: "padding count zero", pkt: hdr(0xa0, 1, 2, 0), want: nil},
		{name: "padding beyond the payload", pkt: hdr(0xa0, 1, 5), want: nil},
		{name: "padding bit on a bare header", pkt: hdr(0xa0), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rtpPayload(tt.pkt)
			if ok != (tt.want != nil) || !bytes.Equal(got, tt.want) {
				t.Errorf("rtpPayload = %x, %v; want %x, %v", got, ok, tt.want, tt.want != nil)
			}
			if ok {
				var p rtp.Packet
				if err := p.Unmarshal(tt.pkt); err != nil || !bytes.Equal(p.Payload, got) {
					t.Errorf("pion reads payload %x (err %v), rtpPayload %x", p.Payload, err, got)
				}
			}
		})
	}
}

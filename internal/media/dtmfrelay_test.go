package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A payload type dropped toward a party (its telephone-event when the party
// did not negotiate it) never reaches it; other types do, and the sender's
// tap still sees the dropped packets. ResetPayloadMap relays it again.
func TestDropPayloadKeepsATypeFromTheParty(t *testing.T) {
	c := newCall(t, 2)
	tapped := make(chan uint32, 4)
	c.a.SetEventTap(101, func(ssrc, ts uint32, payload []byte) { tapped <- ts })
	c.b.DropPayload(101)
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 1, Timestamp: 77, SSRC: 5},
		Payload: []byte{1, 0x0a, 0, 160}})
	c.phoneB.expectSilence("telephone-event dropped toward B")
	if ts := <-tapped; ts != 77 {
		t.Errorf("tap saw timestamp %d; want 77", ts)
	}
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 2, SSRC: 5}, Payload: make([]byte, 160)})
	if got := c.phoneB.recv(); got.PayloadType != 0 {
		t.Errorf("PCMU arrived as PT %d", got.PayloadType)
	}
	if s := c.a.Stats(); s.Dropped != 1 {
		t.Errorf("a.Stats().Dropped = %d; want 1 (the telephone-event packet)", s.Dropped)
	}
	c.b.ResetPayloadMap()
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 3, SSRC: 5}, Payload: []byte{1, 0x8a, 0, 160}})
	if got := c.phoneB.recv(); got.PayloadType != 101 {
		t.Errorf("after ResetPayloadMap PT 101 arrived as %d", got.PayloadType)
	}
}

// While muted, what the peer relays is dropped and callctl's own packets go;
// unmuted, relaying resumes in the same stream.
func TestMuteRelayLetsOnlyOwnPacketsThrough(t *testing.T) {
	c := newCall(t, 2)
	c.b.MuteRelay(true)
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, SSRC: 5}, Payload: make([]byte, 160)})
	c.phoneB.expectSilence("relay muted")
	if err := c.b.WriteRTP(&rtp.Packet{Header: rtp.Header{PayloadType: 101, SequenceNumber: 9, SSRC: 6}, Payload: []byte{1, 0, 0, 160}}); err != nil {
		t.Fatal(err)
	}
	own := c.phoneB.recv()
	if own.PayloadType != 101 {
		t.Errorf("own packet arrived as PT %d", own.PayloadType)
	}
	c.b.MuteRelay(false)
	c.phoneA.send(rtpAddr(c.a), &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 2, SSRC: 5}, Payload: make([]byte, 160)})
	got := c.phoneB.recv()
	if got.SequenceNumber != own.SequenceNumber+1 || !got.Marker {
		t.Errorf("after unmute: seq %d marker %v; want %d, true (the stream goes on, source change marked)", got.SequenceNumber, got.Marker, own.SequenceNumber+1)
	}
}

func TestWithTelephoneEventAddsItToAnAnswerWithout(t *testing.T) {
	out, err := WithTelephoneEvent(sippSDP, 101, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseSDP(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if info.TelephoneEvent != 101 || len(info.Codecs) != 2 || info.Codecs[0].Name != "PCMU" {
		t.Errorf("got telephone-event %d, codecs %+v; want 101 after PCMU\n%s", info.TelephoneEvent, info.Codecs, out)
	}
	if !bytes.Contains(out, []byte("a=fmtp:101 0-15\r\n")) {
		t.Errorf("no fmtp 0-15:\n%s", out)
	}
	// Already there, or the type taken: unchanged.
	for _, tc := range []struct {
		body []byte
		pt   uint8
	}{{baresipSDP, 101}, {sippSDP, 0}, {rejectedAudioSDP, 101}} {
		got, err := WithTelephoneEvent(tc.body, tc.pt, 8000)
		if err != nil || !bytes.Equal(got, tc.body) {
			t.Errorf("WithTelephoneEvent(pt %d) changed the body (err %v):\n%s", tc.pt, err, got)
		}
	}
	if _, err := WithTelephoneEvent(sippSDP, 128, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("pt 128: err %v; want ErrInvalidArgument", err)
	}
}

// FuzzWithTelephoneEvent: never panics; on a body ParseSDP accepts, the
// result parses with telephone-event and the body's other codecs.
func FuzzWithTelephoneEvent(f *testing.F) {
	for _, seed := range [][]byte{sippSDP, baresipSDP, twoStreamsSDP, rejectedAudioSDP, oldHoldSDP, []byte("m=audio 1 RTP/AVP 0\r\n"), nil} {
		f.Add(seed, uint8(101))
	}
	f.Fuzz(func(t *testing.T, body []byte, pt uint8) {
		pt &= 0x7f
		before, perr := ParseSDP(body)
		out, err := WithTelephoneEvent(body, pt, 8000)
		if perr != nil {
			if err != nil && !errors.Is(err, ErrBadSDP) {
				t.Fatalf("error %v does not wrap ErrBadSDP", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseSDP accepted the body but WithTelephoneEvent failed: %v", err)
		}
		after, err := ParseSDP(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		if !before.Port0 && after.TelephoneEvent < 0 && !bytes.Equal(out, body) {
			t.Fatalf("changed the body without adding telephone-event:\n%q", out)
		}
		if len(after.Codecs) < len(before.Codecs) {
			t.Fatalf("codecs %v became %v", before.Codecs, after.Codecs)
		}
	})
}

// Dropping a payload type and muting the relay keep the hot path free of
// allocations: the packet is tapped, counted and dropped.
func TestRelayDroppingTelephoneEventAllocatesNothingPerPacket(t *testing.T) {
	pool := newTestPool(t, 2, 0)
	a, out := allocate(t, pool), allocate(t, pool)
	sink := newPhone(t)
	sink.sdpOf(out)
	Connect(a, out)
	out.DropPayload(101)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	a.SetRemote(from, netip.AddrPort{})
	tapped := 0
	a.SetEventTap(101, func(ssrc, ts uint32, payload []byte) { tapped++ })
	pkt := make([]byte, 12+4)
	pkt[0], pkt[1] = 0x80, 101
	var rx rxSequence
	i := 0
	send := func() {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		a.receiveRTP(pkt, from, &rx, time.Now())
		i++
	}
	for range 10 {
		send()
	}
	if allocs := testing.AllocsPerRun(200, send); allocs != 0 {
		t.Errorf("dropping a telephone-event packet allocates %v times, want 0", allocs)
	}
	out.MuteRelay(true)
	pkt[1] = 0
	if allocs := testing.AllocsPerRun(200, send); allocs != 0 {
		t.Errorf("a packet into a muted relay allocates %v times, want 0", allocs)
	}
	if s := a.Stats(); s.Dropped != uint64(i) || out.Stats().PacketsOut != 0 || tapped != 10+201 {
		t.Errorf("dropped %d of %d, %d sent, %d tapped; want all dropped, none sent, 211 tapped", s.Dropped, i, out.Stats().PacketsOut, tapped)
	}
}

package media

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// The SDP bodies callctl takes from the network go through ParseSDP (see
// FuzzParseSDP in sdp_test.go), then SetDirection (hold and unhold) and
// SDPWriter.Rewrite. These targets drive the two rewriters with whatever a
// peer may send.

// FuzzSetDirection: SetDirection never panics and its errors are ErrBadSDP;
// on a body ParseSDP accepts its result parses again with the direction
// asked for and the same codecs, address and rejection.
func FuzzSetDirection(f *testing.F) {
	for _, seed := range [][]byte{asteriskSDP, baresipSDP, sippSDP, twoStreamsSDP, oldHoldSDP, rejectedAudioSDP,
		[]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\na=recvonly\r\n"),
		[]byte("m=audio 1 RTP/AVP 0\r\n"), nil} {
		f.Add(seed, uint8(0))
	}
	dirs := []Direction{SendRecv, SendOnly, RecvOnly, Inactive}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		d := dirs[int(which)%len(dirs)]
		info, perr := ParseSDP(body)
		out, err := SetDirection(body, d)
		if perr != nil {
			// callctl never rewrites a body ParseSDP refused (the leg
			// answers 488); here only a panic or a foreign error counts.
			if err != nil && !errors.Is(err, ErrBadSDP) {
				t.Fatalf("SetDirection error %v does not wrap ErrBadSDP", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseSDP accepted the body but SetDirection(%s) failed: %v", d, err)
		}
		got, err := ParseSDP(out)
		if err != nil {
			t.Fatalf("SetDirection(%s) output does not parse: %v\n%q", d, err, out)
		}
		// A c=0.0.0.0 hold reads as inactive whatever the attribute says
		// (RFC 3264 8.4).
		want := d
		if !info.Remote.IsValid() && !info.Port0 && info.Direction == Inactive {
			want = Inactive
		}
		if got.Direction != want {
			t.Fatalf("SetDirection(%s) output reads as %s\n%q", d, got.Direction, out)
		}
		if !reflect.DeepEqual(got.Codecs, info.Codecs) || got.Port0 != info.Port0 || got.Remote != info.Remote {
			t.Fatalf("SetDirection changed more than the direction: %+v -> %+v", info, got)
		}
	})
}

// FuzzRewriteIsStable: a body Rewrite accepted, rewritten again by the same
// leg's writer to the same address, comes out byte for byte the same (the
// o= version only moves when the content changes, RFC 3264 8).
func FuzzRewriteIsStable(f *testing.F) {
	for _, seed := range [][]byte{asteriskSDP, baresipSDP, sippSDP, twoStreamsSDP, oldHoldSDP, srtpThenRTPSDP, rejectedAudioSDP,
		[]byte("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtcp:4001 IN IP6 ::1\r\na=rtpmap:101 telephone-event/8000\r\n"),
		[]byte("v=0\r\n"), nil} {
		f.Add(seed)
	}
	ours := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, body []byte) {
		w := NewSDPWriter("callctl")
		out, err := w.Rewrite(body, ours, 30000)
		if _, perr := ParseSDP(body); perr != nil {
			// callctl never rewrites a body ParseSDP refused (the leg
			// answers 488); only a panic counts here.
			return
		}
		if err != nil {
			t.Fatalf("ParseSDP accepted the body but Rewrite failed: %v", err)
		}
		again, err := w.Rewrite(out, ours, 30000)
		if err != nil {
			t.Fatalf("Rewrite of its own output failed: %v\n%q", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("Rewrite of its own output changed it:\n%q\n%q", out, again)
		}
	})
}

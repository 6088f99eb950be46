package browser

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/test/peers"
)

// dtmfKeys is every key of a phone's keypad, pressed in this order.
const dtmfKeys = "1234567890*#"

// dtmfListenHarness adds to listenHarness what the DTMF test reads in the
// page: the DTMF_RECEIVED events of callctl's event stream, as the SDK
// passes them on, in window.__dtmf; window.__track(l, track), what
// getStats() says of one listen-in track (its inbound-rtp packet and
// payload byte counts, and the mimeType of the codec its codecId names);
// and window.__watch(l, track) / window.__unwatch(), which sample that
// track's codec every 20 ms in between and return every mimeType seen.
const dtmfListenHarness = `(() => {
  window.__dtmf = [];
  client.onEvent((ev) => {
    if (ev.type === "DTMF_RECEIVED") {
      __dtmf.push({ sessionId: ev.sessionId, digit: ev.dtmf?.digit ?? "", party: ev.dtmf?.party ?? "", role: ev.dtmf?.role ?? "" });
    }
  });
  window.__track = async (l, track) => {
    const report = await l.peerConnection.getStats();
    let s = null;
    report.forEach((x) => {
      if (x.type === "inbound-rtp" && x.kind === "audio" && x.trackIdentifier === track.id) s = x;
    });
    if (s === null) return null;
    const codec = report.get(s.codecId);
    return { packetsReceived: s.packetsReceived ?? 0, bytesReceived: s.bytesReceived ?? 0, packetsLost: s.packetsLost ?? 0,
      codec: codec?.mimeType ?? "" };
  };
  window.__watch = (l, track) => {
    const w = { stop: false, codecs: new Set(), samples: 0 };
    w.done = (async () => {
      while (!w.stop) {
        const s = await __track(l, track);
        w.codecs.add(s === null ? "(no inbound-rtp)" : s.codec);
        w.samples++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    window.__watching = w;
    return true;
  };
  window.__unwatch = async () => {
    const w = window.__watching;
    w.stop = true;
    await w.done;
    return { codecs: [...w.codecs], samples: w.samples };
  };
  return true;
})()`

// dtmfTrackStats is window.__track for one listen-in track.
type dtmfTrackStats struct {
	PacketsReceived int    `json:"packetsReceived"`
	BytesReceived   int    `json:"bytesReceived"`
	PacketsLost     int    `json:"packetsLost"`
	Codec           string `json:"codec"`
}

// dtmfEvent is one entry of window.__dtmf.
type dtmfEvent struct {
	SessionID string `json:"sessionId"`
	Digit     string `json:"digit"`
	Party     string `json:"party"`
	Role      string `json:"role"`
}

// sentRTP is what a party sent in a time window, from a capture of its
// RTP.
type sentRTP struct {
	audio       int         // PCMU packets (payload type 0)
	audioSizes  map[int]int // their payload sizes: how many of each
	events      int         // RFC 4733 telephone-event packets
	eventDigits string      // the keys of the events, each once
	other       int         // anything else
}

// countSent sorts the RTP packets captured between from and to.
func countSent(pkts []peers.UDPPacket, from, to time.Time) sentRTP {
	s := sentRTP{audioSizes: map[int]int{}}
	lastTS, seen := uint32(0), false
	for _, p := range pkts {
		if !p.IsRTP() || p.Time.Before(from) || p.Time.After(to) {
			continue
		}
		payload := p.RTPPayload()
		switch pt := p.RTPPayloadType(); {
		case pt == 0:
			s.audio++
			s.audioSizes[len(payload)]++
		case pt >= 96 && pt <= 127 && len(payload) == 4:
			s.events++
			// One event is the packets sharing a timestamp (RFC 4733 2.5.1).
			if ts := p.RTPTimestamp(); !seen || ts != lastTS {
				s.eventDigits += string("0123456789*#ABCD"[min(int(payload[0]), 15)])
				lastTS, seen = ts, true
			}
		default:
			s.other++
		}
	}
	return s
}

// TestDtmfSentIntoTheCallDoesNotReachTheListenerAsAudio is listen-in's
// acceptance point "DTMF sent into the call does not reach the listener's
// tracks as audio". Two baresip phones talk through callctl in PCMU (each
// sends a tone); Chromium listens in with the SDK's startListen(). The
// callee presses every key (baresip's sndcode: RFC 4733 telephone-events
// in its RTP, with the stream's SSRC and sequence numbers; baresip goes on
// sending its 20 ms PCMU packets meanwhile, so the track does not fall
// silent during a key and the test counts, from a capture of the callee's
// RTP, how many packets of each kind it sent). Then:
//
//   - callctl received the keys: the SDK passes on one DTMF_RECEIVED per
//     key, in order, from the callee; a capture of the callee's RTP shows
//     the telephone-event packets on the wire (at least minEvents in the
//     window), so the rest of the test is not vacuous.
//   - no telephone-event reached the callee's track as a packet. callctl's
//     listen-in rewrites every packet it forwards to the track's negotiated
//     payload type (PCMU), so a leaked event would not show as another
//     codec; it would show in the counts. (a) Over the window around the
//     key presses, the track's packetsReceived grows by no more than the
//     PCMU packets the callee sent in that window (plus a small slack for
//     where getStats() falls in it), whereas a leak would add every
//     telephone-event packet; it also grows by nearly as many, so the track
//     was live all along. (b) Exactly: every PCMU packet the callee sends
//     has a 160-octet payload (20 ms of G.711) and a telephone-event a
//     4-octet one, and Chromium's bytesReceived counts payload octets, so
//     bytesReceived must equal 160 × packetsReceived over the whole
//     listen-in; a single forwarded event breaks the equality.
//   - getStats() never reports the track's codec as anything but
//     audio/PCMU while the keys are pressed (sampled every 20 ms).
func TestDtmfSentIntoTheCallDoesNotReachTheListenerAsAudio(t *testing.T) {
	const (
		// slack is how many more packets than the callee's PCMU the
		// listener may count in the window: getStats() caches its report
		// for up to 50 ms, and a packet captured at the window's edge
		// reaches the browser a little later.
		slack = 10
		// margin widens the capture window by the age of getStats()'
		// cached report.
		margin = 100 * time.Millisecond
		// minEvents is the fewest telephone-event packets the window must
		// hold: far above the slack, so a leak cannot hide in it.
		minEvents = 4 * slack
	)
	p := startChromium(t)
	bobDir := t.TempDir()
	bob := peers.StartBaresip(t, peers.BaresipOptions{User: "3002", AudioWav: peers.WavFile(t, bobDir, 300, 660), Dir: bobDir})
	cc := startCallctl(t, bob.SIPAddr())
	rtpLo, rtpHi := bob.RTPPorts()
	capture := peers.StartCapture(t, fmt.Sprintf("udp and src host 127.0.0.1 and src portrange %d-%d", rtpLo, rtpHi))
	alice := peers.StartBaresip(t, peers.BaresipOptions{User: "2001"})
	if err := alice.Dial("sip:3002@" + cc.cfg.SIP.Listen); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*peers.Baresip{alice, bob} {
		if _, err := b.WaitEvent(peers.EventCallEstablished, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	id := openListenPage(t, p, cc, adminToken)
	eval[bool](t, p, "adding the DTMF test's helpers", dtmfListenHarness)
	if took, stats := startListenIn(t, p, id, "listening"); !stats.hearing() || took > 2*time.Second {
		t.Fatalf("after %v getStats shows %+v (caller %+v, callee %+v); want both parties heard within 2 s", took, stats, stats.Caller, stats.Callee)
	}
	track := func(what string) dtmfTrackStats {
		t.Helper()
		s := eval[*dtmfTrackStats](t, p, what, `__track(listening, listening.callee)`)
		if s == nil {
			t.Fatalf("%s: getStats() has no inbound-rtp for the callee's track", what)
		}
		return *s
	}

	from := time.Now()
	before := track("reading the callee track's stats before the keys")
	eval[bool](t, p, "watching the callee track's codec", `__watch(listening, listening.callee)`)
	for _, k := range dtmfKeys {
		if _, err := bob.Command("sndcode", string(k)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	waitUntil(t, p, 5*time.Second, fmt.Sprintf("%d DTMF_RECEIVED events", len(dtmfKeys)),
		fmt.Sprintf(`__dtmf.length >= %d`, len(dtmfKeys)), `JSON.stringify(__dtmf)`)
	time.Sleep(500 * time.Millisecond) // the events' last packets, and a duplicate event, would have come by now
	type watched struct {
		Codecs  []string `json:"codecs"`
		Samples int      `json:"samples"`
	}
	w := eval[watched](t, p, "stopping the codec watch", `__unwatch()`)
	after := track("reading the callee track's stats after the keys")
	to := time.Now()
	time.Sleep(200 * time.Millisecond) // the capture's last packets written
	pkts := capture.Stop(t)

	// callctl received the keys, from the callee, each once and in order.
	var digits strings.Builder
	for _, e := range eval[[]dtmfEvent](t, p, "reading the DTMF events", `__dtmf`) {
		digits.WriteString(e.Digit)
		if e.SessionID != id || e.Party != "3002" || e.Role != "callee" {
			t.Errorf("DTMF_RECEIVED %+v; want session %s, party 3002, role callee", e, id)
		}
	}
	if digits.String() != dtmfKeys {
		t.Errorf("the SDK passed on DTMF_RECEIVED digits %q; want %q, each once, in order", digits.String(), dtmfKeys)
	}

	// What the callee sent around the key presses, and what the listener
	// counted of it.
	sent := countSent(pkts, from.Add(-margin), to.Add(margin))
	got := after.PacketsReceived - before.PacketsReceived
	t.Logf("in %v the callee sent %d PCMU packets (payload sizes %v), %d telephone-event packets (keys %q), %d other; the listener's callee track counted %d packets, %d payload octets (before %+v, after %+v); codec samples %d: %v",
		to.Sub(from).Round(time.Millisecond), sent.audio, sent.audioSizes, sent.events, sent.eventDigits, sent.other, got,
		after.BytesReceived-before.BytesReceived, before, after, w.Samples, w.Codecs)
	if sent.events < minEvents || sent.eventDigits != dtmfKeys {
		t.Fatalf("the capture has %d telephone-event packets from the callee in the window, for keys %q; want at least %d, for %q (else the test proves nothing)",
			sent.events, sent.eventDigits, minEvents, dtmfKeys)
	}
	if len(sent.audioSizes) != 1 || sent.audioSizes[160] == 0 {
		t.Fatalf("the callee's PCMU packets have payload sizes %v; want 160 octets (20 ms) each, which the byte count below relies on", sent.audioSizes)
	}
	if got > sent.audio+slack {
		t.Errorf("the listener's callee track counted %d packets while the callee sent %d PCMU and %d telephone-event packets; want at most %d (the PCMU and a slack of %d): telephone-events reached the track",
			got, sent.audio, sent.events, sent.audio+slack, slack)
	}
	if got < sent.audio-4*slack {
		t.Errorf("the listener's callee track counted %d packets while the callee sent %d PCMU packets; want nearly all of them (the track was not live)", got, sent.audio)
	}
	if after.BytesReceived != 160*after.PacketsReceived {
		t.Errorf("the listener's callee track counted %d payload octets in %d packets; want 160 × %d = %d: packets other than 20 ms of PCMU (4-octet telephone-events) reached it",
			after.BytesReceived, after.PacketsReceived, after.PacketsReceived, 160*after.PacketsReceived)
	}
	if w.Samples == 0 || len(w.Codecs) != 1 || !strings.EqualFold(w.Codecs[0], "audio/PCMU") || !strings.EqualFold(after.Codec, "audio/PCMU") {
		t.Errorf("while the keys were pressed getStats() reported the callee track's codec as %v (%d samples), then %q; want audio/PCMU only",
			w.Codecs, w.Samples, after.Codec)
	}

	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, p, 10*time.Second, "the listen-in ending with the call", `listening.peerConnection.connectionState === "closed"`,
		`listening.peerConnection.connectionState`)
}

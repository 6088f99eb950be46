package peers

import (
	"bufio"
	"strings"
	"testing"
)

// baresip 1.0's audio_debug output, as read from a live call.
const audioDebug = "\n--- Audio stream ---\n tx:   encode: PCMU 8000Hz/1ch ptime=20ms S16LE\n" +
	"       source: aufile,/tmp/bx/a.wav S16LE\n       time = 3.000 sec\n" +
	" rx:   decode: PCMU 8000Hz/1ch S16LE\n       n_discard:0\n       time = 2.879 sec\n" +
	" local: 0.0.0.0:25124, remote: 127.0.0.1:25132/127.0.0.1:25133\n" +
	"RTP debug:\n Encode: seq=5771 ssrc=0xecf3ab37\n----- RTCP Session: -----\n" +
	"  cname=sip:a@127.0.0.1:25100 SSRC=0xecf3ab37/3975392055 rx=8000Hz\n" +
	"  member 0x62949447: lost=0 Jitter=0.0ms RTT=0.0ms\n" +
	"                 IP=127.0.0.1:25132 psent=0 rcvd=150\n" +
	"  member 0x11111111: lost=3 Jitter=0.0ms RTT=0.0ms\n" +
	"                 IP=127.0.0.1:25132 psent=0 rcvd=47\n" +
	"  TX: packets=151, octets=24160\n--- jitter buffer debug---\n"

func TestAudioDebugCountsSentAndReceivedOverAllSources(t *testing.T) {
	got, err := parseAudioDebug(audioDebug)
	if err != nil {
		t.Fatal(err)
	}
	want := AudioStats{TxPackets: 151, TxOctets: 24160, RxPackets: 197, RxLost: 3}
	if got != want {
		t.Errorf("parseAudioDebug = %+v; want %+v", got, want)
	}
}

func TestAudioDebugWithoutCallIsAnError(t *testing.T) {
	if _, err := parseAudioDebug("\n--- Help ---\n"); err == nil {
		t.Error("parseAudioDebug of text without a TX line: want an error")
	}
}

func TestNetstringsAreReadOneFrameAtATime(t *testing.T) {
	r := bufio.NewReader(strings.NewReader(`5:hello,0:,3:a:b,`))
	for _, want := range []string{"hello", "", "a:b"} {
		got, err := readNetstring(r)
		if err != nil || string(got) != want {
			t.Fatalf("readNetstring = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readNetstring(bufio.NewReader(strings.NewReader("5:hello;"))); err == nil {
		t.Error("netstring ended by ';': want an error")
	}
}

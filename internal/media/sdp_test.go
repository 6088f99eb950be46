package media

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// crlf turns a readable multi-line literal into an SDP body with CRLF line
// endings, as it arrives in a SIP message.
func crlf(s string) []byte {
	s = strings.TrimLeft(s, "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

var (
	asteriskSDP = crlf(`
v=0
o=- 1715087211 1715087211 IN IP4 192.0.2.10
s=Asterisk
c=IN IP4 192.0.2.10
t=0 0
m=audio 10000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
`)

	// baresip with ICE and an explicit RTCP address (RFC 3605).
	baresipSDP = crlf(`
v=0
o=- 1384186497 1173513004 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
a=tool:baresip 3.10.0
a=ice-lite
m=audio 6000 RTP/AVP 96 0 8 100 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:100 telephone-event/48000
a=rtpmap:101 telephone-event/8000
a=rtcp:6003 IN IP4 10.0.0.6
a=rtcp-mux
a=sendrecv
a=label:1
a=ice-ufrag:aDf1
a=ice-pwd:3bb6f9e8c7d1b8f6a0d4e2f1a9c8b7d6
a=candidate:1 1 UDP 2113932031 10.0.0.5 6000 typ host
a=candidate:1 2 UDP 2113932030 10.0.0.5 6001 typ host
a=end-of-candidates
`)

	sippSDP = crlf(`
v=0
o=user1 53655765 2353687637 IN IP4 127.0.1.1
s=-
c=IN IP4 127.0.1.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
`)

	// Audio and video, connection per media, no rtpmap for static PT 8.
	twoStreamsSDP = crlf(`
v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=-
t=0 0
m=audio 49170 RTP/AVP 8 97
c=IN IP4 198.51.100.7
a=rtpmap:97 iLBC/8000
a=recvonly
m=video 51372 RTP/AVP 31
c=IN IP4 198.51.100.7
a=rtpmap:31 H261/90000
a=sendrecv
`)

	// RFC 2543 hold: connection address 0.0.0.0.
	oldHoldSDP = crlf(`
v=0
o=- 1 2 IN IP4 192.0.2.20
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 18000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
`)

	// Best-effort SRTP: an RTP/SAVP line first, then plain RTP/AVP.
	srtpThenRTPSDP = crlf(`
v=0
o=- 5 5 IN IP6 2001:db8::5
s=-
c=IN IP6 2001:db8::5
t=0 0
a=sendonly
m=audio 7078 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
m=audio 7080 RTP/AVP 0 18
a=fmtp:18 annexb=no
`)

	rejectedAudioSDP = crlf(`
v=0
o=- 9 9 IN IP4 192.0.2.30
s=-
t=0 0
m=audio 0 RTP/AVP 0
`)
)

func TestParseSDP(t *testing.T) {
	pcmu := Codec{PayloadType: 0, Name: "PCMU", ClockRate: 8000, Channels: 1}
	pcma := Codec{PayloadType: 8, Name: "PCMA", ClockRate: 8000, Channels: 1}
	tests := []struct {
		name string
		body []byte
		want MediaInfo
	}{
		{name: "Asterisk", body: asteriskSDP, want: MediaInfo{
			Remote:    netip.MustParseAddrPort("192.0.2.10:10000"),
			RTCP:      netip.MustParseAddrPort("192.0.2.10:10001"),
			Direction: SendRecv,
			Codecs: []Codec{pcmu, pcma,
				{PayloadType: 101, Name: "telephone-event", ClockRate: 8000, Channels: 1, Fmtp: "0-16"}},
			TelephoneEvent: 101,
		}},
		{name: "baresip with a=rtcp and ICE", body: baresipSDP, want: MediaInfo{
			Remote:    netip.MustParseAddrPort("10.0.0.5:6000"),
			RTCP:      netip.MustParseAddrPort("10.0.0.6:6003"),
			RTCPMux:   true,
			Direction: SendRecv,
			Codecs: []Codec{
				{PayloadType: 96, Name: "opus", ClockRate: 48000, Channels: 2, Fmtp: "stereo=1;sprop-stereo=1"},
				pcmu, pcma,
				{PayloadType: 100, Name: "telephone-event", ClockRate: 48000, Channels: 1},
				{PayloadType: 101, Name: "telephone-event", ClockRate: 8000, Channels: 1},
			},
			TelephoneEvent: 101, // the 8 kHz one, though 100 comes first
		}},
		{name: "SIPp", body: sippSDP, want: MediaInfo{
			Remote:         netip.MustParseAddrPort("127.0.1.1:6000"),
			RTCP:           netip.MustParseAddrPort("127.0.1.1:6001"),
			Direction:      SendRecv,
			Codecs:         []Codec{pcmu},
			TelephoneEvent: -1,
		}},
		{name: "audio and video, media-level c=", body: twoStreamsSDP, want: MediaInfo{
			Remote:         netip.MustParseAddrPort("198.51.100.7:49170"),
			RTCP:           netip.MustParseAddrPort("198.51.100.7:49171"),
			Direction:      RecvOnly,
			Codecs:         []Codec{pcma, {PayloadType: 97, Name: "iLBC", ClockRate: 8000, Channels: 1}},
			TelephoneEvent: -1,
		}},
		{name: "c=0.0.0.0 hold", body: oldHoldSDP, want: MediaInfo{
			Direction:      Inactive,
			Codecs:         []Codec{pcmu, {PayloadType: 101, Name: "telephone-event", ClockRate: 8000, Channels: 1}},
			TelephoneEvent: 101,
		}},
		{name: "SRTP line skipped, session-level direction, IPv6", body: srtpThenRTPSDP, want: MediaInfo{
			Remote:         netip.MustParseAddrPort("[2001:db8::5]:7080"),
			RTCP:           netip.MustParseAddrPort("[2001:db8::5]:7081"),
			Direction:      SendOnly,
			Codecs:         []Codec{pcmu, {PayloadType: 18, Name: "G729", ClockRate: 8000, Channels: 1, Fmtp: "annexb=no"}},
			TelephoneEvent: -1,
		}},
		{name: "rejected audio needs no c=", body: rejectedAudioSDP, want: MediaInfo{
			Direction: SendRecv, Codecs: []Codec{pcmu}, TelephoneEvent: -1, Port0: true,
		}},
		{name: "LF line endings, no final newline", body: []byte(
			"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=inactive"),
			want: MediaInfo{
				Remote: netip.MustParseAddrPort("192.0.2.1:4000"), RTCP: netip.MustParseAddrPort("192.0.2.1:4001"),
				Direction: Inactive, Codecs: []Codec{pcmu}, TelephoneEvent: -1,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSDP(tt.body)
			if err != nil {
				t.Fatalf("ParseSDP: %v", err)
			}
			if got.Profile != "RTP/AVP" {
				t.Errorf("Profile = %q, want RTP/AVP", got.Profile)
			}
			got.Profile = "" // the table's cases are all RTP/AVP
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSDP =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

func TestParseSDPSaysWhatIsWrong(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
	tests := []struct {
		name, body, wantErr string
	}{
		{name: "empty", body: "  \r\n", wantErr: "body is empty"},
		{name: "not SDP", body: "hello world\r\n", wantErr: `line 1 "hello world" is not <type>=<value>`},
		{name: "stray CR", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=fmtp\r0\r\n",
			wantErr: `line 7 "a=fmtp\r0" contains a stray CR or NUL`},
		{name: "wrong version", body: "v=1\r\n", wantErr: `first line is "v=1", want "v=0"`},
		{name: "no media", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\n", wantErr: "no audio m= line"},
		{name: "video only", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 31\r\n",
			wantErr: "no audio m= line"},
		{name: "DTLS-SRTP only", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 0\r\n",
			wantErr: "audio is offered only as UDP/TLS/RTP/SAVPF"},
		{name: "no c=", body: head + "t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n", wantErr: "c= address missing"},
		{name: "hostname in c=", body: head + "c=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
			wantErr: `c= address "pbx.example.com" is not an IP address`},
		{name: "IPv6 address typed IP4", body: head + "c=IN IP4 2001:db8::1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
			wantErr: "does not match address type IP4"},
		{name: "multicast", body: head + "c=IN IP4 224.2.1.1/127\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
			wantErr: "multicast"},
		{name: "port too big", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
			wantErr: `bad port "99999" in m=audio line`},
		{name: "port not a number", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n",
			wantErr: `bad port "x"`},
		{name: "m= line cut short", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000\r\n",
			wantErr: "m= line \"m=audio 5000\" is incomplete"},
		{name: "payload type out of range", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0 200\r\n",
			wantErr: `bad payload type "200"`},
		{name: "rtpmap without rate", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
			wantErr: "bad a=rtpmap:0 PCMU"},
		{name: "bad a=rtcp", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtcp:0\r\n",
			wantErr: `bad port "0" in a=rtcp`},
		{name: "c= before o=", body: "v=0\r\nc=IN IP4 192.0.2.1\r\n", wantErr: `line 2 "c=IN IP4 192.0.2.1" is out of place`},
		{name: "T.38 fax", body: head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=image 5000 udptl t38\r\n",
			wantErr: "m=image streams are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ParseSDP([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseSDP succeeded with %+v, want error %q", info, tt.wantErr)
			}
			if !errors.Is(err, ErrBadSDP) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSDP error = %q, want ErrBadSDP containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRewritePointsSDPAtCallctl(t *testing.T) {
	ours := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name      string
		body      []byte
		port      int
		wantLines []string // lines that must be in the result, in this order
		notLines  []string // substrings that must not be
		wantDir   Direction
	}{
		{name: "Asterisk", body: asteriskSDP, port: 30000, wantDir: SendRecv,
			wantLines: []string{"o=callctl ", "c=IN IP4 127.0.0.1", "m=audio 30000 RTP/AVP 0 8 101",
				"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv"},
			notLines: []string{"192.0.2.10"}},
		{name: "baresip: a=rtcp follows, ICE goes", body: baresipSDP, port: 30002, wantDir: SendRecv,
			wantLines: []string{"c=IN IP4 127.0.0.1", "a=tool:baresip 3.10.0", "m=audio 30002 RTP/AVP 96 0 8 100 101",
				"b=AS:128", "a=rtcp:30003 IN IP4 127.0.0.1", "a=rtcp-mux", "a=sendrecv", "a=label:1"},
			notLines: []string{"10.0.0.", "ice-", "candidate", "6003"}},
		{name: "two streams: video rejected", body: twoStreamsSDP, port: 30004, wantDir: RecvOnly,
			wantLines: []string{"m=audio 30004 RTP/AVP 8 97", "c=IN IP4 127.0.0.1", "a=recvonly",
				"m=video 0 RTP/AVP 31", "c=IN IP4 127.0.0.1"},
			notLines: []string{"198.51.100.7", "51372"}},
		{name: "old hold becomes inactive at our address", body: oldHoldSDP, port: 30006, wantDir: Inactive,
			wantLines: []string{"c=IN IP4 127.0.0.1", "m=audio 30006 RTP/AVP 0 101", "a=inactive"},
			notLines:  []string{"0.0.0.0"}},
		{name: "SRTP line rejected, crypto gone", body: srtpThenRTPSDP, port: 30008, wantDir: SendOnly,
			wantLines: []string{"c=IN IP4 127.0.0.1", "a=sendonly", "m=audio 0 RTP/SAVP 0", "m=audio 30008 RTP/AVP 0 18"},
			notLines:  []string{"crypto", "2001:db8"}},
		{name: "rejected audio stays rejected", body: rejectedAudioSDP, port: 30010, wantDir: SendRecv,
			wantLines: []string{"m=audio 0 RTP/AVP 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewSDPWriter("callctl")
			out, err := w.Rewrite(tt.body, ours, tt.port)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			text := string(out)
			if !strings.HasPrefix(text, "v=0\r\no=callctl ") || !strings.Contains(text, " IN IP4 127.0.0.1\r\ns=") {
				t.Errorf("o= line is not ours:\n%s", text)
			}
			rest := text
			for _, l := range tt.wantLines {
				i := strings.Index(rest, l)
				if i < 0 {
					t.Fatalf("result lacks %q (in order):\n%s", l, text)
				}
				rest = rest[i+len(l):]
			}
			for _, s := range tt.notLines {
				if strings.Contains(text, s) {
					t.Errorf("result still contains %q:\n%s", s, text)
				}
			}

			// What the other party reads back: our address, the same codecs.
			got, err := ParseSDP(out)
			if err != nil {
				t.Fatalf("ParseSDP(rewritten): %v\n%s", err, text)
			}
			orig, _ := ParseSDP(tt.body)
			if !reflect.DeepEqual(got.Codecs, orig.Codecs) || got.Direction != tt.wantDir {
				t.Errorf("rewritten codecs %+v direction %s; want %+v, %s", got.Codecs, got.Direction, orig.Codecs, tt.wantDir)
			}
			if !orig.Port0 && (got.Remote != netip.AddrPortFrom(ours, uint16(tt.port)) || got.RTCP.Port() != uint16(tt.port+1)) {
				t.Errorf("rewritten remote %v RTCP %v, want 127.0.0.1:%d and :%d", got.Remote, got.RTCP, tt.port, tt.port+1)
			}
		})
	}
}

func TestSDPWriterBumpsVersionOnlyWhenContentChanges(t *testing.T) {
	w := NewSDPWriter("call ctl") // the space must not split the o= field
	ours := netip.MustParseAddr("127.0.0.1")
	origin := func(body []byte) string {
		line, _, _ := strings.Cut(strings.TrimPrefix(string(body), "v=0\r\n"), "\r\n")
		return line
	}
	steps := []struct {
		name        string
		body        []byte
		port        int
		wantVersion uint64 // relative to the first
	}{
		{name: "first offer", body: asteriskSDP, port: 30000, wantVersion: 0},
		{name: "same again (session refresh)", body: asteriskSDP, port: 30000, wantVersion: 0},
		{name: "peer's o= differs, content the same", body: bytes.Replace(asteriskSDP, []byte("1715087211 1715087211"), []byte("1715087211 1715087299"), 1),
			port: 30000, wantVersion: 0},
		{name: "new port", body: asteriskSDP, port: 30002, wantVersion: 1},
		{name: "direction changed", body: mustSetDirection(t, asteriskSDP, SendOnly), port: 30002, wantVersion: 2},
		{name: "unchanged after the change", body: mustSetDirection(t, asteriskSDP, SendOnly), port: 30002, wantVersion: 2},
	}
	var first uint64
	for i, s := range steps {
		out, err := w.Rewrite(s.body, ours, s.port)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		f := strings.Fields(origin(out))
		if len(f) != 6 || f[0] != "o=call-ctl" || f[1] != strconv.FormatUint(w.SessionID(), 10) {
			t.Fatalf("%s: o= line %q, want user call-ctl and session id %d", s.name, origin(out), w.SessionID())
		}
		v := parseUint(t, f[2])
		if i == 0 {
			first = v
		}
		if v-first != s.wantVersion {
			t.Errorf("%s: version %d, want first+%d = %d", s.name, v, s.wantVersion, first+s.wantVersion)
		}
	}
}

func TestSetDirection(t *testing.T) {
	tests := []struct {
		name     string
		body     []byte
		dir      Direction
		wantAttr int // number of direction attributes in the audio section afterwards
	}{
		{name: "replace sendrecv with sendonly", body: asteriskSDP, dir: SendOnly, wantAttr: 1},
		{name: "replace with inactive", body: asteriskSDP, dir: Inactive, wantAttr: 1},
		{name: "add where none was", body: sippSDP, dir: SendOnly, wantAttr: 1},
		{name: "only audio changes", body: twoStreamsSDP, dir: SendRecv, wantAttr: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := SetDirection(tt.body, tt.dir)
			if err != nil {
				t.Fatalf("SetDirection: %v", err)
			}
			info, err := ParseSDP(out)
			if err != nil {
				t.Fatalf("ParseSDP: %v", err)
			}
			if info.Direction != tt.dir {
				t.Errorf("direction %s, want %s", info.Direction, tt.dir)
			}
			audio, _, _ := strings.Cut(string(out), "m=video")
			_, audio, _ = strings.Cut(audio, "m=audio")
			n := 0
			for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
				n += strings.Count(audio, "a="+string(d)+"\r\n")
			}
			if n != tt.wantAttr {
				t.Errorf("audio section has %d direction attributes, want %d:\n%s", n, tt.wantAttr, out)
			}
			if origIn, origOut := originLine(tt.body), originLine(out); origIn != origOut {
				t.Errorf("o= changed from %q to %q; SetDirection must leave it to the SDPWriter", origIn, origOut)
			}
		})
	}
	if strings.Contains(string(mustSetDirection(t, twoStreamsSDP, Inactive)), "m=video 51372 RTP/AVP 31\r\nc=IN IP4 198.51.100.7\r\na=rtpmap:31 H261/90000\r\na=inactive") {
		t.Errorf("SetDirection changed the video stream's direction")
	}
	if _, err := SetDirection(asteriskSDP, "hold"); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "sendrecv, sendonly") {
		t.Errorf("SetDirection(\"hold\") error = %v, want ErrInvalidArgument listing the directions", err)
	}
	if _, err := SetDirection([]byte("v=0\r\n"), SendOnly); !errors.Is(err, ErrBadSDP) {
		t.Errorf("SetDirection on a broken body: %v, want ErrBadSDP", err)
	}
}

func TestRewriteRejectsBadArguments(t *testing.T) {
	w := NewSDPWriter("")
	tests := []struct {
		name    string
		addr    netip.Addr
		port    int
		body    []byte
		wantErr error
	}{
		{name: "no address", port: 30000, body: asteriskSDP, wantErr: ErrInvalidArgument},
		{name: "unspecified address", addr: netip.IPv4Unspecified(), port: 30000, body: asteriskSDP, wantErr: ErrInvalidArgument},
		{name: "port 0", addr: loopback, port: 0, body: asteriskSDP, wantErr: ErrInvalidArgument},
		{name: "port too big", addr: loopback, port: 65536, body: asteriskSDP, wantErr: ErrInvalidArgument},
		{name: "bad body", addr: loopback, port: 30000, body: []byte("x"), wantErr: ErrBadSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := w.Rewrite(tt.body, tt.addr, tt.port); !errors.Is(err, tt.wantErr) {
				t.Errorf("Rewrite error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	out, err := w.Rewrite(sippSDP, netip.MustParseAddr("::1"), 30000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "c=IN IP6 ::1\r\n") || !strings.HasPrefix(originLine(out), "o=- ") {
		t.Errorf("IPv6 rewrite with empty username:\n%s", out)
	}
}

func TestDirectionReverse(t *testing.T) {
	for d, want := range map[Direction]Direction{SendRecv: SendRecv, SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive} {
		if got := d.Reverse(); got != want {
			t.Errorf("%s.Reverse() = %s, want %s", d, got, want)
		}
	}
}

// FuzzParseSDP checks that no body makes the parser panic, that its errors
// are ErrBadSDP, and that whatever it accepts survives a rewrite: the
// rewritten body parses back with the same codecs, pointing at callctl.
func FuzzParseSDP(f *testing.F) {
	for _, seed := range [][]byte{asteriskSDP, baresipSDP, sippSDP, twoStreamsSDP, oldHoldSDP, srtpThenRTPSDP, rejectedAudioSDP,
		[]byte("v=0\r\n"), []byte("m=audio 1 RTP/AVP 0\r\n"), nil} {
		f.Add(seed)
	}
	ours := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := ParseSDP(body)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("ParseSDP error %v does not wrap ErrBadSDP", err)
			}
			return
		}
		if info.TelephoneEvent < -1 || info.TelephoneEvent > 127 || !info.Direction.Valid() {
			t.Fatalf("ParseSDP gave telephone-event %d direction %q", info.TelephoneEvent, info.Direction)
		}
		out, err := NewSDPWriter("callctl").Rewrite(body, ours, 30000)
		if err != nil {
			t.Fatalf("ParseSDP accepted the body but Rewrite failed: %v", err)
		}
		got, err := ParseSDP(out)
		if err != nil {
			t.Fatalf("rewritten body does not parse: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(got.Codecs, info.Codecs) || got.Port0 != info.Port0 {
			t.Fatalf("rewrite changed codecs or rejection: %+v -> %+v", info, got)
		}
		if !info.Port0 && got.Remote != netip.AddrPortFrom(ours, 30000) {
			t.Fatalf("rewritten remote %v, want 127.0.0.1:30000", got.Remote)
		}
	})
}

func mustSetDirection(t *testing.T, body []byte, d Direction) []byte {
	t.Helper()
	out, err := SetDirection(body, d)
	if err != nil {
		t.Fatalf("SetDirection(%s): %v", d, err)
	}
	return out
}

func originLine(body []byte) string {
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "o=") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func parseUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return v
}

package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// wavFile builds a RIFF WAVE file of the given fmt chunk fields and data.
func wavFile(format, channels uint16, rate uint32, bits uint16, data []byte) []byte {
	return wavChunks(fmtChunk(format, channels, rate, bits), chunk("data", data))
}

func fmtChunk(format, channels uint16, rate uint32, bits uint16) []byte {
	f := make([]byte, 16)
	binary.LittleEndian.PutUint16(f[0:], format)
	binary.LittleEndian.PutUint16(f[2:], channels)
	binary.LittleEndian.PutUint32(f[4:], rate)
	block := channels * max(bits/8, 1)
	binary.LittleEndian.PutUint32(f[8:], rate*uint32(block))
	binary.LittleEndian.PutUint16(f[12:], block)
	binary.LittleEndian.PutUint16(f[14:], bits)
	return chunk("fmt ", f)
}

func chunk(id string, body []byte) []byte {
	c := binary.LittleEndian.AppendUint32([]byte(id), uint32(len(body)))
	c = append(c, body...)
	if len(body)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

func wavChunks(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
}

func pcm16(samples ...int16) []byte {
	b := make([]byte, 0, 2*len(samples))
	for _, s := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadMusicReadsTelephonyWAVFormats(t *testing.T) {
	samples := []int16{0, 1000, -1000, 32767, -32768, 12345}
	ulaw := []byte{0xff, 0xce, 0x4e, 0x80, 0x00}
	alaw := []byte{0xd5, 0xfa, 0x7a, 0xaa, 0x2a}
	// WAVE_FORMAT_EXTENSIBLE: cbSize 22, 16 valid bits, front centre, and
	// the PCM SubFormat GUID.
	ext := append(fmtChunk(wavExtensible, 1, 8000, 16)[8:], 22, 0, 16, 0, 4, 0, 0, 0,
		1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71)
	tests := []struct {
		name     string
		file     []byte
		wantPCM  []int16
		wantULaw []byte // the file's own bytes, played as they are
	}{
		{name: "16-bit PCM", file: wavFile(wavPCM, 1, 8000, 16, pcm16(samples...)), wantPCM: samples},
		{name: "µ-law", file: wavFile(wavULaw, 1, 8000, 8, ulaw), wantPCM: []int16{0, 988, -988, 32124, -32124}, wantULaw: ulaw},
		{name: "A-law", file: wavFile(wavALaw, 1, 8000, 8, alaw), wantPCM: []int16{8, 1008, -1008, 32256, -32256}},
		{name: "extensible 16-bit PCM (ffmpeg, sox)", file: wavChunks(chunk("fmt ", ext), chunk("data", pcm16(samples...))), wantPCM: samples},
		{name: "other chunks first, odd-sized and padded", file: wavChunks(chunk("LIST", []byte("INFOabc")),
			fmtChunk(wavPCM, 1, 8000, 16), chunk("fact", []byte{1, 0, 0, 0}), chunk("data", pcm16(samples...))), wantPCM: samples},
		{name: "data size left unset by a writer to a pipe", file: func() []byte {
			f := wavFile(wavPCM, 1, 8000, 16, pcm16(samples...))
			binary.LittleEndian.PutUint32(f[len(f)-2*len(samples)-4:], 0xffffffff)
			return f
		}(), wantPCM: samples},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := LoadMusic(writeTemp(t, "moh.wav", tt.file))
			if err != nil {
				t.Fatalf("LoadMusic: %v", err)
			}
			if !slicesEqual(m.pcm, tt.wantPCM) {
				t.Errorf("samples %v, want %v", m.pcm, tt.wantPCM)
			}
			if want := time.Duration(len(tt.wantPCM)) * time.Second / 8000; m.Duration() != want {
				t.Errorf("Duration() = %v, want %v", m.Duration(), want)
			}
			if tt.wantULaw != nil && !bytes.Equal(m.ulaw(), tt.wantULaw) {
				t.Errorf("µ-law frames %x, want the file's own bytes %x", m.ulaw(), tt.wantULaw)
			}
		})
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadMusicNamesTheFileAndWhatIsWrong(t *testing.T) {
	one := pcm16(1, 2, 3)
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{name: "CD audio", file: wavFile(wavPCM, 2, 44100, 16, one), want: "sample rate 44100 Hz, want 8000; 2 channels, want mono"},
		{name: "stereo", file: wavFile(wavPCM, 2, 8000, 16, one), want: "2 channels, want mono"},
		{name: "wideband", file: wavFile(wavPCM, 1, 16000, 16, one), want: "sample rate 16000 Hz, want 8000"},
		{name: "8-bit PCM", file: wavFile(wavPCM, 1, 8000, 8, one), want: "8-bit PCM, want 16-bit"},
		{name: "float", file: wavFile(3, 1, 8000, 32, one), want: "format 3 (IEEE float), want 1 (16-bit PCM), 6 (A-law) or 7 (µ-law)"},
		{name: "16-bit µ-law", file: wavFile(wavULaw, 1, 8000, 16, one), want: "µ-law with 16 bits per sample, want 8"},
		{name: "MP3", file: append([]byte("ID3\x03\x00"), one...), want: "not a WAV file"},
		{name: "AIFF", file: append([]byte("FORM\x00\x00\x00\x10AIFF"), one...), want: "not a WAV file"},
		{name: "empty file", file: nil, want: "not a WAV file"},
		{name: "no fmt chunk", file: wavChunks(chunk("data", one)), want: "no fmt chunk"},
		{name: "no data chunk", file: wavChunks(fmtChunk(wavPCM, 1, 8000, 16)), want: "no data chunk"},
		{name: "no samples", file: wavFile(wavPCM, 1, 8000, 16, []byte{7}), want: "no audio in the data chunk"},
		{name: "fmt chunk cut short", file: wavChunks(fmtChunk(wavPCM, 1, 8000, 16)[:14]), want: `"fmt " chunk of 16 bytes is cut short at 6`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "hold.wav", tt.file)
			m, err := LoadMusic(path)
			if err == nil {
				t.Fatalf("LoadMusic accepted it: %v of music", m.Duration())
			}
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want ErrInvalidArgument naming %s and saying %q", err, path, tt.want)
			}
		})
	}

	_, err := LoadMusic(filepath.Join(t.TempDir(), "missing.wav"))
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "missing.wav") {
		t.Errorf("missing file: %v; want fs.ErrNotExist and ErrInvalidArgument naming it", err)
	}
}

// FuzzParseWAV checks that no file makes the WAV reader panic, that it
// refuses with ErrInvalidArgument, and that what it accepts can be played.
func FuzzParseWAV(f *testing.F) {
	f.Add(wavFile(wavPCM, 1, 8000, 16, pcm16(1, 2, 3)))
	f.Add(wavFile(wavULaw, 1, 8000, 8, []byte{1, 2, 3}))
	f.Add(wavFile(wavALaw, 2, 8000, 8, []byte{1, 2, 3}))
	f.Add(wavChunks(chunk("LIST", []byte("x")), fmtChunk(wavPCM, 1, 8000, 16)))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, file []byte) {
		m, err := parseWAV(file)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error %v does not wrap ErrInvalidArgument", err)
			}
			return
		}
		if len(m.pcm) == 0 || len(m.ulaw()) != len(m.pcm) || len(m.alaw()) != len(m.pcm) {
			t.Fatalf("accepted music of %d samples, %d µ-law and %d A-law bytes", len(m.pcm), len(m.ulaw()), len(m.alaw()))
		}
	})
}

func TestDefaultMusicIsAnAudibleSeamlessLoop(t *testing.T) {
	m := DefaultMusic()
	if DefaultMusic() != m {
		t.Errorf("DefaultMusic made anew; want one shared, encoded once")
	}
	if d := m.Duration(); d < 2*time.Second || d > 10*time.Second || len(m.pcm)%frameSamples != 0 {
		t.Fatalf("loop of %v (%d samples); want 2-10 s of whole 20 ms frames", d, len(m.pcm))
	}
	peak, maxStep := 0, 0
	for i, s := range m.pcm {
		peak = max(peak, abs(int(s)))
		if i > 0 {
			maxStep = max(maxStep, abs(int(s)-int(m.pcm[i-1])))
		}
	}
	if peak < math.MaxInt16/4 || peak > math.MaxInt16*3/4 {
		t.Errorf("peak %d; want a quarter to three quarters of full scale: clear, never clipped", peak)
	}
	// No silent stretch: every 100 ms has sound (above -40 dBFS).
	const window = 800
	for start := 0; start < len(m.pcm); start += window {
		if r := rms(m.pcm[start : start+window]); r < 330 {
			t.Errorf("100 ms from %v: RMS %.0f, want at least 330 (-40 dBFS)", time.Duration(start)*time.Second/8000, r)
		}
	}
	// The loop point is no louder a jump than the music makes anywhere.
	if seam := abs(int(m.pcm[0]) - int(m.pcm[len(m.pcm)-1])); seam > maxStep {
		t.Errorf("jump of %d at the loop point, larger than any within the music (%d): it would click", seam, maxStep)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func rms(s []int16) float64 {
	sum := 0.0
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

// drain reads what the phone has received until it is quiet, and returns
// the last packet (nil if none).
func (p *phone) drain() *rtp.Packet {
	p.t.Helper()
	var last *rtp.Packet
	for {
		b, _, err := p.tryRecv(p.rtp, 100*time.Millisecond)
		if err != nil {
			if !isTimeout(err) {
				p.t.Fatal(err)
			}
			return last
		}
		last = &rtp.Packet{}
		if err := last.Unmarshal(b); err != nil {
			p.t.Fatalf("phone received a non-RTP packet: %v", err)
		}
	}
}

func TestMusicOnHoldReplacesTheRelayInTheSameStream(t *testing.T) {
	c := newCall(t, 2)
	fromB := &stream{ssrc: 0xB, seq: 100, ts: 1000, pt: 8}
	c.phoneB.send(rtpAddr(c.b), fromB.next())
	lastRelayed := c.phoneA.recv()

	m := DefaultMusic()
	if err := c.a.StartMusic(m, 0, "PCMU"); err != nil {
		t.Fatalf("StartMusic: %v", err)
	}
	if !c.a.Playing() || c.b.Playing() {
		t.Fatalf("Playing: a %v, b %v; want a only", c.a.Playing(), c.b.Playing())
	}
	start := time.Now()
	const frames = 12
	var first, got *rtp.Packet
	for i := range frames {
		// B goes on talking during the hold; none of it may reach A.
		c.phoneB.send(rtpAddr(c.b), fromB.next())
		got = c.phoneA.recv()
		if i == 0 {
			first = got
			if adv := got.Timestamp - lastRelayed.Timestamp; adv > 8000 {
				t.Errorf("first frame's timestamp %d jumps %d from the last relayed %d; want the time passed", got.Timestamp, adv, lastRelayed.Timestamp)
			}
		}
		if got.PayloadType != 0 || got.SSRC != c.a.SSRC() {
			t.Fatalf("packet %d during hold: PT %d SSRC %#x; want music, PT 0 in a's stream %#x", i, got.PayloadType, got.SSRC, c.a.SSRC())
		}
		if want := lastRelayed.SequenceNumber + 1 + uint16(i); got.SequenceNumber != want {
			t.Fatalf("frame %d: seq %d, want %d (on from the relayed audio)", i, got.SequenceNumber, want)
		}
		if want := first.Timestamp + uint32(160*i); got.Timestamp != want {
			t.Errorf("frame %d: timestamp %d, want %d (160 a frame)", i, got.Timestamp, want)
		}
		if got.Marker != (i == 0) {
			t.Errorf("frame %d: marker %v, want it on the first only", i, got.Marker)
		}
		if want := m.ulaw()[160*i : 160*(i+1)]; !bytes.Equal(got.Payload, want) {
			t.Fatalf("frame %d: payload %x..., want the music's µ-law %x...", i, got.Payload[:8], want[:8])
		}
	}
	// The first frame goes at once, then one every 20 ms.
	if elapsed, want := time.Since(start), (frames-1)*frameInterval; elapsed < want*3/4 || elapsed > want*4 {
		t.Errorf("%d frames took %v, want about %v", frames, elapsed, want)
	}
	eventually(t, "B's packets are counted, and dropped", func() bool {
		s := c.b.Stats()
		return s.PacketsIn == 1+frames && s.Dropped == frames
	})

	c.a.StopMusic()
	if c.a.Playing() {
		t.Fatal("Playing() after StopMusic")
	}
	if last := c.phoneA.drain(); last != nil {
		got = last
	}
	const gap = 60 * time.Millisecond
	time.Sleep(gap)
	c.phoneB.send(rtpAddr(c.b), fromB.next())
	back := c.phoneA.recv()
	if back.PayloadType != 8 || back.SSRC != c.a.SSRC() || back.SequenceNumber != got.SequenceNumber+1 || !back.Marker {
		t.Errorf("first relayed packet after StopMusic: PT %d SSRC %#x seq %d marker %v; want PT 8, %#x, %d, marker",
			back.PayloadType, back.SSRC, back.SequenceNumber, back.Marker, c.a.SSRC(), got.SequenceNumber+1)
	}
	if adv, lo := back.Timestamp-got.Timestamp, uint32(gap.Milliseconds()*8); adv < lo || adv > 8000 {
		t.Errorf("timestamp advanced %d after the last frame, want %d..8000 (the silence at 8 kHz)", adv, lo)
	}
	c.phoneA.expectSilence("after StopMusic, with B quiet")
}

func TestMusicLoopsInPCMA(t *testing.T) {
	c := newCall(t, 2)
	pcm := make([]int16, 200) // shorter than two frames: the second one wraps
	for i := range pcm {
		pcm[i] = int16(i * 100)
	}
	m := newMusic(pcm, nil, nil)
	if err := c.a.StartMusic(m, 8, "pcma"); err != nil {
		t.Fatalf("StartMusic: %v", err)
	}
	var coded []byte // four frames take 640 samples: the music three times and more
	for range 4 {
		for _, s := range pcm {
			coded = append(coded, linearToALaw(s))
		}
	}
	for i := range 4 {
		got := c.phoneA.recv()
		if want := coded[160*i : 160*(i+1)]; got.PayloadType != 8 || !bytes.Equal(got.Payload, want) {
			t.Fatalf("frame %d: PT %d payload %x; want PT 8 and A-law of the music, looped: %x", i, got.PayloadType, got.Payload, want)
		}
	}
}

func TestStartMusicAgainSwitchesOrChangesNothing(t *testing.T) {
	c := newCall(t, 2)
	m := DefaultMusic()
	if err := c.a.StartMusic(m, 0, "PCMU"); err != nil {
		t.Fatal(err)
	}
	prev := c.phoneA.recv()
	if err := c.a.StartMusic(m, 0, "PCMU"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got := c.phoneA.recv()
		if got.Marker || got.SequenceNumber != prev.SequenceNumber+1 || got.Timestamp != prev.Timestamp+160 {
			t.Fatalf("after the same StartMusic: seq %d ts %d marker %v; want %d, %d, no marker (the loop goes on)",
				got.SequenceNumber, got.Timestamp, got.Marker, prev.SequenceNumber+1, prev.Timestamp+160)
		}
		prev = got
	}

	if err := c.a.StartMusic(m, 8, "PCMA"); err != nil {
		t.Fatal(err)
	}
	for i, got := 0, c.phoneA.recv(); ; i, prev, got = i+1, got, c.phoneA.recv() {
		if i == 50 {
			t.Fatalf("still PT %d %d packets after switching to PCMA", got.PayloadType, i)
		}
		if got.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("seq %d after %d while switching codec", got.SequenceNumber, prev.SequenceNumber)
		}
		if got.PayloadType == 8 {
			if !got.Marker || !bytes.Equal(got.Payload, m.alaw()[:160]) {
				t.Errorf("first PCMA frame: marker %v payload %x...; want the marker and the music from its start", got.Marker, got.Payload[:8])
			}
			break
		}
	}
}

func TestStartMusicRefusesWhatItCannotPlay(t *testing.T) {
	pool := newTestPool(t, 1, 0)
	e := allocate(t, pool)
	tests := []struct {
		name  string
		m     *Music
		pt    uint8
		codec string
		want  error
		say   []string
	}{
		{name: "other codec", m: DefaultMusic(), pt: 18, codec: "G729", want: ErrInvalidArgument, say: []string{`"G729"`, `"PCMU"`, `"PCMA"`}},
		{name: "no codec", m: DefaultMusic(), codec: "", want: ErrInvalidArgument, say: []string{`""`, `"PCMU" or "PCMA"`}},
		{name: "nil music", codec: "PCMU", want: ErrInvalidArgument, say: []string{"no music"}},
		{name: "zero music", m: &Music{}, codec: "PCMU", want: ErrInvalidArgument, say: []string{"no music"}},
		{name: "payload type above 7 bits", m: DefaultMusic(), pt: 128, codec: "PCMU", want: ErrInvalidArgument, say: []string{"128", "0..127"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.StartMusic(tt.m, tt.pt, tt.codec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("StartMusic: %v, want %v", err, tt.want)
			}
			for _, s := range tt.say {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %s", err, s)
				}
			}
			if e.Playing() {
				t.Errorf("Playing() after a refused StartMusic")
			}
		})
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.StartMusic(DefaultMusic(), 0, "PCMU"); !errors.Is(err, ErrClosed) || e.Playing() {
		t.Errorf("StartMusic after Close: %v, Playing %v; want ErrClosed and no music", err, e.Playing())
	}
	e.StopMusic() // harmless
}

func TestCloseStopsTheMusicGoroutine(t *testing.T) {
	// The goroutines are counted process-wide: an earlier test's music may
	// still be on its way out (under -race on a loaded machine).
	for deadline := time.Now().Add(5 * time.Second); musicGoroutines() != 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	c := newCall(t, 2)
	if err := c.a.StartMusic(DefaultMusic(), 0, "PCMU"); err != nil {
		t.Fatal(err)
	}
	c.phoneA.recv()
	if n := musicGoroutines(); n != 1 {
		t.Fatalf("%d music goroutines while playing, want 1", n)
	}
	if err := c.a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := musicGoroutines(); n != 0 || c.a.Playing() {
		t.Errorf("after Close: %d music goroutines, Playing %v; want none", n, c.a.Playing())
	}
	c.phoneA.drain()
	c.phoneA.expectSilence("music after Close")
}

func musicGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("media.(*musicPlayer).run("))
}

func TestMusicWaitsSilentlyForTheAddress(t *testing.T) {
	pool := newTestPool(t, 1, 0)
	e := allocate(t, pool)
	e.out.mu.Lock()
	initial := e.out.lastSeq
	e.out.mu.Unlock()
	if err := e.StartMusic(DefaultMusic(), 0, "PCMU"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * frameInterval) // frames with nowhere to go
	if s := e.Stats(); s.PacketsOut != 0 {
		t.Fatalf("PacketsOut = %d with no address, want 0", s.PacketsOut)
	}
	p := newPhone(t)
	p.sdpOf(e)
	first := p.recv()
	second := p.recv()
	if !first.Marker || first.SequenceNumber != initial+1 || second.SequenceNumber != first.SequenceNumber+1 {
		t.Errorf("first frames: seq %d (marker %v), %d; want %d with the marker, then the next: no number spent on unsent frames",
			first.SequenceNumber, first.Marker, second.SequenceNumber, initial+1)
	}
}

// DTMF may be sent to a party on hold: WriteRTP goes out between the music
// frames, in the one sequence.
func TestWriteRTPDuringMusicSharesTheSequence(t *testing.T) {
	c := newCall(t, 2)
	if err := c.a.StartMusic(DefaultMusic(), 0, "PCMU"); err != nil {
		t.Fatal(err)
	}
	const events = 20
	var wg sync.WaitGroup
	defer wg.Wait() // also after a Fatalf: no WriteRTP on a closed endpoint
	wg.Go(func() {
		ev := &stream{ssrc: 0xD7, pt: 101}
		for range events {
			if err := c.a.WriteRTP(ev.next(1, 0x0a, 0, 160)); err != nil {
				t.Errorf("WriteRTP: %v", err)
				return
			}
			time.Sleep(7 * time.Millisecond)
		}
	})
	var prev *rtp.Packet
	seen := 0
	for i := 0; seen < events; i++ {
		if i == 10*events {
			t.Fatalf("%d of %d injected packets among the first %d received", seen, events, i)
		}
		got := c.phoneA.recv()
		if prev != nil && got.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("seq %d after %d: want each packet to follow the one before", got.SequenceNumber, prev.SequenceNumber)
		}
		if got.PayloadType == 101 {
			seen++
		}
		prev = got
	}
}

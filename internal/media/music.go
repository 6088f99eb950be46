package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"
)

// Music on hold is 8 kHz audio sent in 20 ms frames of 160 samples, the
// packet time G.711 phones expect by default (RFC 3551 §4.5.14).
const (
	musicRate     = 8000
	frameSamples  = 160
	frameInterval = 20 * time.Millisecond
	// maxMusicFile bounds what LoadMusic reads: over an hour of G.711, half
	// of that in 16-bit PCM.
	maxMusicFile = 64 << 20
)

// Music is audio for music on hold: 8 kHz mono linear PCM, played in a
// loop. It does not change once made, and one Music may play to any number
// of endpoints at once: it is encoded in each G.711 law on first use, once,
// and the encoding is shared. The zero Music holds no audio and cannot be
// played; get one from LoadMusic or DefaultMusic.
type Music struct {
	pcm  []int16
	ulaw func() []byte // from sync.OnceValue
	alaw func() []byte
}

// newMusic makes a Music of pcm. A G.711 file's own bytes, if given in
// ulaw or alaw, are played as they are in that law rather than encoded
// again.
func newMusic(pcm []int16, ulaw, alaw []byte) *Music {
	m := &Music{pcm: pcm}
	m.ulaw = sync.OnceValue(func() []byte { return orEncode(ulaw, pcm, linearToULaw) })
	m.alaw = sync.OnceValue(func() []byte { return orEncode(alaw, pcm, linearToALaw) })
	return m
}

func orEncode(coded []byte, pcm []int16, encode func(int16) byte) []byte {
	if coded != nil {
		return coded
	}
	coded = make([]byte, len(pcm))
	for i, s := range pcm {
		coded[i] = encode(s)
	}
	return coded
}

// Duration returns how long the music plays before it starts again.
func (m *Music) Duration() time.Duration {
	return time.Duration(len(m.pcm)) * time.Second / musicRate
}

// LoadMusic reads music on hold from a WAV file that holds mono audio at
// 8000 Hz as 16-bit linear PCM (format 1), A-law (format 6) or µ-law
// (format 7), the formats telephony tools such as sox write. Anything else
// is an ErrInvalidArgument error that names the file and says what is wrong
// with it, such as "sample rate 44100 Hz, want 8000".
func LoadMusic(path string) (*Music, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("media: music: %w: %w", err, ErrInvalidArgument)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMusicFile+1))
	if err != nil {
		return nil, fmt.Errorf("media: music: %w: %w", err, ErrInvalidArgument)
	}
	if len(b) > maxMusicFile {
		return nil, fmt.Errorf("media: music file %s: larger than %d MiB: %w", path, maxMusicFile>>20, ErrInvalidArgument)
	}
	m, err := parseWAV(b)
	if err != nil {
		return nil, fmt.Errorf("media: music file %s: %w", path, err)
	}
	return m, nil
}

// WAV format codes (RFC 2361 Appendix A).
const (
	wavPCM        = 1
	wavALaw       = 6
	wavULaw       = 7
	wavExtensible = 0xfffe
)

// parseWAV reads a RIFF WAVE file (RFC 2361, and Microsoft's RIFF
// specification): the fmt chunk says what the data chunk holds.
func parseWAV(b []byte) (*Music, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("not a WAV file (no RIFF WAVE header): %w", ErrInvalidArgument)
	}
	var format, data []byte
	haveFormat, haveData := false, false
	for rest := b[12:]; len(rest) >= 8 && !(haveFormat && haveData); {
		id, size := string(rest[0:4]), binary.LittleEndian.Uint32(rest[4:8])
		body := rest[8:]
		if uint64(size) > uint64(len(body)) {
			if id != "data" {
				return nil, fmt.Errorf("%q chunk of %d bytes is cut short at %d: %w", id, size, len(body), ErrInvalidArgument)
			}
			// A writer that could not seek back (to a pipe) leaves the
			// data size too large; the data runs to the end of the file.
			size = uint32(len(body))
		}
		switch id {
		case "fmt ":
			format, haveFormat = body[:size], true
		case "data":
			data, haveData = body[:size], true
		}
		// Chunks are padded to an even size.
		if next := 8 + int(size) + int(size&1); next < len(rest) {
			rest = rest[next:]
		} else {
			rest = nil
		}
	}
	if !haveFormat {
		return nil, fmt.Errorf("not a WAV file (no fmt chunk): %w", ErrInvalidArgument)
	}
	if !haveData {
		return nil, fmt.Errorf("no data chunk: %w", ErrInvalidArgument)
	}
	if len(format) < 16 {
		return nil, fmt.Errorf("fmt chunk of %d bytes, want at least 16: %w", len(format), ErrInvalidArgument)
	}
	code := binary.LittleEndian.Uint16(format[0:2])
	channels := binary.LittleEndian.Uint16(format[2:4])
	rate := binary.LittleEndian.Uint32(format[4:8])
	bits := binary.LittleEndian.Uint16(format[14:16])
	if code == wavExtensible && len(format) >= 26 {
		// The real format code opens the SubFormat GUID.
		code = binary.LittleEndian.Uint16(format[24:26])
	}

	var wrong []string
	switch {
	case code == wavPCM && bits != 16:
		wrong = append(wrong, fmt.Sprintf("%d-bit PCM, want 16-bit", bits))
	case (code == wavALaw || code == wavULaw) && bits != 8:
		wrong = append(wrong, fmt.Sprintf("%s with %d bits per sample, want 8", formatName(code), bits))
	case code != wavPCM && code != wavALaw && code != wavULaw:
		wrong = append(wrong, fmt.Sprintf("format %d (%s), want 1 (16-bit PCM), 6 (A-law) or 7 (µ-law)", code, formatName(code)))
	}
	if rate != musicRate {
		wrong = append(wrong, fmt.Sprintf("sample rate %d Hz, want %d", rate, musicRate))
	}
	if channels != 1 {
		wrong = append(wrong, fmt.Sprintf("%d channels, want mono", channels))
	}
	if wrong != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(wrong, "; "), ErrInvalidArgument)
	}

	var pcm []int16
	switch code {
	case wavPCM:
		pcm = make([]int16, len(data)/2) // a stray odd byte is no sample
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case wavULaw:
		pcm = decodeAll(data, ulawToLinear)
	case wavALaw:
		pcm = decodeAll(data, alawToLinear)
	}
	if len(pcm) == 0 {
		return nil, fmt.Errorf("no audio in the data chunk: %w", ErrInvalidArgument)
	}
	switch code {
	case wavULaw:
		return newMusic(pcm, data, nil), nil
	case wavALaw:
		return newMusic(pcm, nil, data), nil
	}
	return newMusic(pcm, nil, nil), nil
}

func decodeAll(coded []byte, decode func(byte) int16) []int16 {
	pcm := make([]int16, len(coded))
	for i, c := range coded {
		pcm[i] = decode(c)
	}
	return pcm
}

// formatName names the WAV formats people are likely to try.
func formatName(code uint16) string {
	switch code {
	case wavPCM:
		return "PCM"
	case 2:
		return "Microsoft ADPCM"
	case 3:
		return "IEEE float"
	case wavALaw:
		return "A-law"
	case wavULaw:
		return "µ-law"
	case 0x11:
		return "IMA ADPCM"
	case 0x31:
		return "GSM 6.10"
	case 0x55:
		return "MPEG layer 3"
	case wavExtensible:
		return "extensible, without a subformat"
	}
	return "unknown"
}

// DefaultMusic returns the built-in music on hold, for when no file is
// configured: a four-second loop of soft bell notes, C E G E F A G D, two a
// second, in the middle of the telephone band.
func DefaultMusic() *Music { return defaultMusic() }

// defaultMusic is made once: every call on hold shares it and its encodings.
var defaultMusic = sync.OnceValue(func() *Music { return newMusic(chime(), nil, nil) })

// chime renders DefaultMusic's loop. Each note is a struck bell: a quick
// rise, then an exponential decay, with two quieter harmonics for warmth.
// A note's tail wraps round to the start of the buffer, so the loop has no
// seam.
func chime() []int16 {
	const (
		loop    = 4 * musicRate
		spacing = musicRate / 2
		ring    = 2 * musicRate // a note sounds this long, under the next ones
		attack  = 0.008         // seconds
		decay   = 0.45          // seconds, to 1/e
		peak    = 0.45          // of full scale, after mixing
	)
	notes := []float64{523.25, 659.26, 783.99, 659.26, 698.46, 880.00, 783.99, 587.33} // C5 E5 G5 E5 F5 A5 G5 D5
	mix := make([]float64, loop)
	for n, freq := range notes {
		start := n * spacing
		for i := range ring {
			t := float64(i) / musicRate
			env := math.Exp(-t / decay)
			if t < attack {
				env *= t / attack
			}
			w := 2 * math.Pi * freq * t
			mix[(start+i)%loop] += env * (math.Sin(w) + 0.35*math.Sin(2*w) + 0.12*math.Sin(3*w))
		}
	}
	maxAbs := 0.0
	for _, v := range mix {
		maxAbs = max(maxAbs, math.Abs(v))
	}
	pcm := make([]int16, loop)
	scale := peak * math.MaxInt16 / maxAbs
	for i, v := range mix {
		pcm[i] = int16(math.Round(v * scale))
	}
	return pcm
}

// musicPlayer is one StartMusic: the goroutine sending frames and how to
// stop it.
type musicPlayer struct {
	music *Music
	pt    uint8
	codec string
	stop  chan struct{} // closed to stop the goroutine
	done  chan struct{} // closed by the goroutine as it ends
}

// StartMusic plays m to the endpoint's party in a loop, in codec ("PCMU" or
// "PCMA", as the party's SDP names it; case does not matter) with payload
// type payloadType (0 and 8 by RFC 3551's static assignment, or what the SDP
// says). A goroutine owned by the endpoint sends a 20 ms frame every 20 ms
// in the endpoint's own stream, as WriteRTP does: the sequence goes on from
// what the party received last, the first frame carries the marker bit and
// timestamps then advance 160 a frame. Frames fall silent, without using up
// sequence numbers, while the party's address is not known.
//
// While music plays, nothing is relayed toward this party: the peer
// endpoint still receives and counts its party's packets (Stats.PacketsIn,
// Stats.Dropped) but does not send them here. Packets from WriteRTP still
// go out, between the frames. StopMusic or Close ends the music.
//
// StartMusic while music plays switches to the new music, codec or payload
// type, or changes nothing if they are the same. Errors: ErrInvalidArgument
// for a nil or empty m, a payload type above 127 or another codec;
// ErrClosed after Close.
func (e *Endpoint) StartMusic(m *Music, payloadType uint8, codec string) error {
	var frames func() []byte
	switch {
	case m == nil || len(m.pcm) == 0:
		return fmt.Errorf("media: StartMusic: no music (nil or empty): %w", ErrInvalidArgument)
	case payloadType > 127:
		return fmt.Errorf("media: StartMusic: payload type %d, want 0..127: %w", payloadType, ErrInvalidArgument)
	case strings.EqualFold(codec, "PCMU"):
		codec, frames = "PCMU", m.ulaw
	case strings.EqualFold(codec, "PCMA"):
		codec, frames = "PCMA", m.alaw
	default:
		return fmt.Errorf("media: StartMusic: codec %q, want \"PCMU\" or \"PCMA\": %w", codec, ErrInvalidArgument)
	}

	e.musicMu.Lock()
	defer e.musicMu.Unlock()
	if e.closed.Load() {
		return fmt.Errorf("media: StartMusic on port %d: %w", e.port, ErrClosed)
	}
	if p := e.music; p != nil && p.music == m && p.pt == payloadType && p.codec == codec {
		return nil
	}
	e.stopPlayerLocked()
	e.musicN++
	p := &musicPlayer{music: m, pt: payloadType, codec: codec, stop: make(chan struct{}), done: make(chan struct{})}
	e.music = p
	// Stop the relay before the first frame, so the party never hears both.
	e.playing.Store(true)
	go p.run(e, frames(), source{kind: musicSource, ssrc: e.musicN})
	return nil
}

// StopMusic stops the music and waits for its goroutine to end. What the
// peer receives is relayed to the party again (if the endpoints are still
// connected), continuing the endpoint's stream: the next sequence number,
// the marker bit, the timestamp advanced by the time since the last frame.
// It does nothing when no music plays.
func (e *Endpoint) StopMusic() {
	e.musicMu.Lock()
	defer e.musicMu.Unlock()
	e.stopPlayerLocked()
	e.playing.Store(false)
}

// Playing reports whether music plays to the endpoint's party.
func (e *Endpoint) Playing() bool { return e.playing.Load() }

func (e *Endpoint) stopPlayerLocked() {
	if p := e.music; p != nil {
		close(p.stop)
		<-p.done
		e.music = nil
	}
}

// run sends a frame at once, then one per tick until stopped. Frames are
// built in one buffer, reused: playing allocates nothing per frame.
func (p *musicPlayer) run(e *Endpoint, frames []byte, src source) {
	defer close(p.done)
	tick := time.NewTicker(frameInterval)
	defer tick.Stop()
	buf := make([]byte, rtpHeaderLen+frameSamples)
	buf[0] = rtpVersion << 6
	var (
		seq uint16
		ts  uint32
		pos int
	)
	for {
		// Sending renumbers the header in place: write it afresh each time.
		buf[1] = p.pt
		binary.BigEndian.PutUint16(buf[2:4], seq)
		binary.BigEndian.PutUint32(buf[4:8], ts)
		pos = fillFrame(buf[rtpHeaderLen:], frames, pos)
		if err := e.sendOwn(buf, src, time.Now()); err == nil {
			seq++
		} else if errors.Is(err, ErrClosed) {
			return
		}
		ts += frameSamples
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

// fillFrame copies the music from pos into frame, looping at its end, and
// returns where the next frame starts.
func fillFrame(frame, music []byte, pos int) int {
	for n := 0; n < len(frame); {
		c := copy(frame[n:], music[pos:])
		n += c
		if pos += c; pos == len(music) {
			pos = 0
		}
	}
	return pos
}

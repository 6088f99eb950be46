package peers

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// ToneFile writes dir/tone.raw: seconds of a freq Hz sine as raw 8 kHz mono
// G.711 u-law, the payload SIPp's <exec rtp_stream="tone.raw,-1,0"/> sends
// as PCMU (the scenarios under test/sipp read "tone.raw" from their working
// directory, so pass the same dir as SIPpOptions.Dir). It returns the path.
func ToneFile(t testing.TB, dir string, seconds float64, freq int) string {
	t.Helper()
	path := filepath.Join(dir, "tone.raw")
	sox(t, "-n", "-r", "8000", "-c", "1", "-e", "u-law", "-t", "raw", path,
		"synth", strconv.FormatFloat(seconds, 'f', -1, 64), "sine", strconv.Itoa(freq))
	return path
}

// WavFile writes dir/tone-<freq>.wav: seconds of a freq Hz sine as an 8 kHz
// mono signed 16-bit WAV, the audio source baresip's aufile module plays. A
// baresip call ends when the file ends: make it longer than the test. It
// returns the path.
func WavFile(t testing.TB, dir string, seconds float64, freq int) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("tone-%d.wav", freq))
	sox(t, "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", path,
		"synth", strconv.FormatFloat(seconds, 'f', -1, 64), "sine", strconv.Itoa(freq))
	return path
}

// ConstantAudioFile writes dir/tone.raw like ToneFile, but every octet of
// it is b: a flat PCMU signal no codec, tone or music produces for a whole
// packet. Give each SIPp party its own b (and its own Dir), and a capture
// tells whose audio a packet carries (UDPPacket.Carries), wherever it went.
// It returns the path.
func ConstantAudioFile(t testing.TB, dir string, seconds float64, b byte) string {
	t.Helper()
	path := filepath.Join(dir, "tone.raw")
	if err := os.WriteFile(path, bytes.Repeat([]byte{b}, int(seconds*8000)), 0o644); err != nil {
		t.Fatalf("peers: %v", err)
	}
	return path
}

func sox(t testing.TB, args ...string) {
	t.Helper()
	bin := requireBinary(t, "sox", "sox")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("peers: sox %v: %v\n%s", args, err, out)
	}
}

// SilentWavFile writes dir/silence.wav: seconds of digital silence (every
// sample 0, no dither) as an 8 kHz mono signed 16-bit WAV for baresip's
// aufile. Its PCMU packets carry 0xFF in every octet (G.711 µ-law of 0), so
// a capture tells such audio in the clear (UDPPacket.Carries(0xff)) from
// SRTP ciphertext. It returns the path.
func SilentWavFile(t testing.TB, dir string, seconds float64) string {
	t.Helper()
	path := filepath.Join(dir, "silence.wav")
	sox(t, "-D", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", path,
		"synth", strconv.FormatFloat(seconds, 'f', -1, 64), "sine", "0")
	return path
}

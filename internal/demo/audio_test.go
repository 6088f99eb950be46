package demo

import (
	"math"
	"testing"
)

// ulawToLinear is the textbook µ-law decoder (G.711 §3), independent of the
// encoder under test: the code's bits inverted, a 3-bit segment and a 4-bit
// step, biased by 0x84.
func ulawToLinear(code byte) int {
	u := ^code
	mag := (int(u&0x0f)<<3 + 0x84) << ((u >> 4) & 7)
	mag -= 0x84
	if u&0x80 != 0 {
		return -mag
	}
	return mag
}

func TestULawRoundTripsWithinItsQuantisationStep(t *testing.T) {
	tests := []struct {
		pcm  int16
		want byte
	}{
		{0, 0xff}, {-1, 0x7f}, {32767, 0x80}, {-32768, 0x00},
	}
	for _, tt := range tests {
		if got := linearToULaw(tt.pcm); got != tt.want {
			t.Errorf("linearToULaw(%d) = %#02x; want %#02x", tt.pcm, got, tt.want)
		}
	}
	for x := -32768; x <= 32767; x += 97 {
		got := ulawToLinear(linearToULaw(int16(x)))
		// A segment's step is 1/16 of its start; near zero it is 8.
		if tol := max(16, int(math.Abs(float64(x))/16)); abs(got-x) > tol {
			t.Fatalf("µ-law of %d decodes to %d, off by more than %d", x, got, tol)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// decoded returns a phone's voice as linear samples.
func decoded(number string) []int {
	v := voice(number)
	out := make([]int, len(v))
	for i, c := range v {
		out[i] = ulawToLinear(c)
	}
	return out
}

// loudness is the RMS of the samples; crossings is how often the sound
// crosses zero per second while it is not silent, about twice its pitch.
func loudness(pcm []int) (rms, crossings float64) {
	var sum float64
	var voiced, zc int
	for i, v := range pcm {
		sum += float64(v) * float64(v)
		if abs(v) > 300 {
			voiced++
			if i > 0 && (v > 0) != (pcm[i-1] > 0) {
				zc++
			}
		}
	}
	return math.Sqrt(sum / float64(len(pcm))), float64(zc) * sampleRate / float64(voiced)
}

// TestEachPartyHasItsOwnAudibleVoice: the callers' melody and the callees'
// chatter are both clearly audible, the melody sits well above the chatter
// in pitch, every phone has its own tune, and a phone's tune is the same on
// every call.
func TestEachPartyHasItsOwnAudibleVoice(t *testing.T) {
	caller, callee := decoded("1001"), decoded("2001")
	callerRMS, callerZC := loudness(caller)
	calleeRMS, calleeZC := loudness(callee)
	if callerRMS < 1000 || calleeRMS < 1000 {
		t.Errorf("voices too quiet: caller RMS %.0f, callee RMS %.0f; want at least 1000 of 32767", callerRMS, calleeRMS)
	}
	if callerZC < 2*calleeZC {
		t.Errorf("caller's melody crosses zero %.0f/s, callee's chatter %.0f/s; want the melody at least twice as high", callerZC, calleeZC)
	}
	if len(voice("1001")) < sampleRate || len(voice("2001")) < sampleRate {
		t.Errorf("voice loops of %d and %d samples; want at least a second each", len(voice("1001")), len(voice("2001")))
	}
	if string(voice("1001")) != string(voice("1001")) {
		t.Error("phone 1001's voice differs between two calls")
	}
	if string(voice("1001")) == string(voice("1002")) || string(voice("2001")) == string(voice("2002")) {
		t.Error("two phones play the same tune")
	}
}

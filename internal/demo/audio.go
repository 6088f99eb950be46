package demo

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
)

// Phones send 8 kHz G.711 µ-law, 160 samples (20 ms) a packet: payload type
// 0 of RFC 3551 §6 and the packet time phones use by default (§4.5.14).
const (
	sampleRate   = 8000
	frameSamples = 160
	pcmuType     = 0
)

// voice returns the audio a phone plays in a loop, µ-law encoded. Each phone
// has its own tune, the same on every call: the 1xxx phones play a bell-like
// pentatonic melody around C5–C6, the others a low buzzing "chatter" of
// syllables around G3–C4, so a listener can tell the two parties apart by
// ear.
func voice(number string) []byte {
	h := fnv.New64a()
	h.Write([]byte(number))
	r := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	var pcm []float64
	if strings.HasPrefix(number, "1") {
		pcm = melody(r)
	} else {
		pcm = chatter(r)
	}
	out := make([]byte, len(pcm))
	for i, v := range pcm {
		out[i] = linearToULaw(int16(v * 32767))
	}
	return out
}

// melody is eight bell notes of a pentatonic scale and a rest.
func melody(r *rand.Rand) []float64 {
	scale := []float64{523.25, 587.33, 659.26, 783.99, 880.00, 1046.50}
	var pcm []float64
	for range 8 {
		f := scale[r.IntN(len(scale))]
		pcm = append(pcm, bell(f, 0.24)...)
		pcm = append(pcm, silence(0.04)...)
	}
	return append(pcm, silence(0.6)...)
}

// bell is a struck note: a fundamental and a softer octave, quick attack,
// exponential decay.
func bell(freq, seconds float64) []float64 {
	n := int(seconds * sampleRate)
	out := make([]float64, n)
	for i := range out {
		t := float64(i) / sampleRate
		env := math.Min(1, t/0.01) * math.Exp(-4*t)
		out[i] = 0.35 * env * (math.Sin(2*math.Pi*freq*t) + 0.25*math.Sin(4*math.Pi*freq*t))
	}
	return out
}

// chatter is a phrase of four to seven buzzy syllables with gliding pitch,
// then a pause, like someone talking on the other end.
func chatter(r *rand.Rand) []float64 {
	bases := []float64{196.00, 220.00, 246.94, 261.63}
	base := bases[r.IntN(len(bases))]
	var pcm []float64
	for range 4 + r.IntN(4) {
		from := base * (0.9 + 0.2*r.Float64())
		to := base * (0.9 + 0.2*r.Float64())
		pcm = append(pcm, syllable(from, to, 0.12+0.14*r.Float64())...)
		pcm = append(pcm, silence(0.06+0.09*r.Float64())...)
	}
	return append(pcm, silence(0.5+0.4*r.Float64())...)
}

// syllable is a tone of four harmonics (amplitude 1/n, a buzzy timbre)
// gliding from one pitch to another under a raised-sine envelope.
func syllable(from, to, seconds float64) []float64 {
	n := int(seconds * sampleRate)
	out := make([]float64, n)
	phase := 0.0
	for i := range out {
		x := float64(i) / float64(n)
		f := from + (to-from)*x
		phase += 2 * math.Pi * f / sampleRate
		env := math.Sin(math.Pi * x)
		var v float64
		for h := 1.0; h <= 4; h++ {
			v += math.Sin(h*phase) / h
		}
		out[i] = 0.3 * env * v
	}
	return out
}

func silence(seconds float64) []float64 { return make([]float64, int(seconds*sampleRate)) }

// linearToULaw encodes one 16-bit sample in G.711 µ-law (ITU-T G.711 §3):
// 14 significant bits, a bias of 33 so that each of the 8 segments starts at
// a power of two, 16 steps a segment, all bits inverted. As in the ITU-T
// G.191 reference code, a negative sample's magnitude is its one's
// complement.
func linearToULaw(pcm int16) byte {
	const (
		bias   = 33
		maxMag = 0x1fff // largest biased 14-bit magnitude
	)
	var sign byte = 0x80 // set for positive samples; the inversion clears it
	mag := int(pcm)
	if mag < 0 {
		mag = ^mag
		sign = 0
	}
	mag = mag>>2 + bias
	if mag > maxMag {
		mag = maxMag
	}
	seg := 0
	for v := mag >> 6; v != 0; v >>= 1 {
		seg++
	}
	mantissa := byte(mag>>(seg+1)) & 0x0f
	return ^(byte(seg)<<4|mantissa)&^0x80 | sign
}

package media

import (
	"math"
	"testing"
)

func TestG711EncodesKnownValues(t *testing.T) {
	// Values of the ITU-T G.191 reference implementation (and of Sun's
	// g711.c, but for -1, which G.191 codes like 0: the magnitude of a
	// negative sample is its one's complement).
	tests := []struct {
		pcm        int16
		ulaw, alaw byte
	}{
		{pcm: 0, ulaw: 0xff, alaw: 0xd5},
		{pcm: -1, ulaw: 0x7f, alaw: 0x55},
		{pcm: 8, ulaw: 0xfe, alaw: 0xd5},
		{pcm: 16, ulaw: 0xfd, alaw: 0xd4},
		{pcm: 1000, ulaw: 0xce, alaw: 0xfa},
		{pcm: -1000, ulaw: 0x4e, alaw: 0x7a},
		{pcm: 32767, ulaw: 0x80, alaw: 0xaa},
		{pcm: -32768, ulaw: 0x00, alaw: 0x2a},
	}
	for _, tt := range tests {
		if got := linearToULaw(tt.pcm); got != tt.ulaw {
			t.Errorf("linearToULaw(%d) = %#02x, want %#02x", tt.pcm, got, tt.ulaw)
		}
		if got := linearToALaw(tt.pcm); got != tt.alaw {
			t.Errorf("linearToALaw(%d) = %#02x, want %#02x", tt.pcm, got, tt.alaw)
		}
	}
}

func TestG711DecodesKnownValues(t *testing.T) {
	tests := []struct {
		code       byte
		ulaw, alaw int16
	}{
		{code: 0xff, ulaw: 0, alaw: 848},
		{code: 0x7f, ulaw: 0, alaw: -848},
		{code: 0x80, ulaw: 32124, alaw: 5504},
		{code: 0x00, ulaw: -32124, alaw: -5504},
		{code: 0xd5, ulaw: 716, alaw: 8},
		{code: 0x55, ulaw: -716, alaw: -8},
		{code: 0xaa, ulaw: 5372, alaw: 32256},
		{code: 0x2a, ulaw: -5372, alaw: -32256},
	}
	for _, tt := range tests {
		if got := ulawToLinear(tt.code); got != tt.ulaw {
			t.Errorf("ulawToLinear(%#02x) = %d, want %d", tt.code, got, tt.ulaw)
		}
		if got := alawToLinear(tt.code); got != tt.alaw {
			t.Errorf("alawToLinear(%#02x) = %d, want %d", tt.code, got, tt.alaw)
		}
	}
}

// Every code decodes to a value that encodes back to the same code, but
// µ-law's negative zero, which becomes the positive one.
func TestG711CodesSurviveDecodeAndEncode(t *testing.T) {
	for c := range 256 {
		code := byte(c)
		wantU := code
		if code == 0x7f {
			wantU = 0xff
		}
		if got := linearToULaw(ulawToLinear(code)); got != wantU {
			t.Errorf("µ-law %#02x -> %d -> %#02x, want %#02x", code, ulawToLinear(code), got, wantU)
		}
		if got := linearToALaw(alawToLinear(code)); got != code {
			t.Errorf("A-law %#02x -> %d -> %#02x", code, alawToLinear(code), got)
		}
	}
}

// Every 16-bit sample comes back within the quantisation step of its
// segment (half a step, plus the clipping at µ-law's top), and the codes
// never decrease as the sample grows.
func TestG711RoundTripWithinQuantisationError(t *testing.T) {
	laws := []struct {
		name   string
		encode func(int16) byte
		decode func(byte) int16
		step   func(code byte) int // in 16-bit units
	}{
		{name: "µ-law", encode: linearToULaw, decode: ulawToLinear,
			step: func(u byte) int { return 8 << ((^u >> 4) & 7) }},
		{name: "A-law", encode: linearToALaw, decode: alawToLinear,
			step: func(a byte) int { return 16 << max(int((a^0x55)>>4&7), 1) >> 1 }},
	}
	for _, law := range laws {
		t.Run(law.name, func(t *testing.T) {
			worst := 0.0 // error in steps
			prev := law.decode(law.encode(math.MinInt16))
			for x := math.MinInt16; x <= math.MaxInt16; x++ {
				code := law.encode(int16(x))
				y := law.decode(code)
				if y < prev {
					t.Fatalf("%d decodes to %d, below %d for %d: not monotonic", x, y, prev, x-1)
				}
				prev = y
				err := math.Abs(float64(x) - float64(y))
				if err > float64(law.step(code)) {
					t.Fatalf("%d -> %#02x -> %d: error %v, more than the step %d", x, code, y, err, law.step(code))
				}
				worst = max(worst, err/float64(law.step(code)))
			}
			if worst > 0.75 {
				t.Errorf("worst error %.2f steps, want at most 0.75 (half a step, and clipping at the top)", worst)
			}
		})
	}
}

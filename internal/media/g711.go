package media

// G.711 companding of 16-bit linear PCM (ITU-T G.711 §2, §3), computed as
// the ITU-T G.191 reference code does: the magnitude of a negative sample
// is its one's complement, so -1 codes like 0 and the codes are symmetric.
// Music on hold is encoded once per music and law (see Music), so the
// encoders need no table; the decoders use one of 256 entries.

// µ-law (G.711 §3): 14 significant bits, a bias of 33 so that every segment
// starts at a power of two, 8 segments of 16 steps, all bits inverted.
const (
	ulawBias = 33
	ulawMax  = 0x1fff // largest biased 14-bit magnitude
)

// linearToULaw encodes one sample in µ-law.
func linearToULaw(pcm int16) byte {
	var sign byte = 0x80 // set for positive samples; the inversion below clears it
	mag := int(pcm)
	if mag < 0 {
		mag = ^mag
		sign = 0
	}
	mag = mag>>2 + ulawBias
	if mag > ulawMax {
		mag = ulawMax
	}
	seg := 0 // segment: the position of the highest bit above bit 5
	for v := mag >> 6; v != 0; v >>= 1 {
		seg++
	}
	mantissa := byte(mag>>(seg+1)) & 0x0f
	return ^(byte(seg)<<4|mantissa)&^0x80 | sign
}

// linearToALaw encodes one sample in A-law.
func linearToALaw(pcm int16) byte {
	var sign byte = 0x80
	mag := int(pcm)
	if mag < 0 {
		mag = ^mag
		sign = 0
	}
	mag >>= 4 // 12-bit magnitude
	code := mag
	if mag > 31 {
		// Segments 0 and 1 share the finest step (G.711 §2, Table 1a); each
		// one above doubles it.
		seg := 1
		for ; mag > 31; mag >>= 1 {
			seg++
		}
		code = seg<<4 | mag&0x0f
	}
	return (byte(code) | sign) ^ 0x55 // even bits inverted (G.711 §2)
}

// ulawToLinear and alawToLinear decode one G.711 code to the middle of its
// quantisation interval.
func ulawToLinear(u byte) int16 { return ulawTable[u] }
func alawToLinear(a byte) int16 { return alawTable[a] }

var ulawTable = func() (t [256]int16) {
	for i := range t {
		u := ^byte(i)
		seg := int(u>>4) & 7
		step := 8 << seg // in 16-bit units
		v := 128<<seg + step*int(u&0x0f) + step/2 - 4*ulawBias
		if u&0x80 != 0 { // inverted sign bit: the code was negative
			v = -v
		}
		t[i] = int16(v)
	}
	return t
}()

var alawTable = func() (t [256]int16) {
	for i := range t {
		a := byte(i) ^ 0x55
		seg := int(a>>4) & 7
		mant := int(a & 0x0f)
		if seg > 0 {
			mant += 16
		}
		v := mant<<4 + 8
		if seg > 1 {
			v <<= seg - 1
		}
		if a&0x80 == 0 {
			v = -v
		}
		t[i] = int16(v)
	}
	return t
}()

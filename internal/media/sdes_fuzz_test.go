package media

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseCrypto: an a=crypto value from the network never panics
// ParseCrypto; an error wraps ErrBadSDP and never quotes a key; a line it
// takes is usable (Valid), survives Value and ParseCrypto unchanged, and
// its String hides the key.
func FuzzParseCrypto(f *testing.F) {
	key := "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
	for _, seed := range []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key,
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:4",
		"2 AES_CM_128_HMAC_SHA1_32 inline:" + key + "|2^31",
		"3 AEAD_AES_128_GCM inline:QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQQ==",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + ";inline:" + key,
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " KDR=1 UNENCRYPTED_SRTCP",
		"1 F8_128_HMAC_SHA1_80 inline:" + key,
		"0 AES_CM_128_HMAC_SHA1_80 inline:",
		"1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key,
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key[:39],
		"", " ", "1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseCrypto(v)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("ParseCrypto error %v does not wrap ErrBadSDP", err)
			}
			return
		}
		if !c.Valid() {
			t.Fatalf("ParseCrypto(%q) = %v, not Valid", v, c)
		}
		back, err := ParseCrypto(c.Value())
		if err != nil || !back.Equal(c) {
			t.Fatalf("ParseCrypto(%q).Value() reparses as %v, %v", v, back, err)
		}
		if strings.Contains(c.String(), c.Value()[strings.Index(c.Value(), "inline:"):]) {
			t.Fatalf("String() %q shows the key", c.String())
		}
		if _, err := newSRTPContext(c); err != nil {
			t.Fatalf("a parsed line does not key a context: %v", err)
		}
	})
}

// FuzzParseSDPWithCrypto drives ParseSDP, SDPWriter.Rewrite with SRTP and
// RedactSDP with SRTP offers: no panic, errors wrap ErrBadSDP, and what
// ParseSDP accepts the SRTP writer rewrites into a body that parses as
// SRTP with callctl's line only, and RedactSDP leaves no inline key.
func FuzzParseSDPWithCrypto(f *testing.F) {
	f.Add([]byte(srtpOfferSDP))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n" +
		"a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD|2^31\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVPF 0\r\na=crypto:\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/SAVP 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
	own, err := NewCrypto(5, SuiteAES128SHA1_80)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for line := range strings.Lines(RedactSDP(body)) {
			if strings.Contains(line, "crypto") &&
				strings.Count(line, "inline:") != strings.Count(line, "inline:<redacted>") {
				t.Fatalf("RedactSDP left a key: %q", line)
			}
		}
		info, err := ParseSDP(body)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("ParseSDP error %v does not wrap ErrBadSDP", err)
			}
			return
		}
		for _, c := range info.Crypto {
			if !c.Valid() {
				t.Fatalf("ParseSDP returned an unusable crypto line %v", c)
			}
		}
		w := NewSDPWriter("callctl")
		w.SetSRTP([]Crypto{own}, true)
		out, err := w.Rewrite(body, loopback, 30000)
		if err != nil {
			return // Rewrite may refuse what pion/sdp cannot marshal
		}
		got, err := ParseSDP(out)
		if err != nil {
			t.Fatalf("rewritten body does not parse: %v\n%s", err, out)
		}
		if got.Port0 {
			return
		}
		if !got.SRTP() || len(got.Crypto) != 1 || !got.Crypto[0].Equal(own) {
			t.Fatalf("rewritten body is %s with crypto %v, want RTP/SAVP with callctl's line only\n%s", got.Profile, got.Crypto, out)
		}
	})
}

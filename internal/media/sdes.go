package media

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// SRTPSuite is an SRTP crypto-suite as named in an SDP a=crypto attribute
// (RFC 4568 §6.2, RFC 7714 §12 for AES-GCM).
type SRTPSuite uint8

// The crypto-suites callctl terminates.
const (
	// SuiteNone is the zero value: no SRTP.
	SuiteNone SRTPSuite = iota
	// SuiteAES128SHA1_80 is AES_CM_128_HMAC_SHA1_80, the one every SDES
	// implementation has (RFC 4568 §6.2.1).
	SuiteAES128SHA1_80
	// SuiteAES128SHA1_32 is AES_CM_128_HMAC_SHA1_32: a 32-bit tag on SRTP,
	// 80 bits on SRTCP (RFC 4568 §6.2.2).
	SuiteAES128SHA1_32
	// SuiteAEADAES128GCM is AEAD_AES_128_GCM (RFC 7714 §12).
	SuiteAEADAES128GCM
)

var suiteNames = [...]string{"", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM"}

// String is the suite's SDP name.
func (s SRTPSuite) String() string {
	if int(s) < len(suiteNames) {
		return suiteNames[s]
	}
	return "unknown"
}

// KeyLen is the length of the master key and salt together, as base64
// encoded in an inline key-param.
func (s SRTPSuite) KeyLen() int {
	switch s {
	case SuiteAES128SHA1_80, SuiteAES128SHA1_32:
		return 16 + 14
	case SuiteAEADAES128GCM:
		return 16 + 12
	}
	return 0
}

func (s SRTPSuite) profile() srtp.ProtectionProfile {
	switch s {
	case SuiteAES128SHA1_32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32
	case SuiteAEADAES128GCM:
		return srtp.ProtectionProfileAeadAes128Gcm
	}
	return srtp.ProtectionProfileAes128CmHmacSha1_80
}

// ParseSRTPSuite reads a suite's SDP name; the error names the allowed ones.
func ParseSRTPSuite(name string) (SRTPSuite, error) {
	for i, n := range suiteNames {
		if i > 0 && n == name {
			return SRTPSuite(i), nil
		}
	}
	return SuiteNone, fmt.Errorf("SRTP crypto-suite %q is not supported (allowed: %s): %w",
		name, strings.Join(suiteNames[1:], ", "), ErrInvalidArgument)
}

// Crypto is one a=crypto attribute (RFC 4568 §9.1) that callctl can use:
// a supported suite and one inline master key and salt, without MKI or
// session parameters. Its String hides the key, so it can be logged.
type Crypto struct {
	// Tag is the attribute's tag, 1..999999999; an answer repeats the tag
	// of the offered line it accepts (RFC 4568 §5.1.2).
	Tag   uint32
	Suite SRTPSuite
	// Key is the master key followed by the master salt (Suite.KeyLen
	// bytes). It is a secret: never log it.
	Key []byte
}

// NewCrypto makes a crypto line of callctl's own with a fresh random
// master key and salt from crypto/rand (RFC 4568 §6.1: a new key per
// session, never a reused one).
func NewCrypto(tag uint32, suite SRTPSuite) (Crypto, error) {
	if suite.KeyLen() == 0 {
		return Crypto{}, fmt.Errorf("media: NewCrypto: suite %d: %w", suite, ErrInvalidArgument)
	}
	c := Crypto{Tag: tag, Suite: suite, Key: make([]byte, suite.KeyLen())}
	if _, err := rand.Read(c.Key); err != nil {
		return Crypto{}, fmt.Errorf("media: NewCrypto: %w", err)
	}
	return c, nil
}

// Value is the attribute value as written in SDP after "a=crypto:",
// key included.
func (c Crypto) Value() string {
	return strconv.FormatUint(uint64(c.Tag), 10) + " " + c.Suite.String() + " inline:" +
		base64.StdEncoding.EncodeToString(c.Key)
}

// String describes the line without its key.
func (c Crypto) String() string {
	return strconv.FormatUint(uint64(c.Tag), 10) + " " + c.Suite.String() + " inline:<redacted>"
}

// Equal reports whether c and d are the same line (tag, suite and key).
func (c Crypto) Equal(d Crypto) bool {
	return c.Tag == d.Tag && c.Suite == d.Suite && string(c.Key) == string(d.Key)
}

// Valid reports whether c can key an SRTP context.
func (c Crypto) Valid() bool { return c.Suite.KeyLen() != 0 && len(c.Key) == c.Suite.KeyLen() }

// maxCryptoTag is RFC 4568 §9.1's tag = 1*9DIGIT.
const maxCryptoTag = 999999999

// ParseCrypto reads an a=crypto attribute value (RFC 4568 §9.1):
//
//	<tag> <crypto-suite> inline:<key||salt>[|<lifetime>] [<session-params>]
//
// It accepts only what callctl can use: a supported suite, exactly one
// inline key of the suite's length, no MKI and no session parameters
// (such as UNENCRYPTED_SRTP or KDR), which callctl does not honour. A
// lifetime is accepted and ignored: callctl's keys last one dialog, far
// less than 2^31 packets. The error wraps ErrBadSDP and says why, without
// the key.
func ParseCrypto(v string) (Crypto, error) {
	bad := func(format string, args ...any) (Crypto, error) {
		return Crypto{}, fmt.Errorf("%w: a=crypto: "+format, append([]any{ErrBadSDP}, args...)...)
	}
	f := strings.Fields(v)
	if len(f) < 3 {
		return bad("want \"<tag> <suite> inline:<key>\", got %d fields", len(f))
	}
	if len(f) > 3 {
		return bad("session parameters %q are not supported", strings.Join(f[3:], " "))
	}
	if len(f[0]) > 9 || !allDigits(f[0]) {
		return bad("tag %q is not 1 to 9 digits", truncate(f[0]))
	}
	tag, _ := strconv.ParseUint(f[0], 10, 32)
	if tag > maxCryptoTag {
		return bad("tag %q is out of range", f[0])
	}
	suite, err := ParseSRTPSuite(f[1])
	if err != nil {
		return bad("crypto-suite %q is not supported (allowed: %s)", truncate(f[1]), strings.Join(suiteNames[1:], ", "))
	}
	params := f[2]
	if strings.Contains(params, ";") {
		return bad("more than one key (needs MKI, not supported)")
	}
	key, ok := strings.CutPrefix(params, "inline:")
	if !ok {
		return bad("key method is not inline")
	}
	b64, rest, hasRest := strings.Cut(key, "|")
	if hasRest {
		lifetime, mki, hasMKI := strings.Cut(rest, "|")
		if hasMKI || strings.Contains(lifetime, ":") {
			_ = mki
			return bad("MKI is not supported")
		}
		if !lifetimeRE.MatchString(lifetime) {
			return bad("lifetime %q is malformed", truncate(lifetime))
		}
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Some UAs drop the padding.
		if raw, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return bad("key is not base64")
		}
	}
	if len(raw) != suite.KeyLen() {
		return bad("key and salt are %d bytes, %s needs %d", len(raw), suite, suite.KeyLen())
	}
	return Crypto{Tag: uint32(tag), Suite: suite, Key: raw}, nil
}

// lifetimeRE is RFC 4568 §9.1's lifetime: a decimal number or 2^n.
var lifetimeRE = regexp.MustCompile(`^(?:[0-9]{1,20}|2\^[0-9]{1,2})$`)

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// truncate shortens network input quoted in an error.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// IsSecureProfile reports whether an m= line transport is SRTP (RTP/SAVP,
// RTP/SAVPF; RFC 3711 §12, RFC 5124).
func IsSecureProfile(proto string) bool { return proto == "RTP/SAVP" || proto == "RTP/SAVPF" }

// SelectCrypto picks the line of an offer to accept: the first one whose
// suite is among allowed (in the offer's order of preference, RFC 4568
// §7.1.1). It reports false when there is none.
func SelectCrypto(offer []Crypto, allowed []SRTPSuite) (Crypto, bool) {
	for _, c := range offer {
		for _, s := range allowed {
			if c.Suite == s {
				return c, true
			}
		}
	}
	return Crypto{}, false
}

// RedactSDP returns an SDP body for a log line: every inline key of an
// a=crypto line is replaced by <redacted>.
func RedactSDP(body []byte) string {
	var b strings.Builder
	for line := range strings.Lines(string(body)) {
		if strings.Contains(line, "crypto") {
			line = inlineKeyRE.ReplaceAllString(line, "inline:<redacted>")
		}
		b.WriteString(line)
	}
	return b.String()
}

var inlineKeyRE = regexp.MustCompile(`inline:[^\s;]*`)

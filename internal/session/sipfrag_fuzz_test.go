package session

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParseSipfrag drives the reader of NOTIFY message/sipfrag bodies (RFC
// 3515 2.4.5, RFC 3420), which come from the transferee: any body gives
// either 0 (no status line) or an RFC 3261 7.2 status code, three digits
// 100-699; a status line written back from what was read reads the same.
func FuzzParseSipfrag(f *testing.F) {
	for _, s := range []string{
		"SIP/2.0 200 OK\r\n", "SIP/2.0 100 Trying", "SIP/2.0 486 Busy Here\r\nX: y\r\n", "SIP/2.0 603 Declined\r\n\r\n",
		"sip/2.0 180 Ringing\n", "garbage", "", "SIP/2.0 -200 OK", "SIP/2.0 99999999 Big", "SIP/2.0 2000 OK",
		"SIP/2.0 099 Low", "SIP/2.0 +200 OK", "SIP/2.0", "INVITE sip:a@b SIP/2.0\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, _ := parseSipfrag(body)
		if code == 0 {
			return
		}
		if code < 100 || code > 699 {
			t.Fatalf("parseSipfrag(%q) = %d: not a 3-digit SIP status code (RFC 3261 7.2)", body, code)
		}
		line := fmt.Sprintf("SIP/2.0 %d %s\r\n", code, "Reason")
		if again, reason := parseSipfrag([]byte(line)); again != code || !strings.HasPrefix(reason, fmt.Sprint(code)) {
			t.Fatalf("status line %q read back as %d %q; want %d", line, again, reason, code)
		}
	})
}

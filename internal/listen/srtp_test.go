package listen

import (
	"testing"

	"github.com/callctl/callctl/internal/media"
	"github.com/pion/srtp/v3"
)

// A party on an SRTP leg (SDES, RFC 4568) is heard by the listener like a
// plain one: the endpoint decrypts before the fork, so the browser gets
// the party's audio, not ciphertext, and the other party's plain stream is
// unaffected.
func TestListenerHearsAnSRTPPartyDecrypted(t *testing.T) {
	m, _ := newManager(t, Config{})
	c := newCall(t)
	phoneKey, err := media.NewCrypto(1, media.SuiteAES128SHA1_80)
	if err != nil {
		t.Fatal(err)
	}
	callctlKey, err := media.NewCrypto(1, media.SuiteAES128SHA1_80)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ea.SetSRTP(phoneKey, callctlKey); err != nil {
		t.Fatal(err)
	}
	enc, err := srtp.CreateContext(phoneKey.Key[:16], phoneKey.Key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	c.phoneA.seal = func(pkt []byte) []byte {
		out, err := enc.EncryptRTP(nil, pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	b := newBrowser(t, browserOptions{})
	listen(t, m, b, "s1", c)

	c.phoneA.audio(10)
	c.phoneB.audio(10)
	checkStream(t, "caller", b.waitFor("caller", 10), 'A', 0)
	checkStream(t, "callee", b.waitFor("callee", 10), 'B', 0)
	if st := c.ea.Stats(); st.PacketsIn != 10 || st.SRTPDropped != 0 {
		t.Errorf("caller endpoint stats %+v, want 10 packets in, none dropped", st)
	}
}

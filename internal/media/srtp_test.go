package media

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

func mustCrypto(t testing.TB, tag uint32, suite SRTPSuite) Crypto {
	t.Helper()
	c, err := NewCrypto(tag, suite)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// srtpPeer is what an SRTP phone does with its own key (to encrypt) and
// callctl's (to decrypt).
type srtpPeer struct {
	enc, dec *srtp.Context
}

func newSRTPPeer(t testing.TB, own, callctls Crypto) *srtpPeer {
	t.Helper()
	enc, err := newSRTPContext(own)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := newSRTPContext(callctls)
	if err != nil {
		t.Fatal(err)
	}
	return &srtpPeer{enc: enc, dec: dec}
}

func (p *srtpPeer) seal(t testing.TB, pkt *rtp.Packet) []byte {
	t.Helper()
	b, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.enc.EncryptRTP(nil, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSRTPLegAndPlainLegRelayBothWays(t *testing.T) {
	for _, suite := range []SRTPSuite{SuiteAES128SHA1_80, SuiteAES128SHA1_32, SuiteAEADAES128GCM} {
		t.Run(suite.String(), func(t *testing.T) {
			c := newCall(t, 2)
			phoneKey, callctlKey := mustCrypto(t, 1, suite), mustCrypto(t, 1, suite)
			if err := c.a.SetSRTP(phoneKey, callctlKey); err != nil {
				t.Fatal(err)
			}
			peer := newSRTPPeer(t, phoneKey, callctlKey)
			// Listen-in sees the decrypted audio.
			forked := make(chan []byte, 8)
			if _, err := c.a.AddFork(func(p ForkedPacket) { forked <- append([]byte(nil), p.Payload...) }); err != nil {
				t.Fatal(err)
			}

			// SRTP from phone A reaches plain phone B decrypted.
			src := &stream{ssrc: 0xa, seq: 100, ts: 1000}
			for range 3 {
				sent := src.next()
				c.phoneA.sendRaw(c.phoneA.rtp, rtpAddr(c.a), peer.seal(t, sent))
				got := c.phoneB.recv()
				if !bytes.Equal(got.Payload, sent.Payload) {
					t.Fatalf("phone B got payload %x…, want the plaintext %x…", got.Payload[:4], sent.Payload[:4])
				}
				select {
				case f := <-forked:
					if !bytes.Equal(f, sent.Payload) {
						t.Fatalf("fork got %x…, want the plaintext", f[:4])
					}
				case <-time.After(2 * time.Second):
					t.Fatal("fork got nothing")
				}
			}
			// Plain RTP from B reaches A encrypted with callctl's key, not in the clear.
			back := &stream{ssrc: 0xb, seq: 7}
			for range 3 {
				sent := back.next()
				c.phoneB.send(rtpAddr(c.b), sent)
				raw, _ := c.phoneA.recvRaw(c.phoneA.rtp)
				if bytes.Contains(raw, sent.Payload[:16]) {
					t.Fatal("phone A received the payload in the clear")
				}
				plain, err := peer.dec.DecryptRTP(nil, raw, nil)
				if err != nil {
					t.Fatalf("phone A cannot decrypt what callctl sent: %v", err)
				}
				var got rtp.Packet
				if err := got.Unmarshal(plain); err != nil || !bytes.Equal(got.Payload, sent.Payload) {
					t.Fatalf("phone A decrypted %x…, want %x… (%v)", got.Payload, sent.Payload[:4], err)
				}
			}
			if s := c.a.Stats(); s.PacketsIn != 3 || s.SRTPDropped != 0 {
				t.Errorf("a.Stats() = %+v, want 3 packets in, none dropped", s)
			}
		})
	}
}

func TestSRTPDropsTamperedReplayedAndWrongKeyPackets(t *testing.T) {
	c := newCall(t, 2)
	phoneKey, callctlKey := mustCrypto(t, 1, SuiteAES128SHA1_80), mustCrypto(t, 1, SuiteAES128SHA1_80)
	if err := c.a.SetSRTP(phoneKey, callctlKey); err != nil {
		t.Fatal(err)
	}
	peer := newSRTPPeer(t, phoneKey, callctlKey)
	src := &stream{ssrc: 0xa, seq: 1}
	good := peer.seal(t, src.next())
	c.phoneA.sendRaw(c.phoneA.rtp, rtpAddr(c.a), good)
	c.phoneB.recv()

	tampered := peer.seal(t, src.next())
	tampered[20] ^= 0x01
	c.phoneA.sendRaw(c.phoneA.rtp, rtpAddr(c.a), tampered)
	c.phoneA.sendRaw(c.phoneA.rtp, rtpAddr(c.a), good) // replayed
	wrong := newSRTPPeer(t, mustCrypto(t, 1, SuiteAES128SHA1_80), callctlKey)
	c.phoneA.sendRaw(c.phoneA.rtp, rtpAddr(c.a), wrong.seal(t, src.next()))
	plain, _ := src.next().Marshal()
	c.phoneA.sendRaw(c.phoneA.rtp, rtpAddr(c.a), plain) // plain RTP on an SRTP leg
	c.phoneB.expectSilence("bad SRTP")
	eventually(t, "all four counted", func() bool { return c.a.Stats().SRTPDropped == 4 })
	if s := c.a.Stats(); s.PacketsIn != 1 || s.Dropped != 4 {
		t.Errorf("a.Stats() = %+v, want 1 packet in, 4 dropped", s)
	}
	if c.pool.SRTPDropped() != 4 {
		t.Errorf("pool.SRTPDropped() = %d, want 4", c.pool.SRTPDropped())
	}
	// The stream goes on after the bad packets.
	c.phoneA.sendRaw(c.phoneA.rtp, rtpAddr(c.a), peer.seal(t, src.next()))
	c.phoneB.recv()
}

func TestSRTCPIsDecryptedAndReencrypted(t *testing.T) {
	c := newCall(t, 2)
	ka, kca := mustCrypto(t, 1, SuiteAES128SHA1_32), mustCrypto(t, 1, SuiteAES128SHA1_32)
	kb, kcb := mustCrypto(t, 2, SuiteAES128SHA1_80), mustCrypto(t, 2, SuiteAES128SHA1_80)
	if err := c.a.SetSRTP(ka, kca); err != nil {
		t.Fatal(err)
	}
	if err := c.b.SetSRTP(kb, kcb); err != nil {
		t.Fatal(err)
	}
	pa, pb := newSRTPPeer(t, ka, kca), newSRTPPeer(t, kb, kcb)
	rr := []byte{0x81, 201, 0, 7, 0, 0, 0, 0xa, 0, 0, 0, 0xb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	enc, err := pa.enc.EncryptRTCP(nil, rr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.phoneA.sendRaw(c.phoneA.rtcp, rtcpAddr(c.a), enc)
	raw, _ := c.phoneB.recvRaw(c.phoneB.rtcp)
	got, err := pb.dec.DecryptRTCP(nil, raw, nil)
	if err != nil {
		t.Fatalf("phone B cannot decrypt the relayed SRTCP: %v", err)
	}
	if !bytes.Equal(got, rr) {
		t.Errorf("phone B got RTCP %x, want %x", got, rr)
	}
}

func TestSetSRTPKeepsContextsForTheSameKeys(t *testing.T) {
	pool := newTestPool(t, 1, 0)
	e := allocate(t, pool)
	rx, tx := mustCrypto(t, 1, SuiteAES128SHA1_80), mustCrypto(t, 1, SuiteAES128SHA1_80)
	if err := e.SetSRTP(rx, tx); err != nil {
		t.Fatal(err)
	}
	in, out := e.srtpIn.Load(), e.out.srtp
	if err := e.SetSRTP(rx, tx); err != nil {
		t.Fatal(err)
	}
	if e.srtpIn.Load() != in || e.out.srtp != out {
		t.Error("SetSRTP with the same keys replaced the contexts (replay window and ROC lost)")
	}
	if err := e.SetSRTP(Crypto{Suite: SuiteAES128SHA1_80, Key: []byte{1}}, tx); err == nil {
		t.Error("SetSRTP took a short key")
	}
	e.ClearSRTP()
	if e.SRTP() {
		t.Error("SRTP() after ClearSRTP")
	}
}

// srtpRelayLoop is newRelayLoop with phone A speaking SRTP.
func newSRTPRelayLoop(tb testing.TB) (*relayLoop, *srtpPeer) {
	l := newRelayLoop(tb)
	phoneKey, callctlKey := mustCrypto(tb, 1, SuiteAES128SHA1_80), mustCrypto(tb, 1, SuiteAES128SHA1_80)
	if err := l.c.a.SetSRTP(phoneKey, callctlKey); err != nil {
		tb.Fatal(err)
	}
	return l, newSRTPPeer(tb, phoneKey, callctlKey)
}

func TestSRTPRelayAllocatesNothingPerPacket(t *testing.T) {
	// SRTP in at a, decrypted in place, relayed plain out of b; and the
	// reverse direction encrypting into a's buffer.
	l, peer := newSRTPRelayLoop(t)
	const n = 400
	sealed := make([][]byte, n)
	for i := range sealed {
		binary.BigEndian.PutUint16(l.pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(l.pkt[4:], uint32(i)*160)
		out, err := peer.enc.EncryptRTP(nil, l.pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		sealed[i] = out
	}
	send := func(i int) {
		if _, err := l.c.phoneA.rtp.WriteToUDPAddrPort(sealed[i], l.dst); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.c.phoneB.rtp.ReadFromUDPAddrPort(l.buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		send(i)
	}
	i := 10
	if allocs := testing.AllocsPerRun(200, func() { send(i); i++ }); allocs != 0 {
		t.Errorf("relaying one SRTP packet allocates %v times, want 0", allocs)
	}
	eventually(t, "counters settle", func() bool { return l.c.b.Stats().PacketsOut == uint64(i) })
	if s := l.c.a.Stats(); s.PacketsIn != uint64(i) || s.Dropped != 0 {
		t.Errorf("a.Stats() = %+v after %d packets; want all received, none dropped", s, i)
	}

	// Plain RTP from B toward the SRTP phone A: encrypted on the way out.
	plain := make([]byte, 12+160)
	plain[0] = 0x80
	binary.BigEndian.PutUint32(plain[8:], 0x5678)
	dst := rtpAddr(l.c.b)
	if err := l.c.phoneA.rtp.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	j := 0
	back := func() {
		binary.BigEndian.PutUint16(plain[2:], uint16(j))
		j++
		if _, err := l.c.phoneB.rtp.WriteToUDPAddrPort(plain, dst); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.c.phoneA.rtp.ReadFromUDPAddrPort(l.buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		back()
	}
	if allocs := testing.AllocsPerRun(200, back); allocs != 0 {
		t.Errorf("relaying one RTP packet out as SRTP allocates %v times, want 0", allocs)
	}
}

// BenchmarkRelayReceiveSRTP is BenchmarkRelayReceiveRTP for an SRTP party:
// authenticate and decrypt in place, then relay.
func BenchmarkRelayReceiveSRTP(b *testing.B) {
	pool := newTestPool(b, 2, 0)
	a, out := allocate(b, pool), allocate(b, pool)
	sink := newPhone(b)
	sink.sdpOf(out)
	Connect(a, out)
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	a.SetRemote(from, netip.AddrPort{})
	k, kc := mustCrypto(b, 1, SuiteAES128SHA1_80), mustCrypto(b, 1, SuiteAES128SHA1_80)
	if err := a.SetSRTP(k, kc); err != nil {
		b.Fatal(err)
	}
	peer := newSRTPPeer(b, k, kc)
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	buf := make([]byte, 1500)
	var rx rxSequence
	var hdr rtp.Header
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		sealed, _ := peer.enc.EncryptRTP(buf[:0], pkt, &hdr)
		a.receiveRTP(sealed, from, &rx, time.Now())
		i++
	}
}

func TestParseCrypto(t *testing.T) {
	key := strings.Repeat("QUJD", 10) // 30 bytes
	good := []struct {
		in    string
		tag   uint32
		suite SRTPSuite
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key, 1, SuiteAES128SHA1_80},
		{"2 AES_CM_128_HMAC_SHA1_32 inline:" + key + "|2^31", 2, SuiteAES128SHA1_32},
		{"999999999 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1048576", 999999999, SuiteAES128SHA1_80},
		{"3 AEAD_AES_128_GCM inline:" + strings.Repeat("QUJD", 9) + "QQ==", 3, SuiteAEADAES128GCM},
	}
	for _, g := range good {
		c, err := ParseCrypto(g.in)
		if err != nil || c.Tag != g.tag || c.Suite != g.suite || !c.Valid() {
			t.Errorf("ParseCrypto(%q) = %v, %v; want tag %d %s", g.in, c, err, g.tag, g.suite)
		}
		if strings.Contains(c.String(), key) {
			t.Errorf("Crypto.String() %q shows the key", c.String())
		}
		if back, err := ParseCrypto(c.Value()); err != nil || !back.Equal(c) {
			t.Errorf("ParseCrypto(Value()) = %v, %v; want %v", back, err, c)
		}
	}
	bad := map[string]string{
		"": "fields",
		"x AES_CM_128_HMAC_SHA1_80 inline:" + key:                       "tag",
		"1 AES_256_CM_HMAC_SHA1_80 inline:" + key:                       "not supported",
		"1 AES_CM_128_HMAC_SHA1_80 inline:QUJD":                         "bytes",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:4":         "MKI",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + ";inline:" + key:    "more than one key",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " UNENCRYPTED_SRTP": "session parameters",
		"1 AES_CM_128_HMAC_SHA1_80 uri:" + key:                          "inline",
		"1 AES_CM_128_HMAC_SHA1_80 inline:!!!!":                         "base64",
	}
	for in, want := range bad {
		if _, err := ParseCrypto(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCrypto(%q) = %v, want an error about %q", in, err, want)
		} else if strings.Contains(err.Error(), key) {
			t.Errorf("ParseCrypto error %q shows the key", err)
		}
	}
}

const srtpOfferSDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n" +
	"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + "QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD" + "\r\n" +
	"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJD\r\n"

func TestParseSDPReadsSRTPOffer(t *testing.T) {
	info, err := ParseSDP([]byte(srtpOfferSDP))
	if err != nil {
		t.Fatal(err)
	}
	if !info.SRTP() || info.Profile != "RTP/SAVP" {
		t.Errorf("Profile = %q, SRTP() = %v; want RTP/SAVP", info.Profile, info.SRTP())
	}
	if len(info.Crypto) != 1 || info.Crypto[0].Tag != 2 || info.Crypto[0].Suite != SuiteAES128SHA1_80 {
		t.Errorf("Crypto = %v, want only tag 2 (the AES-256 line is not supported)", info.Crypto)
	}
	if c, ok := SelectCrypto(info.Crypto, []SRTPSuite{SuiteAES128SHA1_32, SuiteAES128SHA1_80}); !ok || c.Tag != 2 {
		t.Errorf("SelectCrypto = %v, %v", c, ok)
	}
	red := RedactSDP([]byte(srtpOfferSDP))
	if strings.Contains(red, "QUJDQUJD") || !strings.Contains(red, "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:<redacted>") {
		t.Errorf("RedactSDP left a key or lost the line:\n%s", red)
	}
}

func TestSDPWriterWritesCallctlsOwnKeysAndProfile(t *testing.T) {
	w := NewSDPWriter("callctl")
	own := mustCrypto(t, 2, SuiteAES128SHA1_80)
	w.SetSRTP([]Crypto{own}, true)
	out, err := w.Rewrite([]byte(srtpOfferSDP), loopback, 30000)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, "m=audio 30000 RTP/SAVP 0 101") || !strings.Contains(s, "a=crypto:"+own.Value()+"\r\n") {
		t.Errorf("SRTP rewrite lacks RTP/SAVP or callctl's key:\n%s", s)
	}
	if strings.Count(s, "a=crypto") != 1 {
		t.Errorf("the party's keys were kept:\n%s", s)
	}
	// Best effort: RTP/AVP with a=crypto.
	w.SetSRTP([]Crypto{own}, false)
	out, _ = w.Rewrite([]byte(srtpOfferSDP), loopback, 30000)
	if !strings.Contains(string(out), "m=audio 30000 RTP/AVP 0 101") || !strings.Contains(string(out), "a=crypto:2 ") {
		t.Errorf("best-effort rewrite:\n%s", out)
	}
	// A plain leg gets plain RTP from an SRTP offer.
	w.ClearSRTP()
	out, _ = w.Rewrite([]byte(srtpOfferSDP), loopback, 30000)
	if !strings.Contains(string(out), "m=audio 30000 RTP/AVP 0 101") || strings.Contains(string(out), "crypto") {
		t.Errorf("plain rewrite of an SRTP offer:\n%s", out)
	}
}

// What callctl sends of its own (RFC 4733 digits by WriteRTP, music on
// hold) goes to an SRTP party encrypted in the same stream as the relay.
func TestWriteRTPAndMusicToAnSRTPPartyAreEncrypted(t *testing.T) {
	c := newCall(t, 2)
	phoneKey, callctlKey := mustCrypto(t, 3, SuiteAEADAES128GCM), mustCrypto(t, 3, SuiteAEADAES128GCM)
	if err := c.a.SetSRTP(phoneKey, callctlKey); err != nil {
		t.Fatal(err)
	}
	peer := newSRTPPeer(t, phoneKey, callctlKey)
	digit := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 1, SSRC: 9}, Payload: []byte{5, 0x0a, 0, 160}}
	if err := c.a.WriteRTP(digit); err != nil {
		t.Fatal(err)
	}
	raw, _ := c.phoneA.recvRaw(c.phoneA.rtp)
	plain, err := peer.dec.DecryptRTP(nil, raw, nil)
	if err != nil {
		t.Fatalf("the phone cannot decrypt callctl's digit: %v", err)
	}
	var got rtp.Packet
	if err := got.Unmarshal(plain); err != nil || got.PayloadType != 101 || !bytes.Equal(got.Payload, digit.Payload) {
		t.Fatalf("decrypted digit %+v (%v), want PT 101 payload %x", got.Header, err, digit.Payload)
	}
	if err := c.a.StartMusic(DefaultMusic(), 0, "PCMU"); err != nil {
		t.Fatal(err)
	}
	defer c.a.StopMusic()
	for range 3 {
		raw, _ := c.phoneA.recvRaw(c.phoneA.rtp)
		if _, err := peer.dec.DecryptRTP(nil, raw, nil); err != nil {
			t.Fatalf("the phone cannot decrypt music on hold: %v", err)
		}
	}
}

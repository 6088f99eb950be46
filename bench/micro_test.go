// Package bench holds callctl's benchmark suite (bench/suite, run by
// `make bench`) and the micro-benchmarks of the per-call and per-packet
// code that internal/media and internal/dtmf do not benchmark themselves:
// SDP parse and rewrite, and the cost of each DTMF packet on its way out.
package bench

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callctl/callctl/internal/dtmf"
	"github.com/callctl/callctl/internal/media"
)

// offer is a typical PBX offer: PCMU, PCMA, telephone-event, one audio line.
var offer = []byte("v=0\r\n" +
	"o=asterisk 1843215371 1843215371 IN IP4 192.0.2.10\r\n" +
	"s=Asterisk\r\n" +
	"c=IN IP4 192.0.2.10\r\n" +
	"t=0 0\r\n" +
	"m=audio 14562 RTP/AVP 0 8 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-16\r\n" +
	"a=ptime:20\r\n" +
	"a=maxptime:150\r\n" +
	"a=sendrecv\r\n")

// BenchmarkSDPParse is media.ParseSDP of an INVITE's offer: once per offer
// and answer, four times per call at least.
func BenchmarkSDPParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := media.ParseSDP(offer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSDPRewrite is SDPWriter.Rewrite: the offer pointed at callctl's
// endpoint, as sent on the other leg; twice per call at least.
func BenchmarkSDPRewrite(b *testing.B) {
	w := media.NewSDPWriter("callctl")
	addr := netip.MustParseAddr("127.0.0.1")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Alternate ports so that the body changes and the version moves.
		if _, err := w.Rewrite(offer, addr, 20000+2*(i&1)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkDTMFPlan is the encoder laying out one key (RFC 4733 events at
// 20 ms); per packet it is this divided by the 7 packets of a key.
func BenchmarkDTMFPlan(b *testing.B) {
	cfg := dtmf.EncoderConfig{PayloadType: 101}
	b.ReportAllocs()
	for b.Loop() {
		if len(cfg.Plan([]byte("5"))) != 7 {
			b.Fatal("unexpected plan")
		}
	}
}

// BenchmarkDTMFPacketToEndpoint is one telephone-event packet as dtmf.Send
// hands it to the party's endpoint: one rtp.Packet reused for every packet,
// then Endpoint.WriteRTP (marshal, renumber into the endpoint's stream,
// send). The allocations per op are the DTMF packet's.
func BenchmarkDTMFPacketToEndpoint(b *testing.B) {
	pool, err := media.NewPortPool(41000, 41099, 0)
	if err != nil {
		b.Fatal(err)
	}
	ep, err := pool.Allocate(media.EndpointConfig{IP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		b.Fatal(err)
	}
	defer ep.Close()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close() // never read: the kernel drops what overflows
	ep.SetRemote(sink.LocalAddr().(*net.UDPAddr).AddrPort(), netip.AddrPort{})
	plan := dtmf.EncoderConfig{PayloadType: 101}.Plan([]byte("1234567890*#"))
	b.ReportAllocs()
	i := 0
	var payload [4]byte
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SSRC: 0x1234}}
	for b.Loop() {
		p := plan[i%len(plan)]
		pkt.Marker, pkt.SequenceNumber, pkt.Timestamp = p.Marker, uint16(i), p.Timestamp
		payload = p.Payload
		pkt.Payload = payload[:]
		if err := ep.WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// countingWriter takes dtmf.Send's packets.
type countingWriter struct{ n int }

func (w *countingWriter) WriteRTP(*rtp.Packet) error { w.n++; return nil }

// BenchmarkDTMFSendPerPacket runs dtmf.Send (12 keys at its fastest
// packet interval, 5 ms) into a writer that keeps nothing, and reports the
// heap allocations per packet sent: Send's own cost per DTMF packet. Its
// ns/op is wall time, paced by Send's ticker, not CPU.
func BenchmarkDTMFSendPerPacket(b *testing.B) {
	cfg := dtmf.EncoderConfig{PayloadType: 101, Interval: 5 * time.Millisecond, Duration: 40 * time.Millisecond, Gap: 40 * time.Millisecond}
	keys := []byte("1234567890*#")
	var packets int
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		w := &countingWriter{}
		if err := dtmf.Send(context.Background(), w, cfg, keys); err != nil {
			b.Fatal(err)
		}
		packets += w.n
	}
	runtime.ReadMemStats(&after)
	if packets > 0 {
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(packets), "allocs/packet")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(packets), "B/packet")
	}
}

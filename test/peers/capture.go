package peers

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Capture is a packet capture on the loopback interface by dumpcap
// (Wireshark's capture engine, Debian package tshark), written as a pcap
// file. It shows what reached a peer's socket when the peer itself cannot
// count it (SIPp counts the RTP it sends but not what it receives). Capturing
// needs root or CAP_NET_RAW.
type Capture struct {
	p     *process
	path  string
	probe uint16 // StartCapture's probes went to this port
}

// UDPPacket is one captured UDP datagram.
type UDPPacket struct {
	// Time is when the packet was captured (the system clock, as time.Now
	// reads it), so a test can cut a capture into windows by event times.
	Time     time.Time
	Src, Dst netip.AddrPort
	Payload  []byte
}

// IsRTP reports whether the payload looks like RTP: version 2 and a payload
// type outside RTCP's 200-204 (RFC 3550 5.1, RFC 5761 4).
func (p UDPPacket) IsRTP() bool {
	if len(p.Payload) < 12 || p.Payload[0]>>6 != 2 {
		return false
	}
	pt := p.Payload[1] & 0x7f
	return pt < 72 || pt > 76
}

// RTPPayload returns the payload of an RTP packet: what follows the fixed
// header, the CSRC list and any header extension, without padding
// (RFC 3550 5.1, 5.3.1). It returns nil when the packet is not RTP or is
// malformed.
func (p UDPPacket) RTPPayload() []byte {
	if !p.IsRTP() {
		return nil
	}
	b := p.Payload
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // extension: 16-bit profile, 16-bit length in words
		if len(b) < off+4 {
			return nil
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > 0 { // padding: the last octet counts it
		end -= int(b[end-1])
	}
	if off > end {
		return nil
	}
	return b[off:end]
}

// RTPSeq is an RTP packet's sequence number (not meaningful for others).
func (p UDPPacket) RTPSeq() uint16 {
	if len(p.Payload) < 4 {
		return 0
	}
	return binary.BigEndian.Uint16(p.Payload[2:4])
}

// RTPTimestamp is an RTP packet's timestamp (not meaningful for others).
func (p UDPPacket) RTPTimestamp() uint32 {
	if len(p.Payload) < 8 {
		return 0
	}
	return binary.BigEndian.Uint32(p.Payload[4:8])
}

// RTPPayloadType is an RTP packet's payload type (not meaningful for
// others).
func (p UDPPacket) RTPPayloadType() uint8 {
	if len(p.Payload) < 2 {
		return 0
	}
	return p.Payload[1] & 0x7f
}

// Carries reports whether p is an RTP packet whose payload is at least 80
// octets (10 ms of G.711), all equal to b: the signature of audio streamed
// from a ConstantAudioFile.
func (p UDPPacket) Carries(b byte) bool {
	payload := p.RTPPayload()
	if len(payload) < 80 {
		return false
	}
	for _, c := range payload {
		if c != b {
			return false
		}
	}
	return true
}

// StartCapture captures on "lo" the packets matching a BPF filter such as
// "udp and (port 12000 or port 12010)" until Stop. It returns once the
// capture is live: dumpcap's "Capturing on" comes before its filter sees
// packets, so StartCapture sends probe datagrams to a port of its own
// (added to the filter) until one shows up in the capture. dumpcap writes
// the pcap to its stdout, which it flushes after every packet (a file it
// would buffer). Stop leaves the probes out.
func StartCapture(t testing.TB, filter string) *Capture {
	t.Helper()
	bin := requireBinary(t, "dumpcap", "tshark")
	dir := t.TempDir()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("peers: capture probe: %v", err)
	}
	defer sink.Close() // bound while probing, so no ICMP port unreachable
	probePort := sink.LocalAddr().(*net.UDPAddr).Port
	c := &Capture{probe: uint16(probePort)}
	// -P: pcap rather than pcapng; -q: no packet counts on stderr; -w -:
	// the pcap on stdout.
	c.p = startProcess(t, "dumpcap", dir, bin, []string{"-i", "lo", "-P", "-q", "-w", "-",
		"-f", fmt.Sprintf("(%s) or (udp and dst host 127.0.0.1 and dst port %d)", filter, probePort)})
	c.path, c.p.logs = c.p.logs[0], c.p.logs[1:] // stdout is the pcap, not a log to print
	marker := make([]byte, 16)
	_, _ = rand.Read(marker)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := sink.WriteToUDP(marker, sink.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatalf("peers: capture probe: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
		if data, err := os.ReadFile(c.path); err == nil && bytes.Contains(data, marker) {
			return c
		}
		if c.p.exited() {
			t.Fatalf("peers: dumpcap exited (%s): %s", c.p.state, readLog(c.p.logs[0]))
		}
		if time.Now().After(deadline) {
			t.Fatalf("peers: dumpcap saw no probe after 10 s: %s", readLog(c.p.logs[0]))
		}
	}
}

// Stop ends the capture (dumpcap flushes its file on SIGTERM) and returns the
// UDP packets captured.
func (c *Capture) Stop(t testing.TB) []UDPPacket {
	t.Helper()
	c.p.stop(syscall.SIGTERM, 5*time.Second)
	data, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatalf("peers: capture: %v", err)
	}
	pkts, err := parsePcapUDP(data)
	if err != nil {
		t.Fatalf("peers: capture %s: %v", c.path, err)
	}
	return slices.DeleteFunc(pkts, func(p UDPPacket) bool { return p.Dst.Port() == c.probe })
}

// Path is the pcap file (open it with Wireshark when a test fails).
func (c *Capture) Path() string { return c.path }

// CountRTP counts the RTP packets among pkts whose destination port is dst
// (0: any) and source port src (0: any).
func CountRTP(pkts []UDPPacket, src, dst uint16) int {
	n := 0
	for _, p := range pkts {
		if p.IsRTP() && (src == 0 || p.Src.Port() == src) && (dst == 0 || p.Dst.Port() == dst) {
			n++
		}
	}
	return n
}

// Link types dumpcap writes for the loopback interface.
const (
	linkNull     = 0   // BSD loopback
	linkEthernet = 1   // Linux "lo"
	linkRaw      = 101 // raw IP
	linkLinuxSLL = 113 // "any"
)

// parsePcapUDP reads a classic pcap file (either byte order, µs or ns) and
// returns its IPv4/IPv6 UDP packets.
func parsePcapUDP(data []byte) ([]UDPPacket, error) {
	if len(data) < 24 {
		return nil, errors.New("short pcap header")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a pcap file (magic %x)", data[:4])
	}
	nanos := bo.Uint32(data) == 0xa1b23c4d
	link := bo.Uint32(data[20:24])
	var out []UDPPacket
	for off := 24; off+16 <= len(data); {
		sec, frac := int64(bo.Uint32(data[off:])), int64(bo.Uint32(data[off+4:]))
		if !nanos {
			frac *= 1000
		}
		at := time.Unix(sec, frac)
		incl := int(bo.Uint32(data[off+8:]))
		off += 16
		if off+incl > len(data) {
			break // truncated last record: dumpcap was killed mid-write
		}
		frame := data[off : off+incl]
		off += incl
		var ip []byte
		switch link {
		case linkEthernet:
			if len(frame) < 14 {
				continue
			}
			ip = frame[14:]
		case linkLinuxSLL:
			if len(frame) < 16 {
				continue
			}
			ip = frame[16:]
		case linkNull:
			if len(frame) < 4 {
				continue
			}
			ip = frame[4:]
		case linkRaw:
			ip = frame
		default:
			return nil, fmt.Errorf("unsupported link type %d", link)
		}
		if p, ok := parseUDP(ip); ok {
			p.Time = at
			out = append(out, p)
		}
	}
	return out, nil
}

func parseUDP(ip []byte) (UDPPacket, bool) {
	if len(ip) < 1 {
		return UDPPacket{}, false
	}
	var src, dst netip.Addr
	var l4 []byte
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 || ip[9] != 17 {
			return UDPPacket{}, false
		}
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < ihl+8 {
			return UDPPacket{}, false
		}
		src = netip.AddrFrom4([4]byte(ip[12:16]))
		dst = netip.AddrFrom4([4]byte(ip[16:20]))
		l4 = ip[ihl:]
	case 6:
		if len(ip) < 48 || ip[6] != 17 { // no extension headers on loopback
			return UDPPacket{}, false
		}
		src = netip.AddrFrom16([16]byte(ip[8:24]))
		dst = netip.AddrFrom16([16]byte(ip[24:40]))
		l4 = ip[40:]
	default:
		return UDPPacket{}, false
	}
	sp := binary.BigEndian.Uint16(l4[0:2])
	dp := binary.BigEndian.Uint16(l4[2:4])
	ulen := int(binary.BigEndian.Uint16(l4[4:6]))
	payload := l4[8:]
	if ulen >= 8 && ulen-8 <= len(payload) {
		payload = payload[:ulen-8]
	}
	return UDPPacket{
		Src:     netip.AddrPortFrom(src, sp),
		Dst:     netip.AddrPortFrom(dst, dp),
		Payload: payload,
	}, true
}

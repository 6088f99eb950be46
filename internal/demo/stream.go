package demo

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// stream is one phone's audio: a UDP socket on 127.0.0.1 that sends the
// phone's voice as PCMU RTP every 20 ms to the far end, while the phone's
// side of the stream sends, and counts what arrives. It owns two goroutines,
// which close stops.
type stream struct {
	conn  *net.UDPConn
	voice []byte

	mu      sync.Mutex
	remote  netip.AddrPort
	sending bool

	sent, received atomic.Uint64

	stop    chan struct{}
	wg      sync.WaitGroup
	started bool
}

// frameInterval is the packet time: 160 samples at 8 kHz.
const frameInterval = 20 * time.Millisecond

// openStream binds the phone's RTP socket; nothing is sent until start.
func openStream(number string) (*stream, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &stream{conn: conn, voice: voice(number), stop: make(chan struct{})}, nil
}

// port is the local RTP port, for the phone's SDP.
func (s *stream) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// update applies the latest offer or answer: where the far end wants RTP,
// and whether this phone's side (dir) sends.
func (s *stream) update(remote netip.AddrPort, dir direction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remote = remote
	s.sending = dir.sends() && remote.IsValid()
}

// start begins sending and receiving. It is called once, when the call is
// answered.
func (s *stream) start() {
	if s.started {
		return
	}
	s.started = true
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.send()
	}()
	go func() {
		defer s.wg.Done()
		s.receive()
	}()
}

// send writes one RTP packet every 20 ms (RFC 3550 §5.1: one SSRC, the
// sequence number up by one a packet, the timestamp by 160 samples, marker
// on the first packet of a talkspurt). While the phone does not send, the
// clock goes on and the next packet starts a new talkspurt.
func (s *stream) send() {
	tick := time.NewTicker(frameInterval)
	defer tick.Stop()
	hdr := rtp.Header{
		Version:        2,
		PayloadType:    pcmuType,
		SSRC:           rand.Uint32(),
		SequenceNumber: uint16(rand.Uint32()),
		Timestamp:      rand.Uint32(),
	}
	buf := make([]byte, 1500)
	pos, talking := 0, false
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		remote, sending := s.remote, s.sending
		s.mu.Unlock()
		hdr.Timestamp += frameSamples
		if !sending {
			talking = false
			continue
		}
		hdr.Marker = !talking
		talking = true
		hdr.SequenceNumber++
		n, err := hdr.MarshalTo(buf)
		if err != nil {
			continue
		}
		for i := range frameSamples {
			buf[n+i] = s.voice[pos]
			pos = (pos + 1) % len(s.voice)
		}
		if _, err := s.conn.WriteToUDPAddrPort(buf[:n+frameSamples], remote); err == nil {
			s.sent.Add(1)
		}
	}
}

// receive counts the RTP packets that arrive until the socket is closed.
func (s *stream) receive() {
	buf := make([]byte, 1500)
	for {
		n, _, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-s.stop:
				return
			default:
				continue
			}
		}
		// Version 2, and not RTCP (packet types 200–204 sit where RTP's
		// marker and payload type do, RFC 5761 §4).
		if n >= 12 && buf[0]>>6 == 2 && (buf[1] < 200 || buf[1] > 204) {
			s.received.Add(1)
		}
	}
}

// close stops the stream and waits for its goroutines.
func (s *stream) close() {
	close(s.stop)
	s.conn.Close()
	s.wg.Wait()
}

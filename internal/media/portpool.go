package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Port numbers a pool may use: no privileged ports.
const (
	minPort = 1024
	maxPort = 65535
)

// PortPool hands out even RTP ports, each with the odd RTCP port above it
// (RFC 3550 §11), from an inclusive range. Free ports are handed out in
// random order, so that a call's ports cannot be guessed from another's, and
// a released pair rests for a while before it is handed out again, so that
// stray packets of an ended call do not land in a new one.
//
// A PortPool is safe for concurrent use. Create it with NewPortPool.
type PortPool struct {
	lo, hi int // lo even; every RTP port p in the pool has lo <= p and p+1 <= hi
	rest   time.Duration
	now    func() time.Time // replaced in tests
	// packetHook, if set (by tests), runs before each datagram an
	// endpoint of this pool handles.
	packetHook atomic.Pointer[func()]
	// foreign counts packets the pool's endpoints refused by their
	// latching rules, closed endpoints included.
	foreign atomic.Uint64
	// srtpDropped counts packets that failed SRTP authentication.
	srtpDropped atomic.Uint64

	mu      sync.Mutex
	free    ring[int]         // RTP ports ready to hand out, taken at random
	resting ring[restingPort] // released pairs, in release order (so in expiry order)
	inUse   int
}

type restingPort struct {
	port  int
	until time.Time
}

// NewPortPool returns a pool over the ports lo..hi inclusive. An odd lo is
// rounded up to the next even port; the range must hold at least one pair
// and lie within 1024..65535. A pair released by Endpoint.Close is not handed
// out again until rest has passed.
func NewPortPool(lo, hi int, rest time.Duration) (*PortPool, error) {
	if err := checkPortRange(lo, hi); err != nil {
		return nil, fmt.Errorf("media: port range: %w", err)
	}
	if rest < 0 {
		return nil, fmt.Errorf("media: port rest %v is negative; want 0 or more: %w", rest, ErrInvalidArgument)
	}
	even := lo + lo%2
	pairs := (hi - even + 1) / 2
	p := &PortPool{
		lo:      even,
		hi:      hi,
		rest:    rest,
		now:     time.Now,
		free:    newRing[int](pairs),
		resting: newRing[restingPort](pairs),
	}
	for port := even; port+1 <= hi; port += 2 {
		p.free.push(port)
	}
	return p, nil
}

// checkPortRange validates an inclusive range before rounding lo up to even.
func checkPortRange(lo, hi int) error {
	switch {
	case lo < minPort || lo > maxPort:
		return fmt.Errorf("low end %d is outside %d..%d: %w", lo, minPort, maxPort, ErrInvalidArgument)
	case hi < minPort || hi > maxPort:
		return fmt.Errorf("high end %d is outside %d..%d: %w", hi, minPort, maxPort, ErrInvalidArgument)
	case hi < lo+lo%2+1:
		return fmt.Errorf("%d-%d holds no even RTP port with its odd RTCP port above it; want high end >= even low end + 1: %w",
			lo, hi, ErrInvalidArgument)
	}
	return nil
}

// ParsePortRange parses the rtp_ports setting, "LO-HI" such as "20000-29999",
// and checks it as NewPortPool would.
func ParsePortRange(s string) (lo, hi int, err error) {
	bad := func(why string) (int, int, error) {
		return 0, 0, fmt.Errorf(`rtp_ports: %q %s; want "LO-HI" with ports in %d..%d, e.g. "20000-29999": %w`,
			s, why, minPort, maxPort, ErrInvalidArgument)
	}
	loS, hiS, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return bad("is not a port range")
	}
	lo, err = strconv.Atoi(strings.TrimSpace(loS))
	if err != nil {
		return bad("has a low end that is not a number")
	}
	hi, err = strconv.Atoi(strings.TrimSpace(hiS))
	if err != nil {
		return bad("has a high end that is not a number")
	}
	if err := checkPortRange(lo, hi); err != nil {
		return 0, 0, fmt.Errorf("rtp_ports: %w", err)
	}
	return lo, hi, nil
}

// InUse reports the pairs currently allocated, not counting resting ones.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// Resting reports the released pairs still waiting out their rest period.
func (p *PortPool) Resting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wakeLocked(p.now())
	return p.resting.len()
}

// Range reports the pool's RTP ports: the first and the last even port.
func (p *PortPool) Range() (first, last int) {
	return p.lo, p.hi - 1 - (p.hi-1)%2
}

// Allocate binds an RTP and an RTCP UDP socket on cfg.IP, on the next free
// pair of the pool, skipping pairs the operating system refuses (in use by
// another program), and registers them with a poller (see poller.go), which
// reads them until Close.
func (p *PortPool) Allocate(cfg EndpointConfig) (*Endpoint, error) {
	ip := cfg.IP.Unmap()
	if !ip.IsValid() {
		return nil, fmt.Errorf("media: EndpointConfig.IP is not set; want the local address to bind: %w", ErrInvalidArgument)
	}
	adv := cfg.Advertise.Unmap()
	if !adv.IsValid() {
		adv = ip
	}
	if adv.IsUnspecified() {
		return nil, fmt.Errorf("media: cannot advertise %v in SDP; set EndpointConfig.Advertise to a reachable address: %w",
			adv, ErrInvalidArgument)
	}

	p.mu.Lock()
	p.wakeLocked(p.now())
	tries := p.free.len()
	p.mu.Unlock()

	var refused error
	var skipped []int // refused pairs, put back after the search so it tries each once
	defer func() {
		for _, port := range skipped {
			p.putBack(port)
		}
	}()
	for range tries {
		port, ok := p.take()
		if !ok {
			break
		}
		rtpSock, rtcpSock, err := bindPair(ip, port)
		if err == nil {
			e, err := newEndpoint(p, port, adv, rtpSock, rtcpSock, cfg)
			if err != nil {
				p.release(port)
				return nil, fmt.Errorf("media: poll RTP/RTCP on %v: %w", netip.AddrPortFrom(ip, uint16(port)), err)
			}
			return e, nil
		}
		skipped = append(skipped, port)
		if !portRefused(err) {
			return nil, fmt.Errorf("media: bind RTP/RTCP on %v: %w", netip.AddrPortFrom(ip, uint16(port)), err)
		}
		refused = err
	}
	first, last := p.Range()
	p.mu.Lock()
	inUse, resting := p.inUse, p.resting.len()
	p.mu.Unlock()
	if refused != nil {
		return nil, fmt.Errorf("media: %w in %d-%d (%d in use, %d resting, last refusal: %v)",
			ErrNoPorts, first, last+1, inUse, resting, refused)
	}
	return nil, fmt.Errorf("media: %w in %d-%d (%d in use, %d resting)", ErrNoPorts, first, last+1, inUse, resting)
}

// AllocateAt is Allocate on RTP port port (and port+1), when that pair is
// free: a process re-adopting the calls of one that died on this host
// gives each call the ports it had, so a party still sending there reaches
// its own call, never another's. ErrNoPorts when the pair is not free.
func (p *PortPool) AllocateAt(cfg EndpointConfig, port int) (*Endpoint, error) {
	ip := cfg.IP.Unmap()
	adv := cfg.Advertise.Unmap()
	if !adv.IsValid() {
		adv = ip
	}
	if !ip.IsValid() || adv.IsUnspecified() {
		return p.Allocate(cfg) // its errors name the field
	}
	if !p.takeAt(port) {
		return nil, fmt.Errorf("media: %w: pair %d is not free", ErrNoPorts, port)
	}
	rtpSock, rtcpSock, err := bindPair(ip, port)
	if err != nil {
		p.putBack(port)
		return nil, fmt.Errorf("media: bind RTP/RTCP on %v: %w", netip.AddrPortFrom(ip, uint16(port)), err)
	}
	e, err := newEndpoint(p, port, adv, rtpSock, rtcpSock, cfg)
	if err != nil {
		p.release(port)
		return nil, fmt.Errorf("media: poll RTP/RTCP on %v: %w", netip.AddrPortFrom(ip, uint16(port)), err)
	}
	return e, nil
}

// takeAt reserves port if it is free.
func (p *PortPool) takeAt(port int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	found := false
	for n := p.free.len(); n > 0; n-- {
		v, _ := p.free.pop()
		if v == port && !found {
			found = true
			continue
		}
		p.free.push(v)
	}
	if found {
		p.inUse++
	}
	return found
}

// ForeignDropped reports the packets the pool's endpoints have dropped
// because they came from a source that was not the party's (see Latching).
func (p *PortPool) ForeignDropped() uint64 { return p.foreign.Load() }

// take reserves a free port picked at random; it counts as in use from now
// on.
func (p *PortPool) take() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	port, ok := p.free.popRandom()
	if ok {
		p.inUse++
	}
	return port, ok
}

// putBack returns a port that could not be bound to the free ports.
func (p *PortPool) putBack(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse--
	p.free.push(port)
}

// release rests a pair given up by an endpoint.
func (p *PortPool) release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse--
	if p.rest <= 0 {
		p.free.push(port)
		return
	}
	p.resting.push(restingPort{port: port, until: p.now().Add(p.rest)})
}

// wakeLocked moves pairs whose rest is over to the free queue.
func (p *PortPool) wakeLocked(now time.Time) {
	for {
		r, ok := p.resting.peek()
		if !ok || now.Before(r.until) {
			return
		}
		p.resting.pop()
		p.free.push(r.port)
	}
}

// bindPair binds RTP on port and RTCP on port+1.
func bindPair(ip netip.Addr, port int) (rtp, rtcp *udpSocket, err error) {
	rtp, err = listenUDP(ip, port)
	if err != nil {
		return nil, nil, err
	}
	rtcp, err = listenUDP(ip, port+1)
	if err != nil {
		_ = rtp.close()
		return nil, nil, err
	}
	return rtp, rtcp, nil
}

// portRefused tells a port taken by someone else (try the next one) from a
// failure no port would fix, such as an address not on this host.
func portRefused(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES)
}

// ring is a fixed-capacity FIFO queue. The pool never holds more ports than
// it has pairs, so pushes never overflow.
type ring[T any] struct {
	buf     []T
	head, n int
}

func newRing[T any](capacity int) ring[T] { return ring[T]{buf: make([]T, capacity)} }

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		panic("media: port ring overflow") // a port released twice: a bug in this package
	}
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
}

func (r *ring[T]) peek() (T, bool) {
	if r.n == 0 {
		var zero T
		return zero, false
	}
	return r.buf[r.head], true
}

// popRandom removes and returns an element picked uniformly at random: it
// trades places with the head, which is then popped. math/rand/v2's global
// source is ChaCha8, seeded per process, so the choice is not predictable
// from outside.
func (r *ring[T]) popRandom() (T, bool) {
	if r.n > 1 {
		i := (r.head + rand.IntN(r.n)) % len(r.buf)
		r.buf[r.head], r.buf[i] = r.buf[i], r.buf[r.head]
	}
	return r.pop()
}

func (r *ring[T]) pop() (T, bool) {
	v, ok := r.peek()
	if ok {
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	return v, ok
}

package peers

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Ports are taken from [portLow, portHigh), below Linux's ephemeral range
// (32768-60999) so the kernel does not hand them to some other socket between
// our probe and the peer's bind, and away from callctl's defaults (5060, 5070,
// 8080, 20000-29999).
const (
	portLow   = 11000
	portHigh  = 19600
	blockSize = 400
)

// portPool hands out ports from blocks of blockSize. A block belongs to one
// process at a time: the process holds an flock on a file named for the block
// until it exits, so test binaries that `go test ./...` runs side by side never
// draw the same ports. Inside the process a mutex keeps parallel tests apart.
//
// A range goes back to the pool when the test that took it has ended (its
// cleanups, which stop its peers and its callctl, ran first), and is handed
// out again, oldest first, once no block is left to claim: a long test
// binary such as test/e2e's needs more ports than the blocks hold, and a
// range is never reused while its test may still bind it (callctl binds its
// RTP range one call at a time).
type portPool struct {
	mu    sync.Mutex
	locks []*os.File // held for the life of the process; the kernel frees them at exit
	next  int        // next port to try in the current block
	end   int        // end of the current block (exclusive)
	tried int        // blocks tried so far, to start the search past them
	freed []portRange
}

// portRange is [lo, lo+n).
type portRange struct{ lo, n int }

// reuse takes n ports, lo even, from a range a finished test gave back.
func (p *portPool) reuse(n int) (int, bool) {
	for i, r := range p.freed {
		lo := r.lo + r.lo%2
		if lo+n > r.lo+r.n {
			continue
		}
		p.freed = append(p.freed[:i], p.freed[i+1:]...)
		if before := lo - r.lo; before > 0 {
			p.freed = append(p.freed, portRange{r.lo, before})
		}
		if after := r.lo + r.n - (lo + n); after > 0 {
			p.freed = append(p.freed, portRange{lo + n, after})
		}
		if rangeFree(lo, n) {
			return lo, true
		}
		// Still bound by something else: leave it out for good.
	}
	return 0, false
}

func (p *portPool) give(lo, n int) {
	p.mu.Lock()
	p.freed = append(p.freed, portRange{lo, n})
	p.mu.Unlock()
}

var pool portPool

// FreeUDPPort returns a port on 127.0.0.1 that is free for both UDP and TCP
// (SIP peers bind both), and that no other caller of this package, in this
// process or another, will be given.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	lo, _ := FreePortRange(t, 1)
	return lo
}

// FreePortPair returns an even port p such that p and p+1 are free on
// 127.0.0.1: an RTP/RTCP pair (RFC 3550 11).
func FreePortPair(t testing.TB) int {
	t.Helper()
	lo, _ := FreePortRange(t, 2)
	return lo
}

// FreePortRange returns n consecutive ports [lo, hi] free on 127.0.0.1 for
// UDP and TCP, with lo even. Use it for a peer that binds beside its port:
// SIPp's -mp N also binds N+2, baresip's SIP port+1 is its TLS listener, and a
// media range such as callctl's rtp_ports ("lo-hi").
func FreePortRange(t testing.TB, n int) (lo, hi int) {
	t.Helper()
	if n < 1 || n > blockSize {
		t.Fatalf("peers: FreePortRange(%d): n must be 1..%d", n, blockSize)
	}
	lo = pool.take(t, n)
	t.Cleanup(func() { pool.give(lo, n) })
	return lo, lo + n - 1
}

func (p *portPool) take(t testing.TB, n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.next%2 == 1 {
			p.next++
		}
		for p.next+n <= p.end {
			lo := p.next
			p.next += n
			if rangeFree(lo, n) {
				return lo
			}
		}
		err := p.claimBlock()
		if err == nil {
			continue
		}
		// Every block is taken: the oldest ranges finished tests gave
		// back (long free, past any TCP TIME_WAIT on them).
		if lo, ok := p.reuse(n); ok {
			return lo
		}
		t.Fatalf("peers: %v, and no range given back by a finished test fits %d ports", err, n)
	}
}

// claimBlock takes the next block no other process holds.
func (p *portPool) claimBlock() error {
	dir := filepath.Join(os.TempDir(), "callctl-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("port blocks: %w", err)
	}
	blocks := (portHigh - portLow) / blockSize
	// Start from a place that depends on the PID so concurrent processes do
	// not all contend for block 0 first.
	start := os.Getpid() % blocks
	for ; p.tried < blocks; p.tried++ {
		b := (start + p.tried) % blocks
		f, err := os.OpenFile(filepath.Join(dir, "block-"+strconv.Itoa(b)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return fmt.Errorf("port blocks: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		p.locks = append(p.locks, f)
		p.next = portLow + b*blockSize
		p.end = p.next + blockSize
		p.tried++
		return nil
	}
	return fmt.Errorf("no free port block left in %d-%d (all %d held by other test processes or used up)", portLow, portHigh, blocks)
}

// rangeFree reports whether every port in [lo, lo+n) can be bound on
// 127.0.0.1 for UDP and for TCP.
func rangeFree(lo, n int) bool {
	for p := lo; p < lo+n; p++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		u, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return false
		}
		l, err := net.Listen("tcp4", addr)
		u.Close()
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// waitListening waits until some socket on this machine is bound to port:
// a UDP socket ("udp") or a listening TCP socket ("tcp"). It reads
// /proc/net rather than probing with a bind, which could steal the port from
// the peer that is starting. It gives up, reporting false, after timeout or
// once stop is closed.
func waitListening(proto string, port int, timeout time.Duration, stop <-chan struct{}) bool {
	deadline := time.Now().Add(timeout)
	for {
		if portBound(proto, port) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-stop:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// portBound scans /proc/net/{udp,tcp}{,6} for a local socket on port (TCP:
// in LISTEN state, 0A).
func portBound(proto string, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, file := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || !strings.HasSuffix(f[1], want) {
				continue
			}
			if proto == "udp" || f[3] == "0A" {
				return true
			}
		}
	}
	return false
}

//go:build !linux

package loadgen

import (
	"net"
	"net/netip"
)

// batchConn is the portable fallback: one system call per datagram.
type batchConn struct {
	c    *net.UDPConn
	bufs [][]byte
	lens []int
	dsts []netip.AddrPort
}

func newBatchConn(c *net.UDPConn, n, size int) (*batchConn, error) {
	b := &batchConn{c: c, bufs: make([][]byte, n), lens: make([]int, n), dsts: make([]netip.AddrPort, n)}
	for i := range n {
		b.bufs[i] = make([]byte, size)
	}
	return b, nil
}

func (b *batchConn) read() (int, error) {
	n, _, err := b.c.ReadFromUDPAddrPort(b.bufs[0][:cap(b.bufs[0])])
	if err != nil {
		return 0, err
	}
	b.lens[0] = n
	return 1, nil
}

func (b *batchConn) write(n int) (int, error) {
	var last error
	done := 0
	for i := range n {
		if _, err := b.c.WriteToUDPAddrPort(b.bufs[i][:b.lens[i]], b.dsts[i]); err != nil {
			last = err
		}
		done++
	}
	return done, last
}

func setSocketBuffers(c *net.UDPConn, size int) error {
	return errorsJoin(c.SetReadBuffer(size), c.SetWriteBuffer(size))
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

//go:build linux

package loadgen

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchConn sends and receives batches of datagrams on one UDP socket with
// one sendmmsg or recvmmsg system call per batch (Linux). Its buffers,
// headers and callbacks are allocated once: a batch allocates nothing. It
// is not safe for concurrent use; a socket has one reading and one writing
// batchConn.
type batchConn struct {
	raw   syscall.RawConn
	bufs  [][]byte         // one buffer per message
	lens  []int            // received: datagram sizes; to send: lengths
	dsts  []netip.AddrPort // to send: destinations
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4

	// per call, for the bound callbacks
	count, done int
	errno       error
	recvFn      func(fd uintptr) bool
	sendFn      func(fd uintptr) bool
}

func newBatchConn(c *net.UDPConn, n, size int) (*batchConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batchConn{
		raw:   raw,
		bufs:  make([][]byte, n),
		lens:  make([]int, n),
		dsts:  make([]netip.AddrPort, n),
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet4, n),
	}
	mem := make([]byte, n*size)
	for i := range n {
		b.bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	b.recvFn = b.recvmmsg
	b.sendFn = b.sendmmsg
	return b, nil
}

func (b *batchConn) recvmmsg(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait for the socket to be readable
	}
	if e != 0 {
		b.errno = e
		return true
	}
	b.done = int(n)
	return true
}

// read waits for datagrams and returns how many arrived, in bufs[:n] with
// sizes in lens[:n].
func (b *batchConn) read() (int, error) {
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Name = nil
		b.hdrs[i].Hdr.Namelen = 0
		b.hdrs[i].Hdr.Flags = 0
		b.iovs[i].SetLen(cap(b.bufs[i]))
	}
	b.done, b.errno = 0, nil
	if err := b.raw.Read(b.recvFn); err != nil {
		return 0, err
	}
	if b.errno != nil {
		return 0, b.errno
	}
	for i := range b.done {
		b.lens[i] = int(b.hdrs[i].Len)
	}
	return b.done, nil
}

func (b *batchConn) sendmmsg(fd uintptr) bool {
	for b.done < b.count {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.done])), uintptr(b.count-b.done), 0, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		if e != 0 {
			// A refused destination (ICMP) fails one message: skip it.
			b.errno = e
			b.done++
			continue
		}
		b.done += int(n)
	}
	return true
}

// write sends bufs[i][:lens[i]] to dsts[i] for i < n. Messages the kernel
// refuses are skipped; the last such error is returned.
func (b *batchConn) write(n int) (int, error) {
	if n == 0 {
		return 0, nil
	}
	for i := range n {
		a := b.dsts[i].Addr().As4()
		p := b.dsts[i].Port()
		b.names[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a}
		pp := (*[2]byte)(unsafe.Pointer(&b.names[i].Port))
		pp[0], pp[1] = byte(p>>8), byte(p)
		b.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		b.iovs[i].SetLen(b.lens[i])
	}
	b.count, b.done, b.errno = n, 0, nil
	if err := b.raw.Write(b.sendFn); err != nil {
		return 0, err
	}
	if b.errno != nil {
		return b.done, b.errno
	}
	return b.done, nil
}

// setSocketBuffers asks for large kernel buffers so that bursts are not
// dropped at the generator's own sockets; as root it may exceed
// net.core.rmem_max (SO_RCVBUFFORCE).
func setSocketBuffers(c *net.UDPConn, size int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], size) != nil {
				serr = errors.Join(serr, unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], size))
			}
		}
	})
	return errors.Join(err, serr)
}

package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket is a non-blocking UDP socket that callctl reads through its own
// pollers (see poller.go), not through Go's runtime network poller: a
// socket the runtime knew about would also wake the runtime's epoll for
// every packet, for nobody. Reads and writes are single non-blocking system
// calls that allocate nothing.
type udpSocket struct {
	fd int
	v6 bool // AF_INET6: IPv4 destinations are written as v4-mapped
}

// errWouldBlock is a read with nothing queued, or a write the socket's
// buffer has no room for.
var errWouldBlock = errors.New("media: socket would block")

// listenUDP binds a non-blocking UDP socket on ip:port.
func listenUDP(ip netip.Addr, port int) (*udpSocket, error) {
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: port, Addr: ip.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %v: %w", netip.AddrPortFrom(ip, uint16(port)), err)
	}
	return &udpSocket{fd: fd, v6: family == unix.AF_INET6}, nil
}

// localAddr returns the address the socket is bound to.
func (s *udpSocket) localAddr() netip.AddrPort {
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return netip.AddrPort{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func (s *udpSocket) close() error { return unix.Close(s.fd) }

// readFrom reads one datagram into buf, using sa as scratch space for the
// source address. It returns errWouldBlock when nothing is queued.
//
// RawSyscall: the socket is non-blocking, so the call cannot block and
// needs none of the scheduler's bookkeeping around a system call.
func (s *udpSocket) readFrom(buf []byte, sa *unix.RawSockaddrAny) (int, netip.AddrPort, error) {
	salen := uint32(unix.SizeofSockaddrAny)
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(s.fd),
		uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)), 0,
		uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&salen)))
	if errno != 0 {
		if errno == unix.EAGAIN || errno == unix.EINTR {
			return 0, netip.AddrPort{}, errWouldBlock
		}
		return 0, netip.AddrPort{}, errno
	}
	return int(n), rawAddrPort(sa), nil
}

// rawAddrPort decodes a source address written by recvfrom.
func rawAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), portFromNetwork(in.Port))
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(in.Addr).Unmap(), portFromNetwork(in.Port))
	}
	return netip.AddrPort{}
}

// portFromNetwork reads a sockaddr's port, stored in network byte order.
func portFromNetwork(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return binary.BigEndian.Uint16(b[:])
}

// portToNetwork is portFromNetwork's inverse.
func portToNetwork(p uint16) uint16 {
	var n uint16
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&n))[:], p)
	return n
}

// writeTo sends b to dst in one non-blocking sendto; a full socket buffer is
// errWouldBlock (the packet is dropped, as a real-time stream must not wait).
func (s *udpSocket) writeTo(b []byte, dst netip.AddrPort) error {
	ip := dst.Addr()
	var (
		sa4   unix.RawSockaddrInet4
		sa6   unix.RawSockaddrInet6
		ptr   unsafe.Pointer
		salen uintptr
	)
	switch {
	case ip.Is4() && !s.v6:
		sa4.Family = unix.AF_INET
		sa4.Port = portToNetwork(dst.Port())
		sa4.Addr = ip.As4()
		ptr, salen = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	case s.v6:
		sa6.Family = unix.AF_INET6
		sa6.Port = portToNetwork(dst.Port())
		sa6.Addr = ip.As16() // a v4 address becomes v4-mapped
		ptr, salen = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	default:
		return fmt.Errorf("media: cannot send to %v from an IPv4 socket", dst)
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd),
		uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), 0,
		uintptr(ptr), salen)
	if errno != 0 {
		if errno == unix.EAGAIN || errno == unix.EINTR {
			return errWouldBlock
		}
		return errno
	}
	return nil
}

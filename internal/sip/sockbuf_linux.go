package sip

import (
	"net"

	"golang.org/x/sys/unix"
)

// setUDPBuffers asks for size bytes of kernel receive and send buffer on c
// and returns the sizes the kernel reports back (getsockopt SO_RCVBUF,
// SO_SNDBUF: Linux doubles the request for its own bookkeeping). It tries
// SO_RCVBUFFORCE/SO_SNDBUFFORCE first, which exceed net.core.rmem_max and
// wmem_max but need CAP_NET_ADMIN, and falls back silently to the capped
// SO_RCVBUF/SO_SNDBUF (what net.UDPConn.SetReadBuffer sets). Nothing here is
// an error: the socket works with whatever buffer it has.
func setUDPBuffers(c *net.UDPConn, size int) (rcv, snd int) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0
	}
	_ = raw.Control(func(fd uintptr) {
		for _, o := range []struct {
			force, plain int
			got          *int
		}{
			{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, &rcv},
			{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, &snd},
		} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.force, size) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.plain, size)
			}
			*o.got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, o.plain)
		}
	})
	return rcv, snd
}

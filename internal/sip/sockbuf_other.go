//go:build !linux

package sip

import "net"

// setUDPBuffers asks for size bytes of kernel receive and send buffer on c,
// within the system's limits. The effective sizes are not read back here
// (0); see sockbuf_linux.go.
func setUDPBuffers(c *net.UDPConn, size int) (rcv, snd int) {
	_ = c.SetReadBuffer(size)
	_ = c.SetWriteBuffer(size)
	return 0, 0
}

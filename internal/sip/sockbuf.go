package sip

// sipUDPBuffer is the kernel receive and send buffer callctl asks for on its
// SIP UDP socket. Linux's default (net.core.rmem_default, about 208 KiB)
// overflows at around 1,000 calls/s: one goroutine reads the socket, and while
// it is not running the datagrams of a burst (INVITEs, ACKs, BYEs and their
// answers, a few hundred bytes to 2 KiB each, charged to the buffer at several
// times that) queue in the kernel; those that do not fit are dropped, and each
// comes back only as an RFC 3261 retransmission 500 ms later, which is what a
// set-up p99 near 500 ms means. 4 MiB holds a few thousand datagrams: a
// fraction of a second of signalling at several thousand calls per second.
//
// Without privilege the kernel caps the request at net.core.rmem_max
// (wmem_max for sending); as root (CAP_NET_ADMIN) setUDPBuffers goes past the
// cap. The effective sizes are logged at Debug when the agent starts.
const sipUDPBuffer = 4 << 20

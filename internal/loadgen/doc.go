// Package loadgen is callctl's load generator: it plays both PBX sides of
// calls on loopback and measures what the middle box (callctl, another
// B2BUA, or a plain SIPp UAS that echoes RTP) does to them.
//
// The caller side (UAC) places calls to a target SIP address at a given
// rate and concurrency, holds each for a given time and hangs up; the
// callee side (UAS) answers the INVITEs the target sends on (180, then 200
// with a PCMU offer answered). Both sides stream RTP at 20 ms packets:
// PCMU with real sequence numbers and timestamps, and in each payload a
// magic word, the stream's id, a per-stream counter and the send time.
// Both sides run in one process on one clock, so the receiver measures
// one-way latency, and the counters measure loss, duplication and
// reordering exactly.
//
// SIP is spoken over UDP with a small hand-written parser (one reader
// goroutine per side, retransmissions on RFC 3261 timers), and RTP goes
// through a few shared sockets per side with batched system calls
// (sendmmsg/recvmmsg): the generator spends far less per packet than the
// box it measures. The RTP loop allocates nothing.
//
// Generator is the engine; cmd/callctl-load is its command line and
// bench/suite the fixed benchmark suite built on it.
package loadgen

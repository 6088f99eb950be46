// Package media moves packets and knows nothing of SIP.
//
// It anchors a call's audio in callctl: a [PortPool] hands out even/odd UDP
// port pairs (RTP on the even port, RTCP on the odd one, RFC 3550 §11), an
// [Endpoint] owns one pair and faces one party, and [Connect] joins two
// endpoints into a relay so that what one party sends is written out of the
// other endpoint toward the other party. Each endpoint sends one continuous
// RTP stream of its own (own SSRC, sequence numbers and timestamps, RFC 3550
// §5.1 and §8), whatever feeds it: the relayed party, a different party after
// a transfer, or packets callctl injects with [Endpoint.WriteRTP]. Media is
// taken only from the party that signalled it ([Latching]): by default from
// the IP address of its SDP, the port learned from its first packet
// (symmetric RTP, RFC 4961), so a phone is answered where it really sends
// from; a source that is not the party's is dropped and counted. Ports are
// handed out in random order, so they cannot be guessed.
//
// Sockets are not read by goroutines of their own: a few pollers (one per
// CPU, poller.go) each drain an epoll set of many endpoints' sockets and
// relay every packet inline, with raw non-blocking system calls. The relay
// path allocates nothing, takes no lock shared between calls and logs
// nothing; its counters are atomics ([Endpoint.Stats]). Linux only (epoll). Whoever sends
// into an endpoint's stream (the relay, WriteRTP, music) takes the next
// sequence number under that endpoint's own lock, so the party sees no
// duplicate and no gap.
//
// For hold, [Endpoint.StartMusic] plays [Music] (a WAV file read by
// [LoadMusic], or [DefaultMusic]) to the party in G.711 µ-law or A-law,
// 20 ms a packet, in the endpoint's own stream; meanwhile nothing is relayed
// toward that party, and [Endpoint.StopMusic] resumes the relay where the
// stream left off. [Endpoint.SetEventTap] shows the packets of one payload
// type (telephone-event, RFC 4733) received from a party, so DTMF can be
// read while it is relayed, and [Endpoint.AddFork] hands every RTP packet a
// party sends to other consumers (listen-in) after it has been relayed, at
// the cost of one call per fork and no allocation.
//
// An endpoint may speak SRTP (RFC 3711) to its party instead of RTP
// ([Endpoint.SetSRTP], with SDES keys, RFC 4568, read by [ParseCrypto] and
// made by [NewCrypto]): what the party sends is authenticated and decrypted
// in place before latching, relaying, taps and forks see it, and what is
// sent to it is encrypted last, so each leg is RTP or SRTP on its own and
// nothing else in callctl sees ciphertext. A packet that fails
// authentication or replay protection is dropped and counted
// (Stats.SRTPDropped).
//
// The package also reads and rewrites the SDP bodies that describe the media
// (RFC 4566, RFC 3264): [ParseSDP] extracts the one audio stream callctl
// relays, [SDPWriter] rewrites a body so that it points at callctl's own
// endpoint while keeping each leg's o= line consistent and carrying that
// leg's own a=crypto keys and transport profile ([SDPWriter.SetSRTP]), and
// [SameForPeer] and [SameSDPForPeer] tell whether a party's new SDP changes
// anything the other party would see once rewritten.
//
// Errors wrap the sentinels [ErrInvalidArgument], [ErrNoPorts], [ErrClosed],
// [ErrNoRemote] and [ErrBadSDP]; test with errors.Is.
package media

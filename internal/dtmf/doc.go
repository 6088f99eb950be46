// Package dtmf turns DTMF keys into what goes on the wire and back: RFC 4733
// telephone events inside RTP, and the SIP INFO bodies (application/dtmf-relay
// and application/dtmf) that legs without telephone-event use instead.
//
// [ParseKeys] is the door for keys from outside (0-9, *, #, A-D; a-d are
// upper-cased) and returns a [*KeyError] naming the bad character. On the
// sending side, [EncoderConfig.Plan] lays out the RTP packets of a key
// sequence (RFC 4733 §2.5.1: one timestamp per event, marker on its first
// packet, growing duration, end packet three times, long events split into
// segments) and [Send] plays such a plan to an [RTPWriter] in real time,
// ending a tone cleanly when its context is cancelled. On the receiving side,
// [Detector] reports each event a party sends exactly once, and
// [ParseRelay] / [ParseDTMFBody] read INFO bodies; [FormatRelay] writes one.
//
// The package knows nothing of SIP dialogs or sockets: the session decides
// which leg gets DTMF and how, internal/media carries the packets. Detector.Feed
// is on the receive path and allocates nothing.
//
// Errors for arguments wrap [ErrInvalidArgument] (a [*KeyError] or a
// [*ConfigError]); errors for bodies or payloads received from a peer wrap
// [ErrMalformed]. Test with errors.Is / errors.As.
package dtmf

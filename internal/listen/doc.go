// Package listen lets supervisors hear live calls in a browser (listen-in):
// it answers a WebRTC offer with a PeerConnection that sends two audio
// tracks, the caller and the callee, fed by forks of the RTP each party
// sends to callctl (media.Endpoint.AddFork). Audio is passed through as the
// party sent it (PCMU, PCMA, G.722, Opus), never decoded or transcoded;
// telephone-event and comfort-noise packets are dropped, since the browser
// would play them as audio. Each track is one continuous RTP stream of its
// own: sequence numbers run on and timestamps advance with the wall clock
// across hold, music on hold and transfer, so the browser's jitter buffer
// never resets (RFC 3550 §5.1).
//
// A [Manager] owns every listener. A listener ends on [Manager.Stop], when
// its call ends ([Manager.StopSession]), when its ICE connection fails or
// the browser closes it (DTLS close_notify), or when it never connects; in
// every case its PeerConnection is closed, its forks removed and its
// goroutines stopped, and [Manager.OnEnded] says why.
//
// The relay pays for each listener one fork call: a payload-type check, a
// copy into a preallocated slot and a non-blocking channel send. A goroutine
// per track does the rest (renumbering, SRTP, the socket write).
//
// ICE uses host candidates only, on configured addresses (optionally
// advertised under a 1:1 NAT address), from a UDP port range or all on one
// UDP port.
//
// [CheckOffer], [CheckAnswer] and [ValidID] check what a node that does not
// carry a call passes on to, or gets back from, the node that does
// (package cluster), without a Manager: the listener always runs where the
// call's media is.
package listen

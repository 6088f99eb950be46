// Package sip speaks SIP for callctl: it listens on UDP and TCP (via
// github.com/emiago/sipgo), refuses requests from sources outside the
// allow-list, detects loops, and turns each call's two halves into Legs: an
// Inbound leg for the INVITE the PBX sent us (callctl is the UAS) and an
// Outbound leg for the INVITE callctl sends onward (callctl is the UAC).
//
// Each Leg is one RFC 3261 dialog with its own Call-ID, tags, CSeq spaces,
// route set and remote target. In-dialog requests are routed to their Leg by
// Call-ID and local tag; everything that happens on a Leg (responses, ACKs,
// re-INVITEs, BYEs, CANCELs, timeouts) is handed to the Leg's owner as an
// Event through one sink function, so the owner (a session) can process them
// one at a time. The package decides nothing about calls: it never answers a
// re-INVITE or relays anything on its own, except what RFC 3261 makes the
// dialog layer's job (200 to BYE, 2xx retransmission until ACK, ACK to 2xx,
// 481 for unknown dialogs) and what the extensions it supports make each
// leg's own business: reliable provisionals and PRACK (RFC 3262,
// prack.go), session timers and their refreshes, which never leave their
// leg (RFC 4028, timers.go: the owner only hears SessionExpired), and
// holding an in-dialog request briefly so the owner gets a dialog's
// requests in CSeq order (order.go). A leg dialled with a delayed offer leaves the
// ACK's SDP answer to its owner (Leg.Ack), and Leg.Update sends UPDATE in an
// early or confirmed dialog (RFC 3311).
package sip

package sip

import (
	gosip "github.com/emiago/sipgo/sip"
)

// Event is something that happened on a Leg. The concrete types below are the
// whole set; a sink receives them in the order the SIP layer accepted them
// (in-dialog requests in CSeq order, stale ones already refused).
type Event interface{ leg() *Leg }

// Progress is a provisional response (180, 183, …) to an Outbound INVITE.
type Progress struct {
	Leg      *Leg
	Response *gosip.Response
}

// Answered is the 2xx to an Outbound INVITE; the ACK has been sent, except
// for a leg dialled with DialOptions.DelayedOffer, whose owner sends it with
// Leg.Ack.
type Answered struct {
	Leg      *Leg
	Response *gosip.Response
}

// Failed is the final non-2xx response to an Outbound INVITE, or Err when the
// transaction ended without one (timeout, transport error). Status is the
// response code, or 408 for a timeout and 503 for a transport error.
type Failed struct {
	Leg      *Leg
	Response *gosip.Response
	Status   int
	Err      error
}

// Cancelled reports that the caller CANCELled an Inbound INVITE; the INVITE
// has already been answered 487 by the transaction layer.
type Cancelled struct{ Leg *Leg }

// Request is an in-dialog request other than ACK and BYE (re-INVITE, INFO,
// UPDATE, REFER, NOTIFY, MESSAGE). The owner must call Respond exactly once;
// the SIP layer answers 500 on its behalf if it has not within 32 seconds.
type Request struct {
	Leg     *Leg
	Request *gosip.Request
	respond func(status int, reason string, body []byte, hdrs ...gosip.Header)
}

// Respond answers the request. A 2xx to a re-INVITE is retransmitted until
// the ACK arrives (RFC 3261 13.3.1.4), reported as Acked.
func (r *Request) Respond(status int, reason string, body []byte, hdrs ...gosip.Header) {
	r.respond(status, reason, body, hdrs...)
}

// Acked is the ACK to a 2xx callctl sent on an Inbound leg (initial INVITE) or
// to a re-INVITE received on either leg. Body is the SDP answer when the
// INVITE carried no offer.
type Acked struct {
	Leg  *Leg
	CSeq uint32
	Body []byte
}

// AckTimeout means a 2xx callctl sent was never ACKed within 64*T1; RFC 3261
// 13.3.1.4 says the session should then be ended with a BYE. On a leg
// dialled with DialOptions.DelayedOffer it also means the owner never
// called Ack within 64*T1: the SIP layer ACKed without an answer and sent
// BYE.
type AckTimeout struct{ Leg *Leg }

// Bye is a BYE from the leg's peer; it has been answered 200 and the dialog
// is over.
type Bye struct {
	Leg     *Leg
	Request *gosip.Request
}

// ReinviteResult is the final outcome of a re-INVITE callctl sent on a leg.
// For a 2xx the ACK has been sent. Status is 408 for a timeout.
type ReinviteResult struct {
	Leg      *Leg
	Response *gosip.Response
	Status   int
	Err      error
}

func (e *Progress) leg() *Leg       { return e.Leg }
func (e *Answered) leg() *Leg       { return e.Leg }
func (e *Failed) leg() *Leg         { return e.Leg }
func (e *Cancelled) leg() *Leg      { return e.Leg }
func (e *Request) leg() *Leg        { return e.Leg }
func (e *Acked) leg() *Leg          { return e.Leg }
func (e *AckTimeout) leg() *Leg     { return e.Leg }
func (e *Bye) leg() *Leg            { return e.Leg }
func (e *ReinviteResult) leg() *Leg { return e.Leg }

// LegOf returns the leg an event happened on.
func LegOf(e Event) *Leg { return e.leg() }

// Result is the final outcome of a non-INVITE request callctl sent with
// Leg.Send (REFER, INFO, NOTIFY, …). Status is 408 for a timeout. Tag is
// whatever the owner passed to Send, to match results to their purpose.
type Result struct {
	Leg      *Leg
	Method   gosip.RequestMethod
	Tag      any
	Response *gosip.Response
	Status   int
	Err      error
}

func (e *Result) leg() *Leg { return e.Leg }

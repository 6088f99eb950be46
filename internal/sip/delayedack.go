package sip

import (
	"errors"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Delayed offer on an outbound leg (RFC 3261 13.2.1, RFC 3264 §4): the
// INVITE carries no SDP, the 2xx carries the callee's offer and the ACK the
// answer. The answer comes from the leg's owner (who gets it from the other
// party), so the ACK for the 2xx waits for Leg.Ack; the ACK is still the UAC
// core's job (RFC 3261 13.2.2.4): retransmitted 2xx get the same ACK again
// once it was sent, and if the owner never supplies the answer the leg ACKs
// without one and ends the dialog with BYE.

// delayedAck is the state of an outbound leg dialled with DelayedOffer.
type delayedAck struct {
	invite *gosip.Request  // the INVITE the 2xx answered (nil until the 2xx)
	res    *gosip.Response // that 2xx
	sent   bool            // the ACK went out; retransmitted 2xx get it again
	body   []byte          // the ACK's SDP answer
	timer  *time.Timer     // ends the dialog if the owner never ACKs
}

// errNoDelayedAck is Ack's error when there is no 2xx waiting for one.
var errNoDelayedAck = errors.New("no 2xx of a delayed-offer INVITE is waiting for its ACK")

// holdAck keeps the 2xx of a delayed-offer INVITE for Ack, and arms the
// timeout that ACKs it without an answer and sends BYE after 64*T1.
func (l *Leg) holdAck(req *gosip.Request, res *gosip.Response) {
	ref := l.txRef()
	l.mu.Lock()
	d := l.delayedAck
	d.invite, d.res = req, res
	d.timer = time.AfterFunc(64*t1(), func() {
		if l := ref.get(); l != nil {
			l.delayedAckTimeout()
		}
	})
	l.mu.Unlock()
}

// Ack sends the ACK for the 2xx of an INVITE dialled with
// DialOptions.DelayedOffer, carrying body (the SDP answer; nil for none).
// It returns an error if there is no such 2xx, or its ACK was already sent.
func (l *Leg) Ack(body []byte) error {
	l.mu.Lock()
	d := l.delayedAck
	if d == nil || d.invite == nil || d.sent {
		l.mu.Unlock()
		return errNoDelayedAck
	}
	d.sent, d.body = true, body
	l.rememberSDPLocked(body) // a refresh re-INVITE offers it again (timers.go)
	if d.timer != nil {
		d.timer.Stop()
	}
	req := d.invite
	l.mu.Unlock()
	l.sendAckBody(req, body)
	return nil
}

// ackDelayed handles a retransmitted 2xx on a delayed-offer leg: ignored
// until the owner sent the ACK, then ACKed again with the same body. It
// returns false for a leg without a delayed offer.
func (l *Leg) ackDelayed(req *gosip.Request) bool {
	l.mu.Lock()
	d := l.delayedAck
	if d == nil || d.invite == nil {
		l.mu.Unlock()
		return false
	}
	sent, body := d.sent, d.body
	l.mu.Unlock()
	if sent {
		l.sendAckBody(req, body)
	}
	return true
}

// flushDelayedAck sends the ACK without a body if the owner has not sent
// it: before a BYE, which must not precede the ACK of the dialog's 2xx.
func (l *Leg) flushDelayedAck() {
	l.mu.Lock()
	d := l.delayedAck
	if d == nil || d.invite == nil || d.sent {
		l.mu.Unlock()
		return
	}
	d.sent = true
	if d.timer != nil {
		d.timer.Stop()
	}
	req := d.invite
	l.mu.Unlock()
	l.sendAckBody(req, nil)
}

func (l *Leg) delayedAckTimeout() {
	l.mu.Lock()
	d := l.delayedAck
	pending := d != nil && !d.sent && !l.ended
	l.mu.Unlock()
	if !pending {
		return
	}
	l.logger().Warn("no SDP answer for the ACK of a delayed-offer 2xx: ACK without one and BYE")
	l.flushDelayedAck()
	l.emit(&AckTimeout{Leg: l})
	l.Bye(`SIP;cause=500;text="no SDP answer for the ACK"`)
}

// sendAckBody is sendAck with an SDP body (RFC 3261 13.2.2.4; the answer of
// a delayed offer, RFC 3264 §4).
func (l *Leg) sendAckBody(invite *gosip.Request, body []byte) {
	l.mu.Lock()
	seq := l.localSeq
	l.localSeq = invite.CSeq().SeqNo
	ack := l.newRequestLocked(gosip.ACK, body)
	l.localSeq = seq
	l.mu.Unlock()
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		if a := invite.GetHeader(name); a != nil {
			ack.AppendHeader(gosip.HeaderClone(a))
		}
	}
	if err := l.agent.write(ack); err != nil {
		l.logger().Warn("sending ACK failed", zap.Error(err))
	}
}

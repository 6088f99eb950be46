package sip

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Message size (RFC 3261 18.1.1). A request callctl would send over UDP that
// is larger than udpSizeLimit goes over TCP, where the peer's policy says it
// accepts TCP (LargeOverTCP), else as one large UDP datagram (the IP layer
// fragments it). A response always goes back on its request's transport,
// whatever its size (18.2.2). Nothing is dropped silently: a message that
// cannot be sent fails its transaction and is logged and counted
// (SendFailures).
const (
	// udpSizeLimit is RFC 3261 18.1.1's 1300 bytes for an unknown path MTU.
	udpSizeLimit = 1300
	// maxUDPDatagram is the largest UDP payload over IPv4 (65535 less the
	// IP and UDP headers).
	maxUDPDatagram = 65507
	// connectTimeout bounds opening a TCP connection and its TLS handshake
	// for a request: a callee that accepts the connection and never
	// completes the handshake fails the request (reason connect) instead
	// of holding the call, and callctl's shutdown, forever.
	connectTimeout = 10 * time.Second
)

func init() {
	// sipgo v1.7.3 refuses (ErrUDPMTUCongestion) any UDP message longer than
	// UDPMTUSize-200, for requests and responses alike, retransmissions
	// included: a 2 KB 200 OK was never sent. callctl decides itself what
	// travels how (fitTransport), so sipgo may write any datagram the
	// kernel takes. Set once, before any goroutine can read it.
	gosip.UDPMTUSize = maxUDPDatagram + 200
}

// LargeOver values: how a request too large for UDP travels to a peer.
const (
	// LargeOverTCP sends it over TCP to the same host and port; if the
	// connection is refused it goes as a large UDP datagram after all (RFC
	// 3261 18.1.1: retry over UDP on a TCP reset).
	LargeOverTCP = "tcp"
	// LargeOverUDP sends it as a large UDP datagram (peers without TCP).
	LargeOverUDP = "udp"
)

// PeerPolicy is how requests to one host travel when they are too large
// for UDP.
type PeerPolicy struct {
	// Host is an IP address or host name, as in the peer's URIs.
	Host string
	// LargeOver is LargeOverTCP or LargeOverUDP.
	LargeOver string
}

// Why a message could not be sent (SendFailures).
const (
	failConnect  = iota // no connection to the peer (TCP/TLS refused, unreachable, TLS handshake)
	failTooLarge        // larger than any UDP datagram can be
	failWrite           // any other error writing the message
	numFailReasons
)

var failNames = [numFailReasons]string{"connect", "too_large", "write"}

// SendFailures returns how many messages callctl could not send, by reason:
// connect, too_large, write. Each failed its transaction.
func (a *Agent) SendFailures() map[string]uint64 {
	out := make(map[string]uint64, numFailReasons)
	for i, name := range failNames {
		out[name] = a.sendFailed[i].Load()
	}
	return out
}

// LargeMessages returns how many requests larger than RFC 3261's 1,300
// bytes for UDP were sent, by how they went: "tcp" (switched from UDP) or
// "udp" (a large datagram, by policy or because TCP was refused).
func (a *Agent) LargeMessages() map[string]uint64 {
	return map[string]uint64{"tcp": a.largeSent[0].Load(), "udp": a.largeSent[1].Load()}
}

// failReason classifies a send error.
func failReason(err error) int {
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.EMSGSIZE), errors.Is(err, gosip.ErrUDPMTUCongestion):
		return failTooLarge
	case errors.As(err, &op) && op.Op == "dial",
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		strings.Contains(err.Error(), "TLS handshake"), strings.Contains(err.Error(), "dial"):
		return failConnect
	default:
		return failWrite
	}
}

// sendFailure counts and logs a message that could not be sent. It is
// logged at warning level: the transaction it belonged to fails.
func (a *Agent) sendFailure(log *zap.Logger, what string, err error, fields ...zap.Field) {
	r := failReason(err)
	a.sendFailed[r].Add(1)
	if log == nil {
		log = a.log
	}
	log.Warn("sip: message not sent; its transaction fails",
		append(fields, zap.String("message", what), zap.String("reason", failNames[r]), zap.Error(err))...)
}

// responseFailed is sendFailure for a response (the request's transaction
// ends without it reaching the peer).
func (a *Agent) responseFailed(log *zap.Logger, status int, err error) {
	a.sendFailure(log, "response", err, zap.Int("status", status))
}

// largeOver returns the policy for requests to host (LargeOverTCP unless a
// peer policy says otherwise).
func (a *Agent) largeOver(host string) string {
	host = strings.Trim(host, "[]")
	for _, p := range a.policy.Load().peers {
		if strings.EqualFold(strings.Trim(p.Host, "[]"), host) {
			return p.LargeOver
		}
	}
	if a.cfg.LargeOver != "" {
		return a.cfg.LargeOver
	}
	return LargeOverTCP
}

var sizeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// messageSize is the length of req on the wire.
func messageSize(req *gosip.Request) int {
	buf := sizeBufs.Get().(*bytes.Buffer)
	buf.Reset()
	req.StringWrite(buf)
	n := buf.Len()
	sizeBufs.Put(buf)
	return n
}

// fitTransport applies RFC 3261 18.1.1 to a request about to be sent: one
// over UDP larger than 1,300 bytes is switched to TCP, for this request
// only, when its destination's policy allows it; its top Via then says TCP
// (18.1.1: "the value in the top Via MUST be changed"). The dialog keeps
// its transport, Contact included. It reports whether it switched.
func (a *Agent) fitTransport(req *gosip.Request) bool {
	if !strings.EqualFold(req.Transport(), "udp") {
		return false
	}
	if messageSize(req) <= udpSizeLimit {
		return false
	}
	host, _, err := net.SplitHostPort(req.Destination())
	if err != nil || a.largeOver(host) != LargeOverTCP {
		a.largeSent[1].Add(1)
		return false
	}
	a.setRequestTransport(req, "TCP")
	return true
}

// setRequestTransport makes req travel on transport: the message's
// transport, its top Via and (for UDP) the listening socket as its source.
func (a *Agent) setRequestTransport(req *gosip.Request, transport string) {
	req.SetTransport(transport)
	if v := req.Via(); v != nil {
		v.Transport = transport
		v.Port = a.portFor(transport)
	}
	req.Laddr = gosip.Addr{}
	a.prepare(req)
}

// transact starts a client transaction for req, after fitting its transport
// to its size. A request switched to TCP whose connection is refused is
// sent as a large UDP datagram after all (RFC 3261 18.1.1). A request that
// cannot be sent is counted and logged (its caller fails the transaction).
func (a *Agent) transact(ctx context.Context, req *gosip.Request) (gosip.ClientTransaction, error) {
	// sipgo v1.7.3 uses ctx only to set up the connection; the transaction
	// it returns does not depend on it.
	ctx, cancel := a.connectContext(ctx)
	defer cancel()
	switched := a.fitTransport(req)
	a.prepare(req)
	tx, err := a.client.TransactionRequest(ctx, req, noBuild)
	if err != nil && switched && failReason(err) == failConnect {
		a.log.Debug("sip: TCP refused for a large request; sending it as a large UDP datagram",
			callIDField(req), zap.String("method", string(req.Method)), zap.Error(err))
		a.setRequestTransport(req, "UDP")
		switched = false
		a.largeSent[1].Add(1)
		tx, err = a.client.TransactionRequest(ctx, req, noBuild)
	}
	if err != nil {
		a.sendFailure(nil, string(req.Method), err, callIDField(req), zap.String("transport", req.Transport()), zap.String("destination", req.Destination()))
		return nil, err
	}
	if switched {
		a.largeSent[0].Add(1)
	}
	return tx, nil
}

// connectContext is ctx bounded by connectTimeout and by the agent's Close.
func (a *Agent) connectContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	stop := context.AfterFunc(a.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// write sends a request outside any transaction (an ACK to a 2xx), fitted
// to its size like transact.
func (a *Agent) write(req *gosip.Request) error {
	switched := a.fitTransport(req)
	a.prepare(req)
	err := a.client.WriteRequest(req, noBuild)
	if err != nil && switched && failReason(err) == failConnect {
		a.setRequestTransport(req, "UDP")
		switched = false
		a.largeSent[1].Add(1)
		err = a.client.WriteRequest(req, noBuild)
	}
	if err != nil {
		a.sendFailure(nil, string(req.Method), err, callIDField(req), zap.String("transport", req.Transport()))
		return err
	}
	if switched {
		a.largeSent[0].Add(1)
	}
	return nil
}

// prepare sets the local address so UDP requests leave from the listening
// socket (peers see one address for callctl).
func (a *Agent) prepare(req *gosip.Request) {
	if strings.EqualFold(req.Transport(), "udp") && a.udpLocal.IP != nil {
		a.udpLocal.Copy(&req.Laddr)
	}
}

// portFor is the port callctl listens on for transport (the TLS listener
// has its own).
func (a *Agent) portFor(transport string) int {
	if strings.EqualFold(transport, "tls") && a.tlsPort != 0 {
		return a.tlsPort
	}
	return a.port
}

// reliable reports whether transport is a stream (RFC 3261 17: no
// retransmissions of its own).
func reliable(transport string) bool {
	return strings.EqualFold(transport, "tcp") || strings.EqualFold(transport, "tls")
}

// via returns a fresh top Via for a request callctl sends.
func (a *Agent) via(transport string) *gosip.ViaHeader {
	return &gosip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       strings.ToUpper(transport),
		Host:            a.host,
		Port:            a.portFor(transport),
		Params:          gosip.HeaderParams{{K: "branch", V: gosip.GenerateBranch()}, {K: "rport", V: ""}},
	}
}

// contact is callctl's Contact for dialogs on the given transport: on TCP
// and TLS it names the transport (RFC 3261 19.1.1), on TLS with the TLS
// listener's port.
func (a *Agent) contact(transport string) *gosip.ContactHeader {
	u := gosip.Uri{Scheme: "sip", User: "callctl", Host: a.host, Port: a.portFor(transport)}
	if reliable(transport) {
		u.UriParams = gosip.HeaderParams{{K: "transport", V: strings.ToLower(transport)}}
	}
	return &gosip.ContactHeader{Address: u}
}

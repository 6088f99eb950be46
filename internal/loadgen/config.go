package loadgen

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Config describes one run of the generator. Zero values take the defaults
// documented on each field.
type Config struct {
	// Target is the SIP host:port the caller side sends its INVITEs to:
	// callctl, another B2BUA, or a UAS (see TargetIsUAS).
	Target string
	// TargetIsUAS says the target answers the calls itself, like
	// `sipp -sn uas -rtp_echo`: the callee side is not started and the RTP
	// the target echoes back is measured as one stream through it.
	TargetIsUAS bool
	// Loopback runs RTP only, with no SIP and no target: each "call" is a
	// pair of streams between the generator's two sides. It measures the
	// generator itself, the baseline of the latency and CPU figures.
	Loopback bool
	// UASListen is the host:port the callee side listens on: where the
	// target sends the calls on (callctl's trunk.address). Default
	// "127.0.0.1:0", a free port (see Generator.UASAddr).
	UASListen string
	// IP is the local IPv4 address of the SIP and RTP sockets; default the
	// UASListen host, else 127.0.0.1.
	IP string

	// Calls is the number of calls to place; 0 means as many as Duration
	// allows. One of Calls and Duration must be set.
	Calls int
	// Duration is how long new calls are placed; 0 means until Calls.
	Duration time.Duration
	// Rate is new calls per second; default 10.
	Rate float64
	// Concurrency caps the calls up at once; a new call waits for one to
	// end. 0 means no cap.
	Concurrency int
	// Hold is how long a call lasts from its 200 OK to its BYE; default 5 s.
	Hold time.Duration
	// RingTime is how long the callee side rings (180) before it answers
	// (200); default 0.
	RingTime time.Duration
	// SetupTimeout ends a call that got no final answer to its INVITE in
	// this time (RFC 3261 Timer B); default 32 s.
	SetupTimeout time.Duration
	// Caller is the caller's number (From user); each call dials its own
	// number, Prefix followed by the call's index.
	Caller string
	// Prefix starts every dialled number; default "7".
	Prefix string

	// RTP streams PCMU both ways for the length of each call.
	RTP bool
	// MediaSockets is the number of shared RTP sockets per side; default 2.
	MediaSockets int
	// Drain is how long RTP stops before the BYE, so that packets in
	// flight arrive before the call is torn down; default 200 ms.
	Drain time.Duration
	// DTMF are keys (0-9, *, #, A-D) the caller sends as RFC 4733 events in
	// its RTP, starting DTMFAt after the answer (default 1 s, or Hold/3 if
	// shorter); the callee side counts the events it receives.
	DTMF   string
	DTMFAt time.Duration

	// Extensions negotiates RFC 3262 reliable provisionals and RFC 4028
	// session timers on both legs, as Asterisk with 100rel=required and
	// session-timers=originate does: the caller's INVITE says Require:
	// 100rel, Supported: timer and Session-Expires (PRACKing the reliable
	// 18x it gets); the callee side answers an INVITE that supports 100rel
	// with a reliable 180, waits for its PRACK, and puts Session-Expires
	// and Require: timer in its 200.
	Extensions bool

	// API enables per-call operations through callctl's HTTP API.
	API APIConfig

	// Progress receives one line per second while the run goes on; nil
	// means none.
	Progress io.Writer
}

// APIConfig is how the generator reaches callctl's HTTP API, and what it
// does there per call.
type APIConfig struct {
	// URL is the API base URL, e.g. http://127.0.0.1:8080. Empty: no API.
	URL string
	// Token is a bearer token with the privileges the operations need.
	Token string
	// HoldUnhold holds each call a third into its hold time and unholds it
	// at two thirds (sessions.hold).
	HoldUnhold bool
	// Listeners is the number of WebRTC listen-in clients (pion) attached
	// to each call through POST /api/v1/sessions/{id}/listen
	// (sessions.listen). If the API answers 501, listeners are skipped and
	// the result says so.
	Listeners int
}

// withDefaults checks c and fills its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Loopback {
		c.Target, c.TargetIsUAS, c.RTP, c.DTMF = "127.0.0.1:9", false, true, ""
		if c.API.HoldUnhold || c.API.Listeners > 0 {
			return c, errors.New("loadgen: Config.Loopback has no target to call the API of")
		}
	}
	if c.Target == "" {
		return c, errors.New("loadgen: Config.Target is empty; want the SIP host:port to call, e.g. 127.0.0.1:5070")
	}
	if _, err := netip.ParseAddrPort(c.Target); err != nil {
		return c, fmt.Errorf("loadgen: Config.Target %q: want an IPv4 host:port such as 127.0.0.1:5070", c.Target)
	}
	if c.UASListen == "" {
		c.UASListen = "127.0.0.1:0"
	}
	uas, err := netip.ParseAddrPort(c.UASListen)
	if err != nil || !uas.Addr().Is4() {
		return c, fmt.Errorf("loadgen: Config.UASListen %q: want an IPv4 host:port such as 127.0.0.1:5060", c.UASListen)
	}
	if c.IP == "" {
		c.IP = uas.Addr().String()
	}
	if ip, err := netip.ParseAddr(c.IP); err != nil || !ip.Is4() {
		return c, fmt.Errorf("loadgen: Config.IP %q: want an IPv4 address", c.IP)
	}
	if c.Calls < 0 || c.Duration < 0 || (c.Calls == 0 && c.Duration == 0) {
		return c, errors.New("loadgen: set Config.Calls (number of calls) or Config.Duration (how long to place calls), or both")
	}
	if c.Rate == 0 {
		c.Rate = 10
	}
	if c.Rate < 0 || c.Concurrency < 0 || c.Hold < 0 || c.RingTime < 0 {
		return c, errors.New("loadgen: Config.Rate, Concurrency, Hold and RingTime must not be negative")
	}
	if c.Hold == 0 {
		c.Hold = 5 * time.Second
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = 32 * time.Second
	}
	if c.Caller == "" {
		c.Caller = "5000"
	}
	if c.Prefix == "" {
		c.Prefix = "7"
	}
	if c.MediaSockets <= 0 {
		c.MediaSockets = 2
	}
	if c.Drain == 0 {
		c.Drain = 200 * time.Millisecond
	}
	for _, k := range c.DTMF {
		if _, ok := dtmfCode(k); !ok {
			return c, fmt.Errorf("loadgen: Config.DTMF %q: key %q is not one of 0-9 * # A-D", c.DTMF, k)
		}
	}
	if c.DTMF != "" && !c.RTP {
		return c, errors.New("loadgen: Config.DTMF needs RTP: DTMF is sent in the RTP stream (RFC 4733)")
	}
	if c.DTMFAt == 0 {
		c.DTMFAt = min(time.Second, c.Hold/3)
	}
	if (c.API.HoldUnhold || c.API.Listeners > 0) && c.API.URL == "" {
		return c, errors.New("loadgen: API operations (hold/unhold, listeners) need Config.API.URL")
	}
	if c.TargetIsUAS && (c.API.HoldUnhold || c.API.Listeners > 0) {
		return c, errors.New("loadgen: API operations need callctl as the target, not a UAS")
	}
	return c, nil
}

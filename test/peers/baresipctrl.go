package peers

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Baresip event types (ctrl_tcp "type"), the ones tests wait for.
const (
	EventCallIncoming    = "CALL_INCOMING"
	EventCallRinging     = "CALL_RINGING"
	EventCallProgress    = "CALL_PROGRESS"
	EventCallEstablished = "CALL_ESTABLISHED"
	EventCallClosed      = "CALL_CLOSED"
	EventCallRTPEstab    = "CALL_RTPESTAB"
	EventCallRTCP        = "CALL_RTCP"
)

// commandTimeout bounds how long a command waits for baresip's response.
const commandTimeout = 5 * time.Second

// BaresipEvent is one event from baresip's ctrl_tcp module, e.g.
// {"event":true,"type":"CALL_ESTABLISHED","class":"call","accountaor":"sip:a@...",
// "direction":"outgoing","peeruri":"sip:b@...","id":"...","param":"sip:b@..."}.
type BaresipEvent struct {
	Type       string `json:"type"`
	Class      string `json:"class"`
	AccountAOR string `json:"accountaor"`
	Direction  string `json:"direction"` // "incoming" or "outgoing"
	PeerURI    string `json:"peeruri"`
	ID         string `json:"id"` // call id (the SIP Call-ID)
	// Param is the event's argument: the peer URI, or for CALL_CLOSED the
	// reason ("Connection reset by peer", "Busy Here", ...).
	Param string `json:"param"`
	// RTCPStats is set on CALL_RTCP events.
	RTCPStats *RTCPStats `json:"rtcp_stats,omitempty"`
	// Time is when the event was read.
	Time time.Time `json:"-"`
	// Raw is the event as received.
	Raw json.RawMessage `json:"-"`
}

// RTCPStats are the RTCP statistics baresip reports in CALL_RTCP events
// (libre's struct rtcp_stats). They come from RTCP reports, every ~5 s, so
// they lag; AudioStats counts RTP directly.
type RTCPStats struct {
	Tx struct {
		Sent   uint32 `json:"sent"` // RTP packets sent
		Lost   int    `json:"lost"` // packets the peer reported lost
		Jitter uint32 `json:"jit"`  // µs
	} `json:"tx"`
	Rx struct {
		Sent   uint32 `json:"sent"` // RTP packets received
		Lost   int    `json:"lost"`
		Jitter uint32 `json:"jit"`
	} `json:"rx"`
	RTT uint32 `json:"rtt"` // µs
}

// AudioStats are the RTP counters of the current call's audio stream, read
// from baresip's audio_debug command (libre's RTCP session debug: packets
// this side sent, and per remote source the packets received and lost).
type AudioStats struct {
	TxPackets uint64 // RTP packets sent
	TxOctets  uint64 // RTP payload octets sent
	RxPackets uint64 // RTP packets received, over all remote sources
	RxLost    int64  // packets missing from received sequence numbers
}

// BaresipCtrl is a client of baresip's ctrl_tcp module: netstring-framed JSON
// commands and responses, and events on the same connection. baresip keeps
// one control connection at a time (a new one replaces the old), so a
// process has one BaresipCtrl.
type BaresipCtrl struct {
	conn net.Conn
	done chan struct{} // closed when the reader has ended

	cmdMu sync.Mutex // one command in flight: responses carry our token

	mu      sync.Mutex
	token   int
	pending map[string]chan ctrlResponse
	events  []BaresipEvent
	taken   []bool        // events handed out by WaitEvent
	changed chan struct{} // closed and replaced whenever events grow or the reader ends
	readErr error
}

type ctrlResponse struct {
	Response bool   `json:"response"`
	OK       bool   `json:"ok"`
	Data     string `json:"data"`
	Token    string `json:"token"`
}

// DialBaresipCtrl connects to a ctrl_tcp port, retrying until timeout while
// baresip starts.
func DialBaresipCtrl(addr string, timeout time.Duration) (*BaresipCtrl, error) {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c := &BaresipCtrl{
				conn:    conn,
				done:    make(chan struct{}),
				pending: make(map[string]chan ctrlResponse),
				changed: make(chan struct{}),
			}
			go c.read()
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("baresip ctrl_tcp %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close ends the connection and waits for the reader to stop.
func (c *BaresipCtrl) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// Command sends a command with its parameters (e.g. "dial",
// "sip:bob@127.0.0.1:5062") and returns the response text. A response with
// ok=false is an error carrying that text.
func (c *BaresipCtrl) Command(command, params string) (string, error) {
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()

	c.mu.Lock()
	if c.readErr != nil {
		err := c.readErr
		c.mu.Unlock()
		return "", fmt.Errorf("baresip %s: connection closed: %w", command, err)
	}
	c.token++
	token := "callctl-test-" + strconv.Itoa(c.token)
	ch := make(chan ctrlResponse, 1)
	c.pending[token] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, token)
		c.mu.Unlock()
	}()

	msg, err := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if err != nil {
		return "", err
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(commandTimeout))
	if _, err := fmt.Fprintf(c.conn, "%d:%s,", len(msg), msg); err != nil {
		return "", fmt.Errorf("baresip %s: %w", command, err)
	}
	timer := time.NewTimer(commandTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if !r.OK {
			return r.Data, fmt.Errorf("baresip %s %q refused: %s", command, params, r.Data)
		}
		return r.Data, nil
	case <-c.done:
		return "", fmt.Errorf("baresip %s: connection closed: %w", command, c.readErr)
	case <-timer.C:
		return "", fmt.Errorf("baresip %s: no response in %v", command, commandTimeout)
	}
}

// Dial calls uri.
func (c *BaresipCtrl) Dial(uri string) error { _, err := c.Command("dial", uri); return err }

// Accept answers the incoming call (answer mode manual).
func (c *BaresipCtrl) Accept() error { _, err := c.Command("accept", ""); return err }

// Hangup ends the current call (BYE, or CANCEL while it rings).
func (c *BaresipCtrl) Hangup() error { _, err := c.Command("hangup", ""); return err }

// Hold puts the current call on hold (re-INVITE with a=sendonly).
func (c *BaresipCtrl) Hold() error { _, err := c.Command("hold", ""); return err }

// Resume takes the current call off hold (re-INVITE with a=sendrecv).
func (c *BaresipCtrl) Resume() error { _, err := c.Command("resume", ""); return err }

// ListCalls returns baresip's list of active calls, as text.
func (c *BaresipCtrl) ListCalls() (string, error) { return c.Command("listcalls", "") }

// AudioStats reads the RTP counters of the current call's audio stream. It
// fails when there is no call.
func (c *BaresipCtrl) AudioStats() (AudioStats, error) {
	text, err := c.Command("audio_debug", "")
	if err != nil {
		return AudioStats{}, err
	}
	return parseAudioDebug(text)
}

var (
	reTx   = regexp.MustCompile(`TX: packets=(\d+), octets=(\d+)`)
	reRcvd = regexp.MustCompile(`psent=\d+ rcvd=(\d+)`)
	reLost = regexp.MustCompile(`member [0-9a-fx]+: lost=(-?\d+)`)
)

// parseAudioDebug reads libre's RTCP session debug inside baresip 1.0's
// audio_debug output:
//
//	----- RTCP Session: -----
//	  member 0x62949447: lost=0 Jitter=0.0ms RTT=0.0ms
//	                 IP=127.0.0.1:25132 psent=0 rcvd=150
//	  TX: packets=150, octets=24000
func parseAudioDebug(text string) (AudioStats, error) {
	var s AudioStats
	m := reTx.FindStringSubmatch(text)
	if m == nil {
		return s, fmt.Errorf("baresip audio_debug: no \"TX: packets=\" line (no call?): %q", text)
	}
	s.TxPackets, _ = strconv.ParseUint(m[1], 10, 64)
	s.TxOctets, _ = strconv.ParseUint(m[2], 10, 64)
	for _, m := range reRcvd.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		s.RxPackets += n
	}
	for _, m := range reLost.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		s.RxLost += n
	}
	return s, nil
}

// Events returns every event received so far.
func (c *BaresipCtrl) Events() []BaresipEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]BaresipEvent(nil), c.events...)
}

// WaitEvent returns the earliest event of type typ not returned by an
// earlier WaitEvent, waiting up to timeout for one to arrive.
func (c *BaresipCtrl) WaitEvent(typ string, timeout time.Duration) (BaresipEvent, error) {
	return c.WaitEventFunc(func(e BaresipEvent) bool { return e.Type == typ }, typ, timeout)
}

// WaitEventFunc is WaitEvent with a predicate; what names it in errors.
func (c *BaresipCtrl) WaitEventFunc(match func(BaresipEvent) bool, what string, timeout time.Duration) (BaresipEvent, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		for i, e := range c.events {
			if !c.taken[i] && match(e) {
				c.taken[i] = true
				c.mu.Unlock()
				return e, nil
			}
		}
		changed, readErr := c.changed, c.readErr
		seen := make([]string, len(c.events))
		for i, e := range c.events {
			seen[i] = e.Type
		}
		c.mu.Unlock()
		if readErr != nil {
			return BaresipEvent{}, fmt.Errorf("baresip event %s: connection closed (events so far %v): %w", what, seen, readErr)
		}
		select {
		case <-changed:
		case <-timer.C:
			return BaresipEvent{}, fmt.Errorf("baresip event %s: none in %v (events so far %v)", what, timeout, seen)
		}
	}
}

// read reads netstrings until the connection ends, handing responses to
// their commands and keeping events.
func (c *BaresipCtrl) read() {
	defer close(c.done)
	r := bufio.NewReader(c.conn)
	var err error
	for {
		var msg []byte
		if msg, err = readNetstring(r); err != nil {
			break
		}
		var head struct {
			Event    bool `json:"event"`
			Response bool `json:"response"`
		}
		if json.Unmarshal(msg, &head) != nil {
			continue
		}
		switch {
		case head.Response:
			var resp ctrlResponse
			if json.Unmarshal(msg, &resp) != nil {
				continue
			}
			c.mu.Lock()
			if ch, ok := c.pending[resp.Token]; ok {
				ch <- resp
			}
			c.mu.Unlock()
		case head.Event:
			var e BaresipEvent
			if json.Unmarshal(msg, &e) != nil {
				continue
			}
			e.Time = time.Now()
			e.Raw = append(json.RawMessage(nil), msg...)
			c.mu.Lock()
			c.events = append(c.events, e)
			c.taken = append(c.taken, false)
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}
	}
	if errors.Is(err, net.ErrClosed) {
		err = io.EOF
	}
	c.mu.Lock()
	c.readErr = err
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// readNetstring reads one "LEN:DATA," frame.
func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(head[:len(head)-1])
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("baresip ctrl_tcp: bad netstring length %q", head)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, fmt.Errorf("baresip ctrl_tcp: netstring not ended by ','")
	}
	return buf[:n], nil
}

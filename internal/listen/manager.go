package listen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Why a listener ended, as OnEnded reports it.
const (
	ReasonStopped      = "stopped"         // Stop
	ReasonCallEnded    = "call ended"      // StopSession
	ReasonICEFailed    = "ICE failed"      // connectivity lost for longer than Config.ICETimeout
	ReasonPeerClosed   = "DTLS closed"     // the browser closed the connection
	ReasonNotConnected = "ICE timeout"     // never connected within Config.ConnectTimeout
	ReasonShutdown     = "callctl stopped" // Manager.Close
)

// Defaults for the zero Config values.
const (
	DefaultICETimeout     = 10 * time.Second
	DefaultConnectTimeout = 20 * time.Second
)

// Config says where listeners' ICE runs.
type Config struct {
	// ICEIPs are the local addresses whose host candidates are offered to
	// browsers. Empty means every address of the machine except loopback;
	// a loopback address (127.0.0.1, ::1) must be listed to be used.
	ICEIPs []string
	// NAT1To1IPs, if set, are written into the candidates instead of the
	// local addresses: for a server behind a 1:1 NAT (a cloud instance's
	// public address). One per address family.
	NAT1To1IPs []string
	// PortMin and PortMax bound the UDP ports of listeners' candidates;
	// zero means any ephemeral port. Each listener takes one port per
	// address, unless SinglePort is set.
	PortMin, PortMax uint16
	// SinglePort, if not zero, serves every listener on this one UDP port
	// (ICE UDP mux; connections are told apart by ICE username), on each
	// address of ICEIPs: one port to open in a firewall.
	SinglePort int
	// ICETimeout is how long a connected listener may hear nothing from
	// its browser (media, RTCP or ICE keepalives) before it ends with
	// ReasonICEFailed; half of it the connection spends "disconnected".
	// Zero means DefaultICETimeout.
	ICETimeout time.Duration
	// ConnectTimeout is how long a listener may take to connect after its
	// answer before it ends with ReasonNotConnected. Zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Log receives listener starts and ends, and pion's own logs at debug
	// level; nil means no logging. Nothing is logged per packet.
	Log *zap.Logger
}

// Track is one party of the call as a listener hears it: the media
// endpoint facing the party, whose received RTP is forked, and the audio
// codec the party sends there, as the party's SDP negotiated it.
type Track struct {
	Endpoint *media.Endpoint
	// Codec is the encoding name: "PCMU", "PCMA", "G722" or "opus"
	// (case-insensitive).
	Codec string
	// PayloadType is the party's payload type for Codec; packets of any
	// other payload type are not forwarded.
	PayloadType uint8
	// ClockRate is the codec's RTP clock rate; zero means the codec's own
	// (8000 Hz, Opus 48000 Hz).
	ClockRate uint32
	// TelephoneEvent is the party's telephone-event payload type (RFC 4733),
	// or -1: never forwarded, whatever else the track is told.
	TelephoneEvent int
}

// Info describes a listener.
type Info struct {
	ID        string
	SessionID string
	Client    string
	Since     time.Time // when Start answered
	Connected bool      // ICE and DTLS are up
}

// Manager runs the listeners of every call. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg  Config
	log  *zap.Logger
	mux  ice.UDPMux // the single port's mux, or nil
	ips  map[netip.Addr]bool
	nets []webrtc.NetworkType
	loop bool // a loopback address is configured

	mu        sync.Mutex
	closed    bool
	byID      map[string]*listener
	bySession map[string]map[string]*listener
	onEnded   func(listenID, sessionID, client, reason string)
	// enders counts goroutines of the manager's that end a listener on
	// its own account (connection lost, connect timeout); Close waits.
	enders sync.WaitGroup
}

// NewManager checks cfg and, for SinglePort, opens the shared UDP port.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.ICETimeout <= 0 {
		cfg.ICETimeout = DefaultICETimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	m := &Manager{cfg: cfg, log: cfg.Log, byID: map[string]*listener{}, bySession: map[string]map[string]*listener{}}
	var v4, v6 bool
	if len(cfg.ICEIPs) > 0 {
		m.ips = map[netip.Addr]bool{}
		for _, s := range cfg.ICEIPs {
			a, err := netip.ParseAddr(s)
			if err != nil || a.IsUnspecified() || a.Zone() != "" {
				return nil, fmt.Errorf("listen: ICE address %q is not an IP address of this host: %w", s, ErrInvalidArgument)
			}
			a = a.Unmap()
			m.ips[a] = true
			m.loop = m.loop || a.IsLoopback()
			v4, v6 = v4 || a.Is4(), v6 || a.Is6()
		}
	} else {
		v4, v6 = true, true
	}
	if v4 {
		m.nets = append(m.nets, webrtc.NetworkTypeUDP4)
	}
	if v6 {
		m.nets = append(m.nets, webrtc.NetworkTypeUDP6)
	}
	for _, s := range cfg.NAT1To1IPs {
		if a, err := netip.ParseAddr(s); err != nil || a.IsUnspecified() {
			return nil, fmt.Errorf("listen: NAT 1:1 address %q is not an IP address: %w", s, ErrInvalidArgument)
		}
	}
	if cfg.PortMax < cfg.PortMin || (cfg.PortMin == 0) != (cfg.PortMax == 0) {
		return nil, fmt.Errorf("listen: port range %d-%d: want 0 < min <= max, or both 0: %w", cfg.PortMin, cfg.PortMax, ErrInvalidArgument)
	}
	if cfg.SinglePort < 0 || cfg.SinglePort > 65535 {
		return nil, fmt.Errorf("listen: single port %d: want 1-65535, or 0 for none: %w", cfg.SinglePort, ErrInvalidArgument)
	}
	if cfg.SinglePort != 0 {
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithNetworks(iceNetworks(m.nets)...),
			ice.UDPMuxFromPortWithLogger(pionLogs{log: m.log}.NewLogger("udpmux"))}
		if m.ips != nil {
			opts = append(opts, ice.UDPMuxFromPortWithIPFilter(m.allowed))
		}
		if m.loop {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.SinglePort, opts...)
		if err != nil {
			return nil, fmt.Errorf("listen: single UDP port %d: %w", cfg.SinglePort, err)
		}
		m.mux = mux
	}
	return m, nil
}

func iceNetworks(nets []webrtc.NetworkType) []ice.NetworkType {
	out := make([]ice.NetworkType, 0, len(nets))
	for _, n := range nets {
		switch n {
		case webrtc.NetworkTypeUDP4:
			out = append(out, ice.NetworkTypeUDP4)
		case webrtc.NetworkTypeUDP6:
			out = append(out, ice.NetworkTypeUDP6)
		}
	}
	return out
}

// allowed is the ICE address filter: the configured addresses, or any.
func (m *Manager) allowed(ip net.IP) bool {
	if m.ips == nil {
		return true
	}
	a, ok := netip.AddrFromSlice(ip)
	return ok && m.ips[a.Unmap()]
}

// settingEngine is pion's configuration for one listener's PeerConnection.
func (m *Manager) settingEngine(log *zap.Logger) (webrtc.SettingEngine, error) {
	var se webrtc.SettingEngine
	se.LoggerFactory = pionLogs{log: log}
	se.SetNetworkTypes(m.nets)
	// Host candidates only, no mDNS: the browser's checks reach a host
	// candidate and teach pion its address (peer-reflexive, RFC 8445
	// §7.3.1.3), whether or not its own candidates are .local names.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(m.loop)
	if m.ips != nil {
		se.SetIPFilter(m.allowed)
	}
	if len(m.cfg.NAT1To1IPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: m.cfg.NAT1To1IPs, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return se, fmt.Errorf("listen: NAT 1:1 addresses %v: %w", m.cfg.NAT1To1IPs, err)
		}
	}
	if m.mux != nil {
		se.SetICEUDPMux(m.mux)
	} else if m.cfg.PortMin != 0 {
		if err := se.SetEphemeralUDPPortRange(m.cfg.PortMin, m.cfg.PortMax); err != nil {
			return se, fmt.Errorf("listen: port range %d-%d: %w", m.cfg.PortMin, m.cfg.PortMax, err)
		}
	}
	disconnected := m.cfg.ICETimeout / 2
	se.SetICETimeouts(disconnected, m.cfg.ICETimeout-disconnected, min(2*time.Second, disconnected/2))
	return se, nil
}

// OnEnded sets f to be called once for every listener that Start returned
// and that has ended, with the reason (Reason* constants), after it has been
// released. f runs on the goroutine that ended the listener: Stop's,
// StopSession's or Close's caller, or one of the manager's own; it must not
// wait for any of them (for example for the goroutine that calls
// StopSession). A later call replaces f.
func (m *Manager) OnEnded(f func(listenID, sessionID, client, reason string)) {
	m.mu.Lock()
	m.onEnded = f
	m.mu.Unlock()
}

// Start answers a browser's offer (SDP, RFC 8829 JSEP) for listening to a
// call: the offer must have two audio sections the browser receives on
// (recvonly or sendrecv), the first for the caller, the second for the
// callee, each listing the party's codec. The answer's tracks carry media
// stream ids "caller" and "callee" (a=msid); its ICE candidates are all in
// it (no trickling), so it can go back in one HTTP response.
//
// client names who listens, for OnEnded and Info. ctx bounds the
// negotiation (candidate gathering). Start fails with ErrCallEnded if a
// party's endpoint is closed, or StopSession(sessionID) runs meanwhile; so
// a caller that calls StopSession after closing the call's endpoints never
// leaves a listener behind.
func (m *Manager) Start(ctx context.Context, sessionID, client, offerSDP string, caller, callee Track) (listenID, answerSDP string, err error) {
	if sessionID == "" {
		return "", "", fmt.Errorf("listen: empty session id: %w", ErrInvalidArgument)
	}
	specs := [2]codecSpec{}
	for i, t := range []Track{caller, callee} {
		spec, err := checkTrack(parties[i], t)
		if err != nil {
			return "", "", err
		}
		specs[i] = spec
	}
	offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}
	if err := checkOffer(offerSDP, specs); err != nil {
		return "", "", err
	}

	l, err := m.newListener(sessionID, client, specs)
	if err != nil {
		return "", "", err
	}
	answer, err := l.negotiate(ctx, offer, [2]Track{caller, callee})
	if err == nil {
		err = m.confirm(l)
	}
	if err != nil {
		l.end(ReasonStopped, true) // not started: OnEnded is not called
		return "", "", err
	}
	l.log.Info("listener started", zap.Strings("codecs", []string{specs[0].name, specs[1].name}))
	return l.id, answer, nil
}

// parties names the two tracks, in the order of the offer's sections.
var parties = [2]string{"caller", "callee"}

// checkTrack validates a Track and returns its codec.
func checkTrack(party string, t Track) (codecSpec, error) {
	if t.Endpoint == nil {
		return codecSpec{}, fmt.Errorf("listen: %s track has no endpoint: %w", party, ErrInvalidArgument)
	}
	spec, err := lookupCodec(t.Codec)
	if err != nil {
		return codecSpec{}, fmt.Errorf("listen: %s track: %w", party, err)
	}
	if t.PayloadType > 127 || int(t.PayloadType) == t.TelephoneEvent || t.PayloadType == comfortNoisePT {
		return codecSpec{}, fmt.Errorf("listen: %s track: payload type %d for %s: want 0-127, neither comfort noise (13) nor telephone-event (%d): %w",
			party, t.PayloadType, spec.name, t.TelephoneEvent, ErrInvalidArgument)
	}
	if t.ClockRate != 0 {
		spec.clock = t.ClockRate
	}
	return spec, nil
}

// newListener creates the listener's PeerConnection and tracks and
// registers it under its session, not yet started.
func (m *Manager) newListener(sessionID, client string, specs [2]codecSpec) (*listener, error) {
	id := newID()
	log := m.log.With(zap.String("session", sessionID), zap.String("listen_id", id), zap.String("client", client))
	se, err := m.settingEngine(log)
	if err != nil {
		return nil, err
	}
	var me webrtc.MediaEngine
	registered := map[string]bool{}
	for _, s := range specs {
		if registered[s.name] {
			continue
		}
		registered[s.name] = true
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: s.cap, PayloadType: s.pt}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("listen: register %s: %w", s.name, err)
		}
	}
	// Sender reports let the browser relate the tracks' timestamps to
	// wall-clock time (RFC 3550 §6.4.1); nothing else is needed to send.
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("listen: RTCP reports: %w", err)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(ir))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("listen: new PeerConnection: %w", err)
	}
	l := &listener{id: id, sessionID: sessionID, client: client, m: m, log: log, pc: pc,
		done: make(chan struct{}), released: make(chan struct{})}
	for i, s := range specs {
		track, err := webrtc.NewTrackLocalStaticRTP(s.cap, parties[i], parties[i])
		if err == nil {
			l.senders[i], err = pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		}
		if err != nil {
			_ = pc.Close()
			return nil, fmt.Errorf("listen: %s track: %w", parties[i], err)
		}
		l.feeds[i] = newFeed(parties[i], track, s.name, &l.live)
		l.clocks[i] = s.clock
	}
	l.connectTimer = time.AfterFunc(m.cfg.ConnectTimeout, func() {
		if !l.live.Load() {
			m.endLater(l, ReasonNotConnected)
		}
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		l.connectTimer.Stop()
		_ = pc.Close()
		return nil, fmt.Errorf("listen: %w", ErrClosed)
	}
	m.byID[id] = l
	if m.bySession[sessionID] == nil {
		m.bySession[sessionID] = map[string]*listener{}
	}
	m.bySession[sessionID][id] = l
	return l, nil
}

// confirm marks a negotiated listener started, unless it ended meanwhile.
func (m *Manager) confirm(l *listener) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID[l.id] != l {
		switch l.endReason {
		case ReasonShutdown:
			return fmt.Errorf("listen: %w", ErrClosed)
		case ReasonCallEnded:
			return fmt.Errorf("listen: session %s: %w", l.sessionID, ErrCallEnded)
		default:
			return fmt.Errorf("listen: the connection ended before the answer was sent: %s", l.endReason)
		}
	}
	l.started = true
	l.since = time.Now()
	return nil
}

// forget unregisters l and reports whether Start had returned it.
func (m *Manager) forget(l *listener, reason string) (started bool, onEnded func(listenID, sessionID, client, reason string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l.endReason = reason
	if m.byID[l.id] == l {
		delete(m.byID, l.id)
		delete(m.bySession[l.sessionID], l.id)
		if len(m.bySession[l.sessionID]) == 0 {
			delete(m.bySession, l.sessionID)
		}
	}
	return l.started, m.onEnded
}

// endLater ends l from a goroutine of pion's or a timer's, which Close
// then waits for; nothing is done once Close has begun, which ends l itself.
func (m *Manager) endLater(l *listener, reason string) {
	if l.ending.Load() {
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.enders.Add(1)
	m.mu.Unlock()
	defer m.enders.Done()
	l.end(reason, false)
}

// Stop ends a listener (ReasonStopped) and returns once it is released.
func (m *Manager) Stop(listenID string) error {
	m.mu.Lock()
	l := m.byID[listenID]
	if l != nil && !l.started {
		l = nil // its id has not been handed out yet
	}
	m.mu.Unlock()
	if l == nil {
		return fmt.Errorf("listen: %q: %w", listenID, ErrNotFound)
	}
	l.end(ReasonStopped, true)
	return nil
}

// StopSession ends every listener of a call (ReasonCallEnded), those still
// starting included, and returns once they are released. Call it when the
// call ends, after closing its media endpoints.
func (m *Manager) StopSession(sessionID string) {
	m.mu.Lock()
	var ls []*listener
	for _, l := range m.bySession[sessionID] {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() { l.end(ReasonCallEnded, true) })
	}
	wg.Wait()
}

// Rebind makes a call's listeners hear party ("caller" or "callee") from a
// new endpoint: after callctl connected a transfer target itself, the
// target's endpoint replaces the transferor's. The codec must be the one
// the listeners were started with; if it is not, or the endpoint is closed,
// the listeners hear nothing more of that party and the error says why.
func (m *Manager) Rebind(sessionID, party string, t Track) error {
	i := slices.Index(parties[:], party)
	if i < 0 {
		return fmt.Errorf("listen: party %q: want caller or callee: %w", party, ErrInvalidArgument)
	}
	if _, err := checkTrack(party, t); err != nil {
		return err
	}
	m.mu.Lock()
	var ls []*listener
	for _, l := range m.bySession[sessionID] {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	var errs []error
	for _, l := range ls {
		if err := l.feeds[i].attach(t); err != nil && !errors.Is(err, errFeedClosed) {
			l.feeds[i].detach()
			errs = append(errs, fmt.Errorf("listener %s: %w", l.id, err))
		}
	}
	return errors.Join(errs...)
}

// Count returns how many listeners a call has (those Start returned and
// that have not ended).
func (m *Manager) Count(sessionID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, l := range m.bySession[sessionID] {
		if l.started {
			n++
		}
	}
	return n
}

// List describes a call's listeners, oldest first.
func (m *Manager) List(sessionID string) []Info {
	m.mu.Lock()
	var out []Info
	for _, l := range m.bySession[sessionID] {
		if l.started {
			out = append(out, l.info())
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int { return a.Since.Compare(b.Since) })
	return out
}

// Lookup describes one listener.
func (m *Manager) Lookup(listenID string) (Info, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.byID[listenID]; l != nil && l.started {
		return l.info(), true
	}
	return Info{}, false
}

// Close ends every listener (ReasonShutdown), waits until they are
// released, and closes the single port. Start fails afterwards.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	ls := make([]*listener, 0, len(m.byID))
	for _, l := range m.byID {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() { l.end(ReasonShutdown, true) })
	}
	wg.Wait()
	m.enders.Wait()
	if m.mux != nil {
		_ = m.mux.Close()
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

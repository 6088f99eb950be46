package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Options configure a Sim.
type Options struct {
	// CallctlSIP is callctl's SIP address, host:port on loopback; the PBX
	// sends its calls there over UDP.
	CallctlSIP string
	// PBXListen is the PBX's own SIP address (UDP), host:port on loopback:
	// callctl's trunk, where it sends the B legs. Empty means 127.0.0.1:0,
	// a free port; Sim.PBXAddr says which.
	PBXListen string
	// MaxCalls is how many calls the PBX's phones place at a time; 0 means
	// 3. Calls to phones (a transfer's new call) come on top.
	MaxCalls int
	// Log receives a line per call and its outcome; nil discards them.
	Log *zap.Logger
	// Seed, when not 0, makes the PBX's choices (who calls whom, who
	// answers, how long they talk) come from one repeatable sequence.
	Seed uint64

	// answerAll makes every idle phone answer (tests that need an answer).
	answerAll bool
}

// The simulation's pace. Phones answer after ringMin–ringMax; callers give
// up after patienceMin–patienceMax, longer than any answering phone rings,
// so only calls nobody answers are cancelled (or end at callctl's ring
// timeout, whichever comes first). Each party of an answered call means to
// hang up after talkMin–talkMax; the earlier one does.
const (
	ringMin, ringMax         = 1 * time.Second, 5 * time.Second
	busyMin, busyMax         = 300 * time.Millisecond, 1200 * time.Millisecond
	patienceMin, patienceMax = 6 * time.Second, 30 * time.Second
	talkMin, talkMax         = 20 * time.Second, 90 * time.Second
	pauseMin, pauseMax       = 1 * time.Second, 4 * time.Second

	// busyChance and noAnswerChance are the odds that an idle phone
	// answers a call with 486 or lets it ring; a phone already in a call
	// always answers 486.
	busyChance     = 0.10
	noAnswerChance = 0.15

	// hangupWait bounds each wait for callctl's answer while the phones
	// end their calls (BYE, CANCEL), so a stop never takes long.
	hangupWait = 3 * time.Second
)

// phone is one extension of the PBX.
type phone struct {
	number, name string
}

// phoneBook lists the PBX's phones: the 1xxx phones place the calls, the
// 2xxx phones take them; any phone answers a call to its number (a
// transfer's target, say).
var phoneBook = [...]phone{
	{"1001", "Alice Archer"}, {"1002", "Bob Baker"}, {"1003", "Carol Chen"},
	{"1004", "Dave Diaz"}, {"1005", "Erin Evans"}, {"1006", "Frank Fischer"},
	{"1007", "Grace Green"}, {"1008", "Heidi Hall"}, {"1009", "Ivan Ivanov"},
	{"2001", "Sales"}, {"2002", "Support"}, {"2003", "Billing"},
	{"2004", "Front Desk"}, {"2005", "Jane Jones"}, {"2006", "Ken Kato"},
	{"2007", "Liam Lopez"}, {"2008", "Mia Moreau"}, {"2009", "Noah Novak"},
}

func lookupPhone(number string) (phone, bool) {
	for _, p := range phoneBook {
		if p.number == number {
			return p, true
		}
	}
	return phone{}, false
}

// Stats count what the PBX's phones did since Start.
type Stats struct {
	// Placed counts INVITEs the phones sent to callctl; Answered those
	// answered with 2xx. Refused counts those answered with an error (486
	// busy, 480 ring timeout, ...) and Cancelled those the caller gave up.
	Placed, Answered, Refused, Cancelled uint64
	// Rang counts INVITEs callctl sent the PBX (B legs).
	Rang uint64
	// Transfers counts REFERs a phone accepted.
	Transfers uint64
	// PacketsSent and PacketsReceived count RTP packets of ended calls and
	// of live ones.
	PacketsSent, PacketsReceived uint64
}

// Sim is a running simulated PBX with its phones. Start one with Start; it
// runs until its context is cancelled or Stop is called.
type Sim struct {
	opts    Options
	log     *zap.Logger
	callctl sip.Uri // host and port of callctl's SIP
	host    string
	port    int

	ctx    context.Context
	cancel context.CancelFunc
	conn   net.PacketConn
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client

	mu       sync.Mutex
	stopping bool
	dialogs  map[string]*dialog // Call-ID + local tag → dialog
	inCall   map[string]int     // phone number → its dialogs and calls being placed
	streams  map[*stream]bool   // open streams, for Stats
	rnd      *rand.Rand         // guarded by mu: rand.Rand is not safe for concurrent use

	// wg counts the phones' goroutines (the call placers and each call
	// callctl sends the PBX); served and done close when the SIP listener
	// and then everything have stopped.
	wg     sync.WaitGroup
	served chan struct{}
	done   chan struct{}

	placed, answered, refused, cancelled, rang, transfers atomic.Uint64
	sentEnded, receivedEnded                              atomic.Uint64
}

// Start binds the PBX's SIP address and starts its phones calling callctl at
// opts.CallctlSIP. Both addresses must be on loopback. The simulation runs
// until ctx is cancelled or Stop is called.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	if opts.MaxCalls < 0 {
		return nil, fmt.Errorf("demo: MaxCalls %d: must be 0 (for 3) or more", opts.MaxCalls)
	}
	if opts.MaxCalls == 0 {
		opts.MaxCalls = 3
	}
	if opts.PBXListen == "" {
		opts.PBXListen = "127.0.0.1:0"
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	callctl, err := loopback("CallctlSIP", opts.CallctlSIP)
	if err != nil {
		return nil, err
	}
	if callctl.Port() == 0 {
		return nil, fmt.Errorf("demo: CallctlSIP %q: needs a port", opts.CallctlSIP)
	}
	listen, err := loopback("PBXListen", opts.PBXListen)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenPacket("udp", listen.String())
	if err != nil {
		return nil, fmt.Errorf("demo: PBXListen %s: %w", listen, err)
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()

	s := &Sim{
		opts:    opts,
		log:     opts.Log,
		callctl: sip.Uri{Scheme: "sip", Host: callctl.Addr().String(), Port: int(callctl.Port())},
		host:    local.Addr().String(),
		port:    int(local.Port()),
		conn:    conn,
		dialogs: map[string]*dialog{},
		inCall:  map[string]int{},
		streams: map[*stream]bool{},
		served:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s.rnd = rand.New(rand.NewPCG(seed, seed>>1|1))

	slogger := slog.New(slogHandler{s.log.Named("sipgo")})
	s.ua, err = sipgo.NewUA(sipgo.WithUserAgent("callctl-demo-pbx"), sipgo.WithUserAgentHostname(s.host),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(slogger)); err == nil {
		// Requests leave from the listening socket, so callctl sees one
		// address for the PBX, as it would a real one.
		s.client, err = sipgo.NewClient(s.ua, sipgo.WithClientLogger(slogger),
			sipgo.WithClientHostname(s.host), sipgo.WithClientPort(s.port),
			sipgo.WithClientConnectionAddr(local.String()))
	}
	if err != nil {
		s.ua.Close()
		conn.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	s.handleRequests()

	s.ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.served)
		if err := s.srv.ServeUDP(conn); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Debug("PBX SIP listener stopped", zap.Error(err))
		}
	}()
	for i := range opts.MaxCalls {
		// Stagger the first calls so they do not all ring at once.
		first := time.Duration(i)*700*time.Millisecond + s.between(0, 500*time.Millisecond)
		s.goOwned(func() { s.placeCalls(first) })
	}
	go s.shutdownWhenDone()
	s.log.Info("demo PBX started", zap.String("sip", s.PBXAddr()), zap.String("callctl", callctl.String()), zap.Int("max_calls", opts.MaxCalls))
	return s, nil
}

// loopback parses a host:port that must be on the loopback interface: the
// demo never sends a packet off the machine.
func loopback(field, hostport string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return ap, fmt.Errorf("demo: %s %q: want ip:port: %w", field, hostport, err)
	}
	if !ap.Addr().IsLoopback() {
		return ap, fmt.Errorf("demo: %s %q: the demo runs on loopback only (127.0.0.0/8, ::1)", field, hostport)
	}
	return ap, nil
}

// PBXAddr is the PBX's SIP address, host:port: callctl's trunk.
func (s *Sim) PBXAddr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Stop ends the simulation: callers cancel the calls still ringing, phones
// in a call hang up, and Stop returns once every goroutine of the Sim has
// returned. It may be called more than once.
func (s *Sim) Stop() {
	s.cancel()
	<-s.done
}

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	st := Stats{
		Placed: s.placed.Load(), Answered: s.answered.Load(), Refused: s.refused.Load(),
		Cancelled: s.cancelled.Load(), Rang: s.rang.Load(), Transfers: s.transfers.Load(),
		PacketsSent: s.sentEnded.Load(), PacketsReceived: s.receivedEnded.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for open := range s.streams {
		st.PacketsSent += open.sent.Load()
		st.PacketsReceived += open.received.Load()
	}
	return st
}

// shutdownWhenDone waits for the context's end, lets the phones finish
// their calls, then closes the SIP side.
func (s *Sim) shutdownWhenDone() {
	<-s.ctx.Done()
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.wg.Wait()
	s.ua.Close()
	s.conn.Close()
	<-s.served
	st := s.Stats()
	s.log.Info("demo PBX stopped", zap.Uint64("placed", st.Placed), zap.Uint64("answered", st.Answered),
		zap.Uint64("refused", st.Refused), zap.Uint64("cancelled", st.Cancelled), zap.Uint64("transfers", st.Transfers))
	close(s.done)
}

// track counts one more goroutine of the phones, unless the Sim is
// stopping (then it reports false and the caller must not start the work).
func (s *Sim) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.wg.Add(1)
	return true
}

// goOwned runs f on a goroutine of the Sim, unless it is stopping.
func (s *Sim) goOwned(f func()) bool {
	if !s.track() {
		return false
	}
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// between returns a random duration in [lo, hi).
func (s *Sim) between(lo, hi time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lo + time.Duration(s.rnd.Int64N(int64(hi-lo)))
}

// chance returns true with probability p.
func (s *Sim) chance(p float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rnd.Float64() < p
}

// sleep waits d or until the simulation stops; it reports whether the
// whole d passed.
func (s *Sim) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// placeCalls is one of the MaxCalls call placers: a call from a free 1xxx
// phone to a 2xxx phone, a pause, the next call, until the Sim stops.
func (s *Sim) placeCalls(pause time.Duration) {
	for s.sleep(pause) {
		from, to, ok := s.pickCall()
		if !ok {
			pause = time.Second
			continue
		}
		s.call(from, to, nil)
		s.release(from.number)
		pause = s.between(pauseMin, pauseMax)
	}
}

// pickCall chooses a caller among the idle 1xxx phones and marks it in a
// call, and a callee among the 2xxx phones, preferring idle ones (a busy
// one answers 486).
func (s *Sim) pickCall() (from phone, to string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var callers, idle, all []phone
	for _, p := range phoneBook {
		switch {
		case p.number[0] == '1' && s.inCall[p.number] == 0:
			callers = append(callers, p)
		case p.number[0] == '2':
			all = append(all, p)
			if s.inCall[p.number] == 0 {
				idle = append(idle, p)
			}
		}
	}
	if len(callers) == 0 {
		return phone{}, "", false
	}
	if len(idle) > 0 && s.rnd.Float64() > busyChance {
		all = idle
	}
	from = callers[s.rnd.IntN(len(callers))]
	s.inCall[from.number]++
	return from, all[s.rnd.IntN(len(all))].number, true
}

// reserve marks a phone in one more call; release undoes it.
func (s *Sim) reserve(number string) (busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	busy = s.inCall[number] > 0
	s.inCall[number]++
	return busy
}

func (s *Sim) release(number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inCall[number]--; s.inCall[number] <= 0 {
		delete(s.inCall, number)
	}
}

// addStream and closeStream keep the open streams, for Stats.
func (s *Sim) addStream(st *stream) {
	s.mu.Lock()
	s.streams[st] = true
	s.mu.Unlock()
}

func (s *Sim) closeStream(st *stream) {
	st.close()
	s.mu.Lock()
	delete(s.streams, st)
	s.sentEnded.Add(st.sent.Load())
	s.receivedEnded.Add(st.received.Load())
	s.mu.Unlock()
}

package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Generator plays both sides of calls through a target. New binds its
// sockets and starts its goroutines; Run places the calls; Close stops
// everything. A Generator runs once.
type Generator struct {
	cfg    Config
	ip     netip.Addr
	target netip.AddrPort
	runID  string
	table  *streamTable
	sched  *scheduler
	api    *apiClient

	uacConn  *net.UDPConn
	uacAddr  netip.AddrPort
	uasConn  *net.UDPConn // nil when the target is the UAS
	uasAddr  netip.AddrPort
	uacMedia []*mediaSocket
	uasMedia []*mediaSocket

	mu       sync.Mutex
	uacCalls map[string]*uacCall
	uasCalls map[string]*uasCall
	links    map[string]*uasCall // dialled number -> callee side of the call
	failures map[string]uint64   // caller-side failures by reason
	uasErrs  map[string]uint64   // callee-side problems by reason
	setup    *Histogram          // INVITE -> first 2xx, ns
	apiStats APIResult

	attempted, answered, ok, failed atomic.Uint64
	active, peak                    atomic.Int64
	uasCallsSeen                    atomic.Uint64
	ext                             extCounters // with Config.Extensions
	reinv                           reinviteCounters
	watch                           []watched // the calls of the last WatchResume

	calls   sync.WaitGroup // one per placed call, done when it is finished
	slots   chan struct{}  // concurrency cap
	workers sync.WaitGroup // readers and API goroutines
	started atomic.Bool
	closed  atomic.Bool
	stopAll chan struct{} // closed when Run's context ends: hang up now
	stopMu  sync.Once
}

// New checks cfg, binds the SIP and RTP sockets of both sides and starts
// their goroutines. Close releases them.
func New(cfg Config) (*Generator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	g := &Generator{
		cfg:      cfg,
		ip:       netip.MustParseAddr(cfg.IP),
		target:   netip.MustParseAddrPort(cfg.Target),
		runID:    hex.EncodeToString(id[:]),
		table:    newStreamTable(),
		uacCalls: map[string]*uacCall{},
		uasCalls: map[string]*uasCall{},
		links:    map[string]*uasCall{},
		failures: map[string]uint64{},
		uasErrs:  map[string]uint64{},
		setup:    NewHistogram(),
		stopAll:  make(chan struct{}),
	}
	if cfg.Concurrency > 0 {
		g.slots = make(chan struct{}, cfg.Concurrency)
	}
	if cfg.API.HoldUnhold || cfg.API.Listeners > 0 {
		g.api = newAPIClient(cfg.API)
	}
	fail := func(err error) (*Generator, error) {
		g.closeSockets()
		return nil, err
	}
	if g.uacConn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(g.ip, 0))); err != nil {
		return fail(fmt.Errorf("loadgen: caller SIP socket: %w", err))
	}
	g.uacAddr = g.uacConn.LocalAddr().(*net.UDPAddr).AddrPort()
	_ = setSocketBuffers(g.uacConn, 4<<20)
	if !cfg.TargetIsUAS {
		if g.uasConn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(cfg.UASListen))); err != nil {
			return fail(fmt.Errorf("loadgen: callee SIP socket %s: %w", cfg.UASListen, err))
		}
		g.uasAddr = g.uasConn.LocalAddr().(*net.UDPAddr).AddrPort()
		_ = setSocketBuffers(g.uasConn, 4<<20)
	}
	if cfg.RTP {
		for range cfg.MediaSockets {
			m, err := newMediaSocket(g.ip, g.table)
			if err != nil {
				return fail(fmt.Errorf("loadgen: caller RTP socket: %w", err))
			}
			g.uacMedia = append(g.uacMedia, m)
			if cfg.TargetIsUAS {
				continue
			}
			if m, err = newMediaSocket(g.ip, g.table); err != nil {
				return fail(fmt.Errorf("loadgen: callee RTP socket: %w", err))
			}
			g.uasMedia = append(g.uasMedia, m)
		}
	}
	g.sched = newScheduler()
	g.workers.Add(1)
	go g.readSIP(g.uacConn, g.uacMessage)
	if g.uasConn != nil {
		g.workers.Add(1)
		go g.readSIP(g.uasConn, g.uasMessage)
	}
	return g, nil
}

// UASAddr is where the callee side listens for SIP: the address to give the
// target as its trunk. Invalid when the target is the UAS.
func (g *Generator) UASAddr() netip.AddrPort { return g.uasAddr }

// Close stops the goroutines and closes the sockets. It does not hang up
// calls: Run does that before it returns.
func (g *Generator) Close() {
	if !g.closed.CompareAndSwap(false, true) {
		return
	}
	if g.sched != nil {
		g.sched.stop()
	}
	g.closeSockets()
	g.workers.Wait()
}

func (g *Generator) closeSockets() {
	for _, c := range []*net.UDPConn{g.uacConn, g.uasConn} {
		if c != nil {
			c.Close()
		}
	}
	for _, m := range append(g.uacMedia, g.uasMedia...) {
		m.close()
	}
}

// Run places the calls as configured and returns when every call has
// ended. When ctx ends, no more calls are placed and the calls up are hung
// up at once. The result counts every call placed.
func (g *Generator) Run(ctx context.Context) (*Result, error) {
	if !g.started.CompareAndSwap(false, true) {
		return nil, errors.New("loadgen: a Generator runs once; make a new one")
	}
	cfg := g.cfg
	start := time.Now()
	t0 := nanotime()
	cpu0, _ := ReadProcStat(0)
	stopProgress := g.progressLoop(start)

	interval := float64(time.Second) / cfg.Rate
launch:
	for i := 0; cfg.Calls == 0 || i < cfg.Calls; i++ {
		due := t0 + int64(float64(i)*interval)
		if cfg.Duration > 0 && due-t0 >= int64(cfg.Duration) {
			break
		}
		if d := time.Duration(due - nanotime()); d > 0 {
			select {
			case <-ctx.Done():
				break launch
			case <-time.After(d):
			}
		}
		if g.slots != nil {
			select {
			case <-ctx.Done():
				break launch
			case g.slots <- struct{}{}:
			}
		}
		if ctx.Err() != nil {
			if g.slots != nil {
				<-g.slots
			}
			break
		}
		if cfg.Loopback {
			g.placeLoopback(i)
		} else {
			g.place(i)
		}
	}
	launched := time.Since(start)

	done := make(chan struct{})
	go func() { g.calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.hangUpAll()
		<-done
	}
	// Packets still in flight toward sockets that stay open.
	time.Sleep(50 * time.Millisecond)
	stopProgress()
	cpu1, _ := ReadProcStat(0)
	r := g.result(start, launched, time.Since(start))
	r.Generator.CPUSeconds = cpu1.CPU().Seconds() - cpu0.CPU().Seconds()
	return r, ctx.Err()
}

// hangUpAll ends every call now (Run's context ended).
func (g *Generator) hangUpAll() {
	g.stopMu.Do(func() { close(g.stopAll) })
	g.mu.Lock()
	calls := make([]*uacCall, 0, len(g.uacCalls))
	for _, c := range g.uacCalls {
		calls = append(calls, c)
	}
	g.mu.Unlock()
	for _, c := range calls {
		c.hangUp()
	}
}

// readSIP reads one SIP socket and hands each message to handle.
func (g *Generator) readSIP(c *net.UDPConn, handle func(*sipMsg, netip.AddrPort)) {
	defer g.workers.Done()
	buf := make([]byte, 65535)
	var m sipMsg
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || g.closed.Load() {
				return
			}
			continue
		}
		if parseSIP(buf[:n], &m) != nil {
			g.countUAS("malformed SIP")
			continue
		}
		handle(&m, src)
	}
}

func (g *Generator) countFailure(reason string) {
	g.mu.Lock()
	g.failures[reason]++
	g.mu.Unlock()
}

func (g *Generator) countUAS(reason string) {
	g.mu.Lock()
	g.uasErrs[reason]++
	g.mu.Unlock()
}

// send writes one SIP datagram; a failure shows as a timeout later.
func send(c *net.UDPConn, b []byte, to netip.AddrPort) {
	_, _ = c.WriteToUDPAddrPort(b, to)
}

// RFC 3261 §17 timers.
const (
	timerT1 = 500 * time.Millisecond
	timerT2 = 4 * time.Second
	// byeTimeout is Timer F; lingering is how long a finished call stays
	// known, to answer retransmissions (Timer J, shortened for loopback).
	byeTimeout = 32 * time.Second
	lingering  = 5 * time.Second
)

// number is the dialled number of call i.
func (g *Generator) number(i int) string {
	return g.cfg.Prefix + g.runID[:4] + strconv.Itoa(i)
}

// mediaFor picks the RTP socket of a side for call i.
func mediaFor(socks []*mediaSocket, i int) *mediaSocket {
	if len(socks) == 0 {
		return nil
	}
	return socks[i%len(socks)]
}

// mediaDst is the RTP address of an SDP body, if it has a usable one.
func mediaDst(s sdpInfo) (netip.AddrPort, bool) {
	ip, err := netip.ParseAddr(string(s.addr))
	if err != nil || !ip.Is4() || ip.IsUnspecified() || s.port == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, uint16(s.port)), true
}

// mayRTP reports whether we may send to a party whose SDP has direction d.
func mayRTP(d string) bool { return d == "sendrecv" || d == "recvonly" }

// lossBreakdown sums, over the streams the pacers retired, where their
// lost packets were missing. The readers are held off while it reads.
func (g *Generator) lossBreakdown() (start, mid, end uint64) {
	socks := g.allMedia()
	for _, m := range socks {
		m.histMu.Lock()
	}
	defer func() {
		for _, m := range socks {
			m.histMu.Unlock()
		}
	}()
	g.table.mu.Lock()
	defer g.table.mu.Unlock()
	for _, s := range g.table.all {
		sent := s.retired.Load()
		if sent == 0 {
			continue
		}
		a, b, c := s.rx.lossAt(sent - 1)
		start, mid, end = start+uint64(a), mid+uint64(b), end+uint64(c)
	}
	return start, mid, end
}

package media

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestNewPortPoolValidatesRange(t *testing.T) {
	tests := []struct {
		name        string
		lo, hi      int
		rest        time.Duration
		wantErr     string // substring; empty means success
		first, last int    // RTP ports handed out, when valid
	}{
		{name: "default range", lo: 20000, hi: 29999, first: 20000, last: 29998},
		{name: "single pair", lo: 20000, hi: 20001, first: 20000, last: 20000},
		{name: "odd low end rounds up", lo: 20001, hi: 20003, first: 20002, last: 20002},
		{name: "odd high end leaves its even port out", lo: 20000, hi: 20004, first: 20000, last: 20002},
		{name: "top of the port space", lo: 65534, hi: 65535, first: 65534, last: 65534},
		{name: "low end privileged", lo: 1023, hi: 2000, wantErr: "low end 1023 is outside 1024..65535"},
		{name: "high end too big", lo: 20000, hi: 70000, wantErr: "high end 70000 is outside 1024..65535"},
		{name: "high end below low end", lo: 30000, hi: 20000, wantErr: "30000-20000 holds no even RTP port"},
		{name: "one port only", lo: 20000, hi: 20000, wantErr: "20000-20000 holds no even RTP port"},
		{name: "odd low end leaves no pair", lo: 20001, hi: 20002, wantErr: "20001-20002 holds no even RTP port"},
		{name: "negative rest", lo: 20000, hi: 20001, rest: -time.Second, wantErr: "port rest -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPortPool(tt.lo, tt.hi, tt.rest)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("NewPortPool(%d, %d) succeeded, want error %q", tt.lo, tt.hi, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("NewPortPool(%d, %d) error = %q, want it to contain %q and wrap ErrInvalidArgument",
						tt.lo, tt.hi, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPortPool(%d, %d): %v", tt.lo, tt.hi, err)
			}
			if first, last := p.Range(); first != tt.first || last != tt.last {
				t.Errorf("Range() = %d, %d; want %d, %d", first, last, tt.first, tt.last)
			}
			if wantFree := (tt.last-tt.first)/2 + 1; p.free.len() != wantFree {
				t.Errorf("pool holds %d pairs, want %d", p.free.len(), wantFree)
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		lo, hi  int
		wantErr string
	}{
		{in: "20000-29999", lo: 20000, hi: 29999},
		{in: " 10000 - 10001 ", lo: 10000, hi: 10001},
		{in: "20000", wantErr: `rtp_ports: "20000" is not a port range; want "LO-HI"`},
		{in: "", wantErr: `rtp_ports: "" is not a port range`},
		{in: "a-29999", wantErr: "low end that is not a number"},
		{in: "20000-b", wantErr: "high end that is not a number"},
		{in: "20000-29999-3", wantErr: "high end that is not a number"},
		{in: "100-200", wantErr: "rtp_ports: low end 100 is outside 1024..65535"},
		{in: "29999-20000", wantErr: "rtp_ports: 29999-20000 holds no even RTP port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			lo, hi, err := ParsePortRange(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("ParsePortRange(%q) error = %v, want one containing %q wrapping ErrInvalidArgument", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || lo != tt.lo || hi != tt.hi {
				t.Fatalf("ParsePortRange(%q) = %d, %d, %v; want %d, %d, nil", tt.in, lo, hi, err, tt.lo, tt.hi)
			}
		})
	}
}

func TestAllocateHandsOutDistinctEvenPortsWithRTCPAbove(t *testing.T) {
	pool := newTestPool(t, 4, 0)
	seen := map[int]bool{}
	for range 4 {
		e := allocate(t, pool)
		port := e.Port()
		first, last := pool.Range()
		if port%2 != 0 || port < first || port > last || seen[port] {
			t.Fatalf("Allocate gave port %d; want a new even port in %d..%d (seen %v)", port, first, last, seen)
		}
		seen[port] = true
		if got := int(e.rtcp.sock.localAddr().Port()); got != port+1 {
			t.Errorf("RTCP socket on port %d, want %d", got, port+1)
		}
		if e.Advertise() != loopback {
			t.Errorf("Advertise() = %v, want the bind address %v", e.Advertise(), loopback)
		}
	}
	if got := pool.InUse(); got != 4 {
		t.Errorf("InUse() = %d, want 4", got)
	}
	if _, err := pool.Allocate(EndpointConfig{IP: loopback}); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("Allocate from a full pool: err = %v, want ErrNoPorts", err)
	}
}

func TestCloseReleasesPortsThatRestBeforeReuse(t *testing.T) {
	const rest = 30 * time.Second
	pool := newTestPool(t, 2, rest)
	clock := newFakeClock()
	pool.now = clock.now

	a, b := allocate(t, pool), allocate(t, pool)
	ports := map[int]bool{a.Port(): true, b.Port(): true}
	if got := pool.InUse(); got != 2 {
		t.Fatalf("InUse() after two allocations = %d, want 2", got)
	}
	for _, e := range []*Endpoint{a, b} {
		if err := e.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("second Close: %v, want nil (idempotent)", err)
		}
	}
	if got, resting := pool.InUse(), pool.Resting(); got != 0 || resting != 2 {
		t.Fatalf("after Close: InUse() = %d, Resting() = %d; want 0, 2", got, resting)
	}
	// The sockets are really closed: the ports can be bound again.
	for port := range ports {
		if !portsFree(port, 2) {
			t.Errorf("port pair %d still bound after Close", port)
		}
	}

	clock.advance(rest - time.Millisecond)
	if e, err := pool.Allocate(EndpointConfig{IP: loopback}); !errors.Is(err, ErrNoPorts) {
		if e != nil {
			_ = e.Close()
		}
		t.Fatalf("Allocate while both pairs rest: err = %v, want ErrNoPorts", err)
	}

	clock.advance(time.Millisecond)
	c := allocate(t, pool)
	if !ports[c.Port()] {
		t.Errorf("Allocate after the rest gave port %d, want one of the rested %v", c.Port(), ports)
	}
	if got, resting := pool.InUse(), pool.Resting(); got != 1 || resting != 0 {
		t.Errorf("after reuse: InUse() = %d, Resting() = %d; want 1, 0", got, resting)
	}
}

func TestAllocateTakesPortsInRandomOrder(t *testing.T) {
	// Handed out in order, the next call's ports could be guessed from any
	// call's SDP, and sprayed before its party sends (RTP bleed).
	pool := newTestPool(t, 64, 0)
	var ports []int
	ascending := true
	for i := range 16 {
		ports = append(ports, allocate(t, pool).Port())
		if i > 0 && ports[i] < ports[i-1] {
			ascending = false
		}
	}
	// 16 random picks come out in ascending order once in 16! (2e13).
	if ascending {
		t.Errorf("Allocate gave ports %v in ascending order; want a random order", ports)
	}
}

func TestAllocateSkipsPortsTheOSRefuses(t *testing.T) {
	pool := newTestPool(t, 2, 0)
	first, _ := pool.Range()
	// Another program holds the first pair's RTCP port.
	squatter, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(first+1))))
	if err != nil {
		t.Fatalf("squat: %v", err)
	}
	defer squatter.Close()

	e := allocate(t, pool)
	if e.Port() != first+2 {
		t.Errorf("Allocate gave port %d, want %d (skipping %d whose RTCP port is taken)", e.Port(), first+2, first)
	}
	if got := pool.InUse(); got != 1 {
		t.Errorf("InUse() = %d, want 1 (the refused pair is not in use)", got)
	}
	if _, err := pool.Allocate(EndpointConfig{IP: loopback}); !errors.Is(err, ErrNoPorts) || !strings.Contains(err.Error(), "refusal") {
		t.Errorf("Allocate with the only free pair refused: err = %v, want ErrNoPorts naming the refusal", err)
	}
}

func TestAllocateRejectsBadConfig(t *testing.T) {
	pool, err := NewPortPool(30000, 30001, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     EndpointConfig
		wantErr string
	}{
		{name: "no IP", cfg: EndpointConfig{}, wantErr: "EndpointConfig.IP is not set"},
		{name: "unspecified IP without advertise", cfg: EndpointConfig{IP: netip.IPv4Unspecified()},
			wantErr: "cannot advertise 0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := pool.Allocate(tt.cfg)
			if e != nil {
				_ = e.Close()
			}
			if err == nil || !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Allocate(%+v) error = %v, want ErrInvalidArgument containing %q", tt.cfg, err, tt.wantErr)
			}
			if pool.InUse() != 0 {
				t.Errorf("InUse() = %d after a refused Allocate, want 0", pool.InUse())
			}
		})
	}
}

// A re-adopted call gets the ports it had when they are free, and
// ErrNoPorts when they are not.
func TestAllocateAtGivesTheAskedPairOnce(t *testing.T) {
	pool := newTestPool(t, 3, 0)
	first, _ := pool.Range()
	e, err := pool.AllocateAt(EndpointConfig{IP: loopback}, first+2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Port() != first+2 {
		t.Errorf("AllocateAt(%d) gave %d", first+2, e.Port())
	}
	if _, err := pool.AllocateAt(EndpointConfig{IP: loopback}, first+2); !errors.Is(err, ErrNoPorts) {
		t.Errorf("AllocateAt on a pair in use: %v; want ErrNoPorts", err)
	}
	for range 2 {
		f := allocate(t, pool)
		defer f.Close()
		if f.Port() == first+2 {
			t.Errorf("Allocate handed out the pair AllocateAt took")
		}
	}
}

package loadgen

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// reflector answers every datagram it can parse as SIP with two 403s (a
// retransmission), like a server that refuses and retransmits, and
// remembers the Call-IDs and sources it saw.
type reflector struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	callIDs map[string]int
	sources map[string]bool
	garbage int // datagrams it could not parse
}

func newReflector(t *testing.T) *reflector {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = setSocketBuffers(c, 4<<20)
	r := &reflector{conn: c, callIDs: map[string]int{}, sources: map[string]bool{}}
	go func() {
		buf := make([]byte, 65535)
		var m sipMsg
		for {
			n, src, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.sources[src.Addr().String()] = true
			if parseSIP(buf[:n], &m) != nil {
				r.garbage++
				r.mu.Unlock()
				continue
			}
			r.callIDs[string(m.callID)]++
			r.mu.Unlock()
			resp := appendResponse(nil, m.head(), 403, "Forbidden", "x", nil, "", nil)
			_, _ = c.WriteToUDPAddrPort(resp, src)
			_, _ = c.WriteToUDPAddrPort(resp, src)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return r
}

func TestFloodCountsWhatItSentAndWhatCameBack(t *testing.T) {
	ref := newReflector(t)
	r, err := Flood(context.Background(), FloodConfig{
		Target: ref.conn.LocalAddr().String(), Source: "127.0.0.5",
		Rate: 1000, GarbageRate: 100, Garbage: []string{GarbageRandom}, Duration: 300 * time.Millisecond, Linger: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.InvitesSent != 300 || r.GarbageSent[GarbageRandom] != 30 || r.DatagramsSent != 330 {
		t.Fatalf("sent %d INVITEs, garbage %v, %d datagrams; want 300 at 1,000/s for 0.3 s, 30 random, 330", r.InvitesSent, r.GarbageSent, r.DatagramsSent)
	}
	ref.mu.Lock()
	ids, srcs := len(ref.callIDs), ref.sources
	ref.mu.Unlock()
	if ids != 300 {
		t.Errorf("the target saw %d distinct Call-IDs, want 300 (a fresh one per INVITE)", ids)
	}
	if !srcs["127.0.0.5"] || len(srcs) != 1 {
		t.Errorf("datagrams came from %v, want 127.0.0.5 only", srcs)
	}
	if r.InvitesAnswered != 300 || r.AnsweredPct != 100 {
		t.Errorf("%d INVITEs answered (%.1f%%), want all 300", r.InvitesAnswered, r.AnsweredPct)
	}
	if r.Responses["403"] != 600 || r.DatagramsReceived != 600 {
		t.Errorf("received %d datagrams, responses %v; want two 403s for each INVITE", r.DatagramsReceived, r.Responses)
	}
	if want := 600.0 / 330; r.Reflection < want-0.001 || r.Reflection > want+0.001 {
		t.Errorf("reflection %.3f, want %.3f (datagrams in per datagram out)", r.Reflection, want)
	}
}

func TestFloodGarbageIsWhatItSays(t *testing.T) {
	cfg, err := FloodConfig{Target: "127.0.0.1:5070", Source: "127.0.0.5", Duration: time.Second, Seed: 7}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Garbage) != 2+len(missingHeaders) {
		t.Fatalf("default garbage kinds %v: want random, truncated and one per mandatory header", cfg.Garbage)
	}
	f := &flooder{cfg: cfg, runID: "r", rng: newTestRand()}
	f.src = mustAddrPort("127.0.0.5:40000")
	f.target = mustAddrPort(cfg.Target)
	full := f.invite(nil, "g", 1, "")
	var m sipMsg
	if err := parseSIP(full, &m); err != nil || string(m.method) != "INVITE" || len(m.body) == 0 {
		t.Fatalf("the flood's INVITE does not parse as one with a body: %v\n%s", err, full)
	}
	for _, h := range missingHeaders {
		b := f.garbage(nil, "no-"+strings.ToLower(h), 1)
		if bytes.Contains(b, []byte("\r\n"+h+":")) {
			t.Errorf("no-%s still has %s:\n%s", strings.ToLower(h), h, b)
		}
		if n := bytes.Count(full, []byte("\r\n")) - bytes.Count(b, []byte("\r\n")); n != 1 {
			t.Errorf("no-%s lacks %d lines of the INVITE, want exactly its one header", strings.ToLower(h), n)
		}
	}
	for i := range uint64(50) {
		if tr := f.garbage(nil, GarbageTruncated, 1); len(tr) == 0 || len(tr) >= len(full) || !bytes.HasPrefix(full, tr) {
			t.Fatalf("truncated #%d (%d bytes) is not a proper prefix of the %d-byte INVITE", i, len(tr), len(full))
		}
		if r := f.garbage(nil, GarbageRandom, i); len(r) == 0 || len(r) > 1400 {
			t.Fatalf("random #%d has %d bytes, want 1 to 1,400", i, len(r))
		}
	}
	if _, err := (FloodConfig{Target: "127.0.0.1:5070", Duration: time.Second, Garbage: []string{"nonsense"}}).withDefaults(); err == nil {
		t.Error("an unknown garbage kind was accepted")
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

package sip

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callctl/callctl/internal/flood"
)

// SetPolicy switches whom the agent serves for the next datagram: a source
// dropped before it is answered after an allow list that names it, a
// source answered before is then dropped (or, with RefuseWith403, gets a
// stateless 403), new scanners are dropped and a new sip.flood rate holds.
// Peer policies switch too.
func TestSetPolicySwitchesAllowListRefusalAndScannersAtOnce(t *testing.T) {
	a, _ := testAgentWith(t, Config{
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}, zaptest.NewLogger(t))
	other := newRawPeer(t, "127.0.0.2", a)
	options := func(p *rawPeer, edit func([]string) []string) int {
		p.send(p.request("OPTIONS", "sip:x@"+a.Addr(), edit, ""))
		if res := p.answer(time.Second); res != nil {
			return res.StatusCode
		}
		return 0
	}
	if got := options(other, nil); got != 0 {
		t.Fatalf("127.0.0.2 before the reload got %d; want no answer", got)
	}

	a.SetPolicy(Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Scanners: []string{"evil-scanner"},
		Peers: []PeerPolicy{{Host: "192.0.2.9", LargeOver: LargeOverUDP}}})
	if got := options(other, nil); got != 200 {
		t.Fatalf("127.0.0.2 after it was allowed got %d; want 200", got)
	}
	if got := options(other, adding("User-Agent: Evil-Scanner 2")); got != 0 {
		t.Fatalf("a scanner named by the new policy got %d; want no answer", got)
	}
	if got := a.largeOver("192.0.2.9"); got != LargeOverUDP {
		t.Errorf("largeOver for the new peer = %q; want %q", got, LargeOverUDP)
	}

	a.SetPolicy(Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Flood: flood.Config{Rate: 0.01, Burst: 1}})
	if first, second := options(other, nil), options(other, nil); first != 200 || second != 0 {
		t.Fatalf("with sip.flood at one request per 100 s two requests got %d and %d; want 200, then none", first, second)
	}
	if a.Dropped()["rate_limited"] == 0 {
		t.Error("the request over the new rate was not counted rate_limited")
	}

	a.SetPolicy(Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, RefuseWith403: true})
	if got := options(other, nil); got != 403 {
		t.Fatalf("127.0.0.2 after it was taken off the list with refused 403 got %d; want 403", got)
	}
	if got := a.largeOver("192.0.2.9"); got != LargeOverTCP {
		t.Errorf("largeOver after the peer policy went = %q; want the default %q", got, LargeOverTCP)
	}
	expectAlive(t, a)
}

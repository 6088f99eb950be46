package media

import (
	"errors"
	"net/netip"
	"testing"
)

var (
	attackerIP = netip.MustParseAddr("127.0.0.2")
	privateIP  = netip.MustParseAddr("127.0.0.3") // an SDP address nobody sends from
)

func TestStrictLatchingTakesMediaOnlyFromTheSDPAddress(t *testing.T) {
	c := newCall(t, 2)
	attacker := newPhoneAt(t, attackerIP)

	// The attacker sprays the port before phone A has sent anything: with
	// first-packet latching it would now hear the call and talk into it.
	attacker.send(rtpAddr(c.a), (&stream{ssrc: 666}).next())
	attacker.sendRaw(attacker.rtcp, rtcpAddr(c.a), rtcpReceiverReport(666))
	c.phoneB.expectSilence("RTP from an address that is not phone A's")
	eventually(t, "both packets count as foreign", func() bool { return c.a.Stats().Foreign == 2 })
	if rtpTo, rtcpTo := c.a.Remote(); rtpTo != c.phoneA.rtpAddr() || rtcpTo != c.phoneA.rtcpAddr() {
		t.Fatalf("a.Remote() = %v, %v after the attack; want phone A's SDP addresses", rtpTo, rtcpTo)
	}
	toA := &stream{ssrc: 2}
	c.phoneB.send(rtpAddr(c.b), toA.next())
	c.phoneA.recv()
	attacker.expectSilence("the call's audio")

	// Phone A's own packets flow; the attacker stays out.
	fromA := &stream{ssrc: 1}
	c.phoneA.send(rtpAddr(c.a), fromA.next())
	c.phoneB.recv()
	attacker.send(rtpAddr(c.a), (&stream{ssrc: 666}).next())
	c.phoneB.expectSilence("RTP from the attacker after phone A latched")
	if s := c.a.Stats(); s.PacketsIn != 1 || s.Foreign != 3 || s.Dropped != 3 {
		t.Errorf("a.Stats() = %+v; want 1 packet in, 3 foreign (counted in Dropped)", s)
	}
}

func TestHoldAndUnholdDoNotReopenTheLatch(t *testing.T) {
	for _, mode := range []Latching{LatchStrict, LatchNAT} {
		t.Run(mode.String(), func(t *testing.T) {
			c := &call{pool: newTestPool(t, 2, 0), phoneA: newPhone(t), phoneB: newPhone(t)}
			c.a, c.b = allocateWith(t, c.pool, mode), allocateWith(t, c.pool, mode)
			Connect(c.a, c.b)
			// Phone A's SDP has a private address (NAT) in nat mode, its
			// own in strict mode.
			sdpA := c.phoneA.rtpAddr()
			if mode == LatchNAT {
				sdpA = netip.AddrPortFrom(privateIP, 4000)
			}
			c.a.SetRemote(sdpA, netip.AddrPort{})
			c.phoneB.sdpOf(c.b)
			c.phoneA.send(rtpAddr(c.a), (&stream{ssrc: 1}).next())
			c.phoneB.recv()

			// Hold and unhold: the same SDP twice more.
			c.a.SetRemote(sdpA, netip.AddrPort{})
			c.a.SetRemote(sdpA, netip.AddrPort{})
			for _, intruder := range []*phone{newPhone(t), newPhoneAt(t, attackerIP)} {
				intruder.send(rtpAddr(c.a), (&stream{ssrc: 666}).next())
				c.phoneB.expectSilence("an intruder after hold and unhold")
			}
			if rtpTo, _ := c.a.Remote(); rtpTo != c.phoneA.rtpAddr() {
				t.Errorf("a.Remote() = %v, want phone A's latched source %v", rtpTo, c.phoneA.rtpAddr())
			}
		})
	}
}

func TestNATLatchingLatchesOnceThenOnlyOnANewAddress(t *testing.T) {
	c := &call{pool: newTestPool(t, 2, 0), phoneA: newPhone(t), phoneB: newPhone(t)}
	c.a, c.b = allocateWith(t, c.pool, LatchNAT), allocateWith(t, c.pool, LatchNAT)
	Connect(c.a, c.b)
	c.phoneB.sdpOf(c.b)
	// Phone A is behind NAT: its SDP names its private address.
	c.a.SetRemote(netip.AddrPortFrom(privateIP, 4000), netip.AddrPortFrom(privateIP, 4001))

	fromA := &stream{ssrc: 1}
	c.phoneA.send(rtpAddr(c.a), fromA.next())
	c.phoneB.recv()
	toA := &stream{ssrc: 2}
	c.phoneB.send(rtpAddr(c.b), toA.next())
	c.phoneA.recv()

	attacker := newPhoneAt(t, attackerIP)
	attacker.send(rtpAddr(c.a), (&stream{ssrc: 666}).next())
	c.phoneB.expectSilence("RTP from a second source after the latch")
	// RTCP comes from the host RTP latched onto, not from another.
	attacker.sendRaw(attacker.rtcp, rtcpAddr(c.a), rtcpReceiverReport(666))
	c.phoneB.expectSilence("RTCP from another host than the latched RTP")
	c.phoneA.sendRaw(c.phoneA.rtcp, rtcpAddr(c.a), rtcpReceiverReport(1))
	c.phoneB.recvRaw(c.phoneB.rtcp)
	eventually(t, "the attacker's packets count as foreign", func() bool { return c.a.Stats().Foreign == 2 })

	// A new SDP that moves phone A (it re-INVITEd from a new address)
	// latches once more.
	moved := newPhoneAt(t, attackerIP)
	c.a.SetRemote(netip.AddrPortFrom(privateIP, 5000), netip.AddrPort{})
	moved.send(rtpAddr(c.a), fromA.next())
	c.phoneB.recv()
	c.phoneA.send(rtpAddr(c.a), fromA.next())
	c.phoneB.expectSilence("the old source after the new latch")
}

func TestParseLatching(t *testing.T) {
	for in, want := range map[string]Latching{"": LatchStrict, "strict": LatchStrict, "nat": LatchNAT} {
		if got, err := ParseLatching(in); err != nil || got != want {
			t.Errorf("ParseLatching(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLatching("loose"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ParseLatching(loose): err = %v, want ErrInvalidArgument", err)
	}
}

package loadgen

import (
	"net"
	"testing"
)

// The per-packet work of the generator allocates nothing: building a
// packet (pacer), sending a batch, receiving a batch and accounting for a
// packet (reader).
func TestRTPLoopAllocatesNothingPerPacket(t *testing.T) {
	table := newStreamTable()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	send, err := newBatchConn(tx, 4, audioLen)
	if err != nil {
		t.Fatal(err)
	}
	recv, err := newBatchConn(rx, batchSize, maxDatagram)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(table, rx.LocalAddr().(*net.UDPAddr).AddrPort())
	s.dtmf = dtmfPlan("1")
	m := &mediaSocket{table: table, hist: NewHistogram(), lastEvent: map[uint32]uint32{}}
	var c batchCount
	once := func() {
		for i := range 4 {
			s.next(send.bufs[i])
			send.lens[i] = audioLen
			send.dsts[i] = s.destination()
		}
		if _, err := send.write(4); err != nil {
			t.Fatal(err)
		}
		n, err := recv.read()
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			m.receive(recv.bufs[i][:recv.lens[i]], nanotime(), &c)
		}
	}
	for range 20 { // past the DTMF plan: its first event allocates the map entry
		once()
	}
	if a := testing.AllocsPerRun(200, once); a != 0 {
		t.Errorf("one batch of 4 packets sent, received and counted allocates %v times, want 0", a)
	}
	if c.unique == 0 {
		t.Error("no packet was counted")
	}
}

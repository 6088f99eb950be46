package sip

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap/zaptest"
)

// TestEndedDialogIsNotKeptByItsTransactions checks that once a dialog has
// ended, nothing keeps its leg: transactions stay 32 s after a 2xx or a
// BYE (RFC 6026, RFC 3261 17.2.2), and a leg they kept would make memory
// grow with the call rate times 32 s.
func TestEndedDialogIsNotKeptByItsTransactions(t *testing.T) {
	freed := make(chan struct{})
	events := make(chan Event, 64)
	a, err := NewAgent(Config{
		Listen:     "127.0.0.1:0",
		Transports: []string{"udp"},
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}, zaptest.NewLogger(t), func(in *Leg) {
		runtime.AddCleanup(in, func(ch chan struct{}) { close(ch) }, freed)
		in.SetSink(func(ev Event) { events <- ev })
		in.Respond(200, "OK", []byte("v=0\r\n"))
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Serve()
	t.Cleanup(func() { a.Close(); a.Wait() })
	c := peer(t)
	inv, res := establish(t, a, c, events)
	if got := do(t, c, inDialog(t, inv, res, gosip.BYE, inv.CSeq().SeqNo+1)); got.StatusCode != 200 {
		t.Fatalf("BYE got %d, want 200", got.StatusCode)
	}
	// The owner takes its events and lets go, as a session does; one may
	// still come after the BYE's 200 (each event names its leg: one left
	// in the channel would keep it).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for len(events) > 0 {
			<-events
		}
		runtime.GC()
		select {
		case <-freed:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("the leg of an ended dialog is still reachable 5 s after its BYE")
}

package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/test/peers"
)

// A SIPp call through callctl, held, resumed and hung up through the API,
// watched by two clients of the event stream. The one that stays connected
// gets a HELLO, then every event of the call in order, sequence numbers
// without a gap, the call's states in the order they happened. The one that
// disconnects once the call is up and comes back with ?since=<last seq it
// got> receives exactly the events it missed, no more (no repeat of that
// seq) and no fewer, and then the live ones: in the end both saw the very
// same events.
func TestEventStreamDeliversACallInOrderAndResumesExactlyWhereItLeft(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := callee(t, dir)
	s := startServer(t, nil, func(cfg *config.Config) {
		cfg.Routes = []config.Route{routeTo("2001", uas)}
	})

	stayed := s.openStream(t, adminToken, "")
	left := s.openStream(t, adminToken, "")
	for name, st := range map[string]*stream{"stayed": stayed, "left": left} {
		hello := st.waitFor(t, 5*time.Second, "HELLO", func(m []streamMsg) bool { return len(m) > 0 })[0]
		if hello.Type != "HELLO" || hello.Seq != 0 || hello.OldestSeq != 0 {
			t.Errorf("client %s: first message %v; want HELLO with seq 0 and no oldestSeq, before any call", name, hello)
		}
	}

	c := s.dial(t, uas, dir, "1001", "2001")
	before := left.waitFor(t, 5*time.Second, "IN_CALL", func(m []streamMsg) bool { return hasState(m, c.id, "IN_CALL") })
	left.close()
	lastSeen := before[len(before)-1].Seq

	operate(t, s, c, "admin", "hold", "", "ON_HOLD")
	operate(t, s, c, "admin", "unhold", "", "IN_CALL")
	stayed.waitFor(t, 5*time.Second, "the unhold", func(m []streamMsg) bool {
		return slices.ContainsFunc(m, func(e streamMsg) bool { return e.Operation != nil && e.Operation.Name == "unhold" })
	})

	back := s.openStream(t, adminToken, fmt.Sprintf("?since=%d", lastSeen))
	operate(t, s, c, "admin", "hangup", "", "HUNG_UP")
	c.uac.ExpectPass(t, 10*time.Second)
	c.uas.ExpectPass(t, 10*time.Second)
	ended := func(m []streamMsg) bool { return hasState(m, c.id, "HUNG_UP") }
	stayed.waitFor(t, 5*time.Second, "HUNG_UP", ended)
	back.waitFor(t, 5*time.Second, "HUNG_UP", ended)
	time.Sleep(300 * time.Millisecond) // whatever follows the end, both get too

	all := stayed.messages()
	got := events(all[1:])
	if len(got) == 0 {
		t.Fatal("the connected client got no events")
	}
	for i, e := range got {
		if want := uint64(i + 1); e.Seq != want {
			t.Fatalf("event %d of the connected client has seq %d; want %d (in order, no gap, from 1):\n%s", i, e.Seq, want, describe(all))
		}
		if e.SessionID != c.id || e.Session.Caller.Number != "1001" || e.Session.Callee.Number != "2001" {
			t.Errorf("event %v is not about session %s (1001 → 2001)", e, c.id)
		}
	}
	var walk []string
	for _, e := range got {
		if e.Type == "STATE_CHANGED" {
			walk = append(walk, e.State)
		}
	}
	if want := []string{"IN_CALL", "ON_HOLD", "IN_CALL", "HUNG_UP"}; len(walk) < 5 || !slices.Equal(walk[len(walk)-4:], want) || walk[0] != "SETUP" && walk[0] != "RINGING" {
		t.Errorf("the session went %v; want it to start SETUP or RINGING and end %v", walk, want)
	}

	resumed := back.messages()
	if len(resumed) == 0 || resumed[0].Type != "HELLO" {
		t.Fatalf("the resumed stream starts %v; want HELLO", resumed)
	}
	if slices.ContainsFunc(resumed, func(m streamMsg) bool { return m.Type == "RESUME_FAILED" }) {
		t.Errorf("resuming from seq %d, well within the buffer, failed:\n%s", lastSeen, describe(resumed))
	}
	missed := events(resumed[1:])
	if len(missed) == 0 || missed[0].Seq != lastSeen+1 {
		t.Errorf("resuming after seq %d, the first event is %v; want seq %d", lastSeen, missed, lastSeen+1)
	}
	joined := append(events(before[1:]), missed...)
	if !sameEvents(joined, got) {
		t.Errorf("the client that left at seq %d and resumed saw\n%swhile the one that stayed saw\n%s", lastSeen, describe(joined), describe(got))
	}
}

// sameEvents compares two event lists by seq, type, session, state and
// operation.
func sameEvents(a, b []streamMsg) bool {
	return slices.EqualFunc(a, b, func(x, y streamMsg) bool { return x.String() == y.String() })
}

// With a buffer of three events, a client resuming from before the oldest
// kept is told so plainly: HELLO, then RESUME_FAILED with the oldest seq
// still kept and the latest. Resuming from just before the oldest kept
// works and delivers exactly the kept events.
func TestEventStreamSaysResumeFailedWhenTheSeqIsOlderThanTheBuffer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	peers.ToneFile(t, dir, 2, 440)
	uas := callee(t, dir)
	s := startServer(t, nil, func(cfg *config.Config) {
		cfg.Routes = []config.Route{routeTo("2001", uas)}
		cfg.API.EventBuffer = 3
	})
	watch := s.openStream(t, adminToken, "")
	c := s.dial(t, uas, dir, "1001", "2001")
	operate(t, s, c, "admin", "hangup", "", "HUNG_UP")
	// A bound, not a timing target: SIPp exits within a second when the
	// machine is idle, and took over 10 s once under make test's load.
	c.uac.ExpectPass(t, 30*time.Second)
	c.uas.ExpectPass(t, 30*time.Second)
	watch.waitFor(t, 5*time.Second, "HUNG_UP", func(m []streamMsg) bool { return hasState(m, c.id, "HUNG_UP") })
	time.Sleep(200 * time.Millisecond)
	all := events(watch.messages())
	last := all[len(all)-1].Seq
	if last < 5 {
		t.Fatalf("only %d events for a whole call:\n%s", last, describe(all))
	}

	old := s.openStream(t, adminToken, "?since=1")
	msgs := old.waitFor(t, 5*time.Second, "HELLO and RESUME_FAILED", func(m []streamMsg) bool { return len(m) >= 2 })
	hello, failed := msgs[0], msgs[1]
	if hello.Type != "HELLO" || hello.Seq != last || hello.OldestSeq != last-2 {
		t.Errorf("first message %v; want HELLO seq %d oldestSeq %d", hello, last, last-2)
	}
	if failed.Type != "RESUME_FAILED" || failed.Seq != last || failed.OldestSeq != last-2 || !strings.Contains(failed.Message, fmt.Sprint(last-2)) {
		t.Errorf("second message %v; want RESUME_FAILED seq %d oldestSeq %d with a message naming the oldest", failed, last, last-2)
	}
	time.Sleep(200 * time.Millisecond)
	if extra := old.messages()[2:]; len(extra) != 0 {
		t.Errorf("after RESUME_FAILED the stream sent old events it does not have in full:\n%s", describe(extra))
	}

	fresh := s.openStream(t, adminToken, fmt.Sprintf("?since=%d", last-3))
	got := fresh.waitFor(t, 5*time.Second, "the kept events", func(m []streamMsg) bool { return len(m) >= 4 })
	time.Sleep(200 * time.Millisecond)
	got = fresh.messages()
	if !sameEvents(events(got), all[len(all)-3:]) || slices.ContainsFunc(got, func(m streamMsg) bool { return m.Type == "RESUME_FAILED" }) {
		t.Errorf("resuming after seq %d (just before the oldest kept) got\n%swant HELLO and\n%s", last-3, describe(got), describe(all[len(all)-3:]))
	}
}

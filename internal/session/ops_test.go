package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/media"
	"go.uber.org/zap/zaptest"
)

func TestValidTargetNamesTheFieldAndWhatIsAllowed(t *testing.T) {
	for _, c := range []struct {
		target string
		ok     bool
	}{
		{"2001", true}, {"+4930123456", true}, {"sip:2001@pbx.example", true}, {"sip:alice@127.0.0.1:5080;transport=tcp", true},
		{"", false}, {"   ", false}, {"20 01", false}, {"sip:", false}, {"2001<script>", false},
	} {
		err := validTarget("forward", "target", c.target)
		if (err == nil) != c.ok {
			t.Errorf("validTarget(%q) = %v, want ok=%v", c.target, err, c.ok)
		}
		if err != nil {
			var oe *OpError
			if !errors.As(err, &oe) || oe.Field != "target" || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("validTarget(%q) error %#v does not name the field as an invalid argument", c.target, err)
			}
		}
	}
}

func TestOpErrorsMatchTheirSentinelsOnly(t *testing.T) {
	err := wrongState("hold", Ringing, holdStates)
	if !errors.Is(err, ErrWrongState) || errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("errors.Is mismatch for %v", err)
	}
	if got := err.Error(); got != "hold: not allowed while the session is RINGING (session is RINGING; allowed in IN_CALL, CALLER_ON_HOLD, CALLEE_ON_HOLD)" {
		t.Fatalf("message: %s", got)
	}
	pr := peerRefused("hold", "callee 2001", 488, "Not Acceptable Here")
	if !errors.Is(pr, ErrPeerRefused) || pr.Status != 488 {
		t.Fatalf("peerRefused: %#v", pr)
	}
}

func TestReferEventAndSipfragParsing(t *testing.T) {
	for _, c := range []struct {
		v    string
		seq  uint32
		want bool
	}{{"refer", 7, true}, {"refer;id=7", 7, true}, {"Refer ; id=7", 7, true}, {"refer;id=8", 7, false}, {"presence", 7, false}} {
		if got := isReferEvent(c.v, c.seq); got != c.want {
			t.Errorf("isReferEvent(%q, %d) = %v", c.v, c.seq, got)
		}
	}
	for _, c := range []struct {
		body string
		code int
	}{{"SIP/2.0 200 OK\r\n", 200}, {"SIP/2.0 100 Trying", 100}, {"SIP/2.0 486 Busy Here\r\nX: y\r\n", 486}, {"garbage", 0}, {"", 0}} {
		if got, _ := parseSipfrag([]byte(c.body)); got != c.code {
			t.Errorf("parseSipfrag(%q) = %d, want %d", c.body, got, c.code)
		}
	}
}

func TestHoldAnswerDirection(t *testing.T) {
	for _, c := range []struct {
		offered  media.Direction
		inactive bool
		want     media.Direction
	}{{media.SendRecv, false, media.SendOnly}, {media.SendOnly, false, media.Inactive}, {media.SendRecv, true, media.Inactive}, {media.Inactive, false, media.Inactive}} {
		if got := holdAnswer(c.offered, c.inactive); got != c.want {
			t.Errorf("holdAnswer(%s, %v) = %s, want %s", c.offered, c.inactive, got, c.want)
		}
	}
}

func TestOperationsOnUnknownSessionAreNotFoundAndHangupOnClosedIsHarmless(t *testing.T) {
	reg := NewRegistry(time.Minute)
	e := NewEngine(Config{MaxSessions: 1}, zaptest.NewLogger(t), nil, reg)
	ctx := context.Background()
	for name, err := range map[string]error{
		"hold":     e.Hold(ctx, "nope"),
		"transfer": e.BlindTransfer(ctx, "nope", "1", "2"),
		"dtmf":     e.SendDtmf(ctx, "nope", "1", "1"),
		"hangup":   e.Hangup(ctx, "nope"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s on unknown session: %v, want not found", name, err)
		}
	}
	// A session that was closed may be closed or hung up again: no error.
	reg.closed["gone"] = Snapshot{ID: "gone", State: Closed, End: time.Now()}
	if err := e.Close(ctx, "gone"); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := e.Hangup(ctx, "gone"); err != nil {
		t.Errorf("hangup after close: %v", err)
	}
	// A retained ended session: hangup is a no-op, hold a wrong-state error.
	reg.ended["old"] = Snapshot{ID: "old", State: CallerHungUp, End: time.Now(), Caller: Party{Number: "100"}, Callee: Party{Number: "200"}}
	if err := e.Hangup(ctx, "old"); err != nil {
		t.Errorf("hangup on ended session: %v", err)
	}
	if err := e.Hold(ctx, "old"); !errors.Is(err, ErrWrongState) {
		t.Errorf("hold on ended session: %v, want wrong state", err)
	}
	if err := e.SendDtmf(ctx, "old", "x", "100"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad key: %v, want invalid argument", err)
	}
	if err := e.SendDtmf(ctx, "old", "1", "999"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad party: %v, want invalid argument", err)
	}
	if err := e.BlindTransfer(ctx, "old", "999", "300"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad transferor: %v, want invalid argument", err)
	}
	if err := e.Close(ctx, "old"); err != nil {
		t.Errorf("close on ended session: %v", err)
	}
	if _, ok := reg.Get("old"); ok {
		t.Error("closed session still readable")
	}
}

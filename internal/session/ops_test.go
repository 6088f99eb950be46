package session

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/callctl/callctl/internal/policy"
	"go.uber.org/zap/zaptest"
)

// policyEngine is an engine whose trunk is pbx.example:5060 with one route
// to 192.0.2.20, and no agent: only its target checks are used.
func policyEngine(t *testing.T, hosts ...string) *Engine {
	t.Helper()
	return NewEngine(Config{MaxSessions: 1, TrunkAddress: "pbx.example:5060", TrunkTransport: "udp", TransferHosts: hosts,
		Routes: []Route{{Match: regexp.MustCompile(`^(?:9\d+)$`), Target: "sip:{number}@192.0.2.20:5080", Transport: "tcp"}}},
		zaptest.NewLogger(t), nil, NewRegistry(0))
}

func TestCheckTargetNamesTheFieldAndWhatIsAllowed(t *testing.T) {
	e := policyEngine(t)
	for _, c := range []struct {
		target     string
		ok         bool
		notAllowed bool
	}{
		{"2001", true, false}, {"+4930123456", true, false}, {"sip:2001@pbx.example", true, false},
		{"sip:alice@192.0.2.20:5090;transport=tcp", true, false},
		{"", false, false}, {"   ", false, false}, {"20 01", false, false}, {"sip:", false, false}, {"2001<script>", false, false},
		{"sips:2001@pbx.example", false, false}, {"tel:2001", false, false},
		{"sip:2001@203.0.113.7", false, true}, {"sip:2001@pbx.example.org", false, true},
	} {
		_, err := e.checkTarget("forward", "target", c.target)
		if (err == nil) != c.ok {
			t.Errorf("checkTarget(%q) = %v, want ok=%v", c.target, err, c.ok)
		}
		if err != nil {
			if err.Field != "target" || !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("checkTarget(%q) error %#v does not name the field as an invalid argument", c.target, err)
			}
			if errors.Is(err, policy.ErrNotAllowed) != c.notAllowed {
				t.Errorf("checkTarget(%q) = %v: errors.Is(policy.ErrNotAllowed) = %v, want %v", c.target, err, !c.notAllowed, c.notAllowed)
			}
		}
	}
}

// A number goes through the routing table, then the trunk; a SIP URI is
// taken as given only on an allowed host, and resolve (what the session
// runs right before sending REFER or dialling) refuses the others itself.
func TestResolveRoutesNumbersAndRefusesURIsOutsidePolicy(t *testing.T) {
	e := policyEngine(t)
	for _, c := range []struct{ target, uri, transport string }{
		{"2001", "sip:2001@pbx.example:5060", "udp"},
		{"9123", "sip:9123@192.0.2.20:5080", "tcp"},
		{"sip:77@192.0.2.20;transport=TCP", "sip:77@192.0.2.20;transport=TCP", "tcp"},
	} {
		u, tp, err := e.resolve("blindTransfer", c.target)
		if err != nil || u.String() != c.uri || tp != c.transport {
			t.Errorf("resolve(%q) = %s %s %v; want %s %s", c.target, u.String(), tp, err, c.uri, c.transport)
		}
	}
	_, _, err := e.resolve("blindTransfer", "sip:2001@203.0.113.7")
	if !errors.Is(err, policy.ErrNotAllowed) || !strings.Contains(err.Error(), "allowed hosts: pbx.example, 192.0.2.20") {
		t.Errorf("resolve(outside policy) = %v; want not allowed, naming pbx.example, 192.0.2.20", err)
	}

	// calls.transfer_hosts replaces the default list.
	e = policyEngine(t, "198.51.100.1")
	if _, _, err := e.resolve("forward", "sip:2001@pbx.example"); !errors.Is(err, policy.ErrNotAllowed) || !strings.Contains(err.Error(), "allowed hosts: 198.51.100.1") {
		t.Errorf("with transfer_hosts 198.51.100.1, resolve(trunk host) = %v; want not allowed, naming 198.51.100.1", err)
	}
	if _, _, err := e.resolve("forward", "sip:2001@198.51.100.1"); err != nil {
		t.Errorf("with transfer_hosts 198.51.100.1, resolve(that host) = %v; want nil", err)
	}
	if _, _, err := e.resolve("forward", "2001"); err != nil {
		t.Errorf("resolve(number) = %v; want numbers routed whatever transfer_hosts says", err)
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

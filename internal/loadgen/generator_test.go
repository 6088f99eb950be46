package loadgen_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/callctl/callctl/internal/app"
	"github.com/callctl/callctl/internal/config"
	"github.com/callctl/callctl/internal/loadgen"
)

// startCallctl runs callctl in-process with its trunk at trunk.
func startCallctl(t *testing.T, trunk string) (sipAddr, apiURL string) {
	t.Helper()
	cfg := config.Default()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.SIP.Transports = []string{"udp"}
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Trunk.Address = trunk
	cfg.Media.RTPPorts = "23000-23999"
	cfg.Media.PortRest = 100 * time.Millisecond
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.db")
	cfg.Admin.Token = "load-test-token"
	cfg.Shutdown.DrainTimeout = time.Second
	a, err := app.NewWithOptions(cfg, zap.NewNop(), app.Options{Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("callctl Run: %v", err)
		}
	})
	return a.SIPAddr(), a.APIURL()
}

func freePort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func TestGeneratorPlacesCallsThroughCallctlWithRTPAndDTMF(t *testing.T) {
	uas := freePort(t)
	sip, _ := startCallctl(t, uas)
	g, err := loadgen.New(loadgen.Config{Target: sip, UASListen: uas, Calls: 3, Rate: 20, Hold: time.Second,
		RTP: true, DTMF: "1#", DTMFAt: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Calls.Answered != 3 {
		t.Fatalf("calls %+v; want 3 placed, answered and ok", r.Calls)
	}
	// Each call streams about 40 packets each way; the counts are exact
	// but loss on a loaded machine is not an error here.
	if r.RTP.Sent == 0 || r.RTP.Received == 0 || r.RTP.Received > r.RTP.Sent || r.RTP.Duplicated != 0 {
		t.Errorf("rtp %+v; want packets sent and received, none duplicated", r.RTP)
	}
	if r.DTMF == nil || r.DTMF.KeysSent != 6 || r.DTMF.EventsReceived != 6 {
		t.Errorf("dtmf %+v; want 6 keys sent and 6 events received", r.DTMF)
	}
	if r.SetupMs.Count != 3 {
		t.Errorf("setup times recorded: %d, want 3", r.SetupMs.Count)
	}
}

func TestGeneratorHoldsAndUnholdsThroughTheAPI(t *testing.T) {
	uas := freePort(t)
	sip, api := startCallctl(t, uas)
	g, err := loadgen.New(loadgen.Config{Target: sip, UASListen: uas, Calls: 2, Rate: 20, Hold: 1500 * time.Millisecond,
		RTP: true, API: loadgen.APIConfig{URL: api, Token: "load-test-token", HoldUnhold: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("calls %+v; want all ok", r.Calls)
	}
	if r.API == nil || r.API.HoldOK != 2 || r.API.UnholdOK != 2 {
		t.Errorf("api %+v; want 2 holds and 2 unholds ok", r.API)
	}
	if r.RTP.Foreign == 0 {
		t.Errorf("no music on hold reached the parties (foreign packets 0)")
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		cfg  loadgen.Config
		want string
	}{
		{loadgen.Config{}, "Config.Target"},
		{loadgen.Config{Target: "127.0.0.1:5070"}, "Config.Calls"},
		{loadgen.Config{Target: "127.0.0.1:5070", Calls: 1, DTMF: "x"}, "Config.DTMF"},
		{loadgen.Config{Target: "localhost", Calls: 1}, "Config.Target"},
	} {
		if _, err := loadgen.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) error = %v, want one naming %s", c.cfg, err, c.want)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

// With Extensions both legs negotiate RFC 3262 and RFC 4028 through
// callctl: the caller requires 100rel and PRACKs callctl's reliable 180,
// gets a Session-Expires in the 200; the callee side is asked for both
// and gets callctl's PRACK before it answers.
func TestGeneratorNegotiates100relAndSessionTimersOnBothLegs(t *testing.T) {
	uas := freePort(t)
	sip, _ := startCallctl(t, uas)
	g, err := loadgen.New(loadgen.Config{Target: sip, UASListen: uas, Calls: 3, Rate: 20, Hold: 500 * time.Millisecond,
		Extensions: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("calls %+v; want all 3 ok", r.Calls)
	}
	want := loadgen.ExtensionsResult{CallerPRACKs: 3, CallerTimers: 3, CalleeReliable: 3, CalleePRACKed: 3, CalleeTimerAsked: 3}
	if r.Extensions == nil || *r.Extensions != want {
		t.Errorf("extensions %+v; want %+v", r.Extensions, want)
	}
}

package sip

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"go.uber.org/zap/zaptest"

	"github.com/callctl/callctl/internal/flood"
)

// tcpAgent is testAgentWith on TCP only.
func tcpAgent(t *testing.T, cfg Config) *Agent {
	t.Helper()
	cfg.Transports = []string{"tcp"}
	a, _ := testAgentWith(t, cfg, zaptest.NewLogger(t))
	return a
}

// tcpExchange sends msg on a new connection from 127.0.0.1 and returns the
// first response, or nil if the connection closed or nothing came.
func tcpExchange(t *testing.T, a *Agent, from string, msg func(local string) string) *gosip.Response {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, msg(c.LocalAddr().String())); err != nil {
		return nil
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	m, err := gosip.ParseMessage([]byte(head.String()))
	if err != nil {
		t.Fatalf("unparsable answer: %v\n%s", err, head.String())
	}
	res, _ := m.(*gosip.Response)
	return res
}

func tcpOptions(edit string) func(string) string {
	return func(local string) string {
		msg := fmt.Sprintf("OPTIONS sip:callctl@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-%d\r\nMax-Forwards: 70\r\n"+
			"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:callctl@127.0.0.1>\r\nCall-ID: tcp-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			local, branchSeq.Add(1), branchSeq.Add(1))
		if edit != "" {
			msg = strings.Replace(msg, edit, "", 1)
		}
		return msg
	}
}

func TestStreamRequestsAreCheckedLikeDatagrams(t *testing.T) {
	a := tcpAgent(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if res := tcpExchange(t, a, "127.0.0.1", tcpOptions("")); res == nil || res.StatusCode != 200 {
		t.Fatalf("a good OPTIONS over TCP: %v, want 200", res)
	}
	res := tcpExchange(t, a, "127.0.0.1", tcpOptions("To: <sip:callctl@127.0.0.1>\r\n"))
	if res == nil || res.StatusCode != 400 {
		t.Fatalf("an OPTIONS without To over TCP: %v, want 400", res)
	}
	if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "To") {
		t.Errorf("Warning %v, want it to name To", w)
	}
	if res := tcpExchange(t, a, "127.0.0.2", tcpOptions("")); res != nil {
		t.Fatalf("a source outside sip.allow got %d over TCP, want its connection closed", res.StatusCode)
	}
	if a.Dropped()["refused"] == 0 {
		t.Error("the refused TCP source was not counted")
	}
}

func TestStreamFloodIsAnswered503(t *testing.T) {
	a := tcpAgent(t, Config{
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Flood: flood.Config{Rate: 1, Burst: 2},
	})
	var codes []int
	for range 5 {
		if res := tcpExchange(t, a, "127.0.0.1", tcpOptions("")); res != nil {
			codes = append(codes, res.StatusCode)
		}
	}
	if len(codes) != 5 || codes[0] != 200 || codes[1] != 200 || codes[4] != 503 {
		t.Fatalf("answers %v, want 200 200 for the burst then 503", codes)
	}
	if a.Dropped()["rate_limited"] == 0 {
		t.Error("rate_limited not counted")
	}
}

package sip

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// sysctlInt reads an integer from /proc/sys.
func sysctlInt(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Fatalf("cannot read net.core.%s: %v", name, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("net.core.%s: %v", name, err)
	}
	return n
}

// The SIP UDP socket asks for sipUDPBuffer of receive and send buffer and
// gets at least what net.core.rmem_max / wmem_max allow (more as root), and
// the agent logs the effective sizes at Debug.
func TestSIPUDPSocketGetsLargeBuffers(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	a, err := NewAgent(Config{Listen: "127.0.0.1:0", Transports: []string{"udp"}}, zap.New(core), func(*Leg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); a.Wait() })
	lines := logs.FilterMessage("sip: UDP socket buffers").All()
	if len(lines) != 1 {
		t.Fatalf("%d log lines about the UDP socket buffers, want 1", len(lines))
	}
	fields := lines[0].ContextMap()
	t.Logf("UDP socket buffers: %v", fields)
	// Linux reports twice the size set (its bookkeeping), and without
	// CAP_NET_ADMIN caps the request at the sysctl.
	for _, c := range []struct{ field, sysctl string }{{"receive", "rmem_max"}, {"send", "wmem_max"}} {
		want := 2 * min(sipUDPBuffer, sysctlInt(t, c.sysctl))
		got, _ := fields[c.field].(int64)
		if got < int64(want) {
			t.Errorf("%s buffer %d bytes, want at least %d (2 × min(%d, net.core.%s))", c.field, got, want, sipUDPBuffer, c.sysctl)
		}
	}
	if fields["requested"] != int64(sipUDPBuffer) {
		t.Errorf("logged requested size %v, want %d", fields["requested"], sipUDPBuffer)
	}
}

package callctltest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/callctl/callctl/test/peers"
)

// ClusterEnv is the CALLCTL_* environment of n nodes whose embedded NATS
// servers form one NATS cluster (JetStream replicas 3) on free loopback
// route ports guarded by one shared secret, with the short heartbeat and
// node timeout the tests use: env[i] is node i's.
func ClusterEnv(t testing.TB, n int) [][]string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "route-secret")
	if err := os.WriteFile(secret, []byte("e2e-route-secret-0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	routes := make([]string, n)
	for i := range routes {
		routes[i] = fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t))
	}
	env := make([][]string, n)
	for i := range env {
		others := slices.Delete(slices.Clone(routes), i, i+1)
		env[i] = []string{
			fmt.Sprintf("CALLCTL_CLUSTER_NODE=node-%d", i+1),
			"CALLCTL_CLUSTER_EMBEDDED_LISTEN=" + routes[i],
			"CALLCTL_CLUSTER_EMBEDDED_ROUTES=" + strings.Join(others, ","),
			"CALLCTL_CLUSTER_EMBEDDED_ROUTE_SECRET_FILE=" + secret,
			"CALLCTL_CLUSTER_REPLICAS=3",
			"CALLCTL_CLUSTER_HEARTBEAT=500ms",
			"CALLCTL_CLUSTER_NODE_TIMEOUT=3s",
		}
	}
	return env
}

package cluster

import (
	"fmt"
	"testing"
)

// Rendezvous hashing spreads a dead node's calls over the survivors
// evenly, and every survivor computes the same owner for each call
// whatever order it lists the nodes in.
func TestPickSpreadsCallsOverTheSurvivors(t *testing.T) {
	nodes := []string{"node-2", "node-3", "node-4"}
	reversed := []string{"node-4", "node-3", "node-2"}
	got := map[string]int{}
	for i := range 3000 {
		key := fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
		n := pick(nodes, key)
		if m := pick(reversed, key); m != n {
			t.Fatalf("pick(%s) = %s from one order, %s from another", key, n, m)
		}
		got[n]++
	}
	for _, n := range nodes {
		if got[n] < 800 || got[n] > 1200 {
			t.Errorf("node %s got %d of 3000 calls; want about 1000 each: %v", n, got[n], got)
		}
	}
}

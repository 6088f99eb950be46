package peers

import "testing"

// A range a finished test gave back is handed out again split to size,
// an even first port, the rest kept for later.
func TestPortPoolReusesGivenBackRangesSplitToSize(t *testing.T) {
	lo, hi := FreePortRange(t, 10)
	if hi-lo != 9 || lo%2 != 0 {
		t.Fatalf("FreePortRange(10) = %d-%d; want 10 ports from an even one", lo, hi)
	}
	var p portPool
	p.give(lo+1, 9) // odd start: the even lo+2 comes first
	got, ok := p.reuse(4)
	if !ok || got != lo+2 {
		t.Fatalf("reuse(4) = %d, %v; want %d (the first even port of the range given back)", got, ok, lo+2)
	}
	want := map[portRange]bool{{lo + 1, 1}: true, {lo + 6, 4}: true}
	if len(p.freed) != 2 || !want[p.freed[0]] || !want[p.freed[1]] {
		t.Errorf("left over after reuse(4): %v; want %v", p.freed, want)
	}
	if _, ok := p.reuse(5); ok {
		t.Errorf("reuse(5) found a range; want none (4 and 1 ports are left)")
	}
}

package sip

import (
	"sync"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

func requestWith(hdrs ...gosip.Header) *gosip.Request {
	req := gosip.NewRequest(gosip.INVITE, gosip.Uri{Scheme: "sip", User: "a", Host: "127.0.0.1"})
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	return req
}

func TestParseSessionExpiresReadsIntervalAndRefresher(t *testing.T) {
	for _, tc := range []struct {
		value     string
		secs      uint32
		refresher string
		ok        bool
	}{
		{"1800", 1800, "", true},
		{"90;refresher=uac", 90, "uac", true},
		{" 120 ; refresher = UAS ;x=1", 120, "uas", true},
		{"90;refresher=both", 90, "", true},
		{"0", 0, "", false},
		{"-5", 0, "", false},
		{"99999999999", 0, "", false},
		{"", 0, "", false},
	} {
		secs, ref, ok := parseSessionExpires(requestWith(gosip.NewHeader("Session-Expires", tc.value)))
		if secs != tc.secs || ref != tc.refresher || ok != tc.ok {
			t.Errorf("Session-Expires %q: %d %q %v; want %d %q %v", tc.value, secs, ref, ok, tc.secs, tc.refresher, tc.ok)
		}
	}
	if secs, _, ok := parseSessionExpires(requestWith(gosip.NewHeader("x", "300"))); !ok || secs != 300 {
		t.Errorf("compact x: 300 read as %d %v", secs, ok)
	}
}

func TestParseRAckNeedsThreeFields(t *testing.T) {
	for _, tc := range []struct {
		value      string
		rseq, cseq uint32
		ok         bool
	}{
		{"1 8929 INVITE", 1, 8929, true},
		{"  7   2 invite ", 7, 2, true},
		{"1 2", 0, 0, false},
		{"a 2 INVITE", 0, 0, false},
		{"1 2 INVITE extra", 0, 0, false},
	} {
		rseq, cseq, method, ok := parseRAck(requestWith(gosip.NewHeader("RAck", tc.value)))
		if ok != tc.ok || rseq != tc.rseq || cseq != tc.cseq || (ok && method != "INVITE") {
			t.Errorf("RAck %q: %d %d %q %v; want %d %d INVITE %v", tc.value, rseq, cseq, method, ok, tc.rseq, tc.cseq, tc.ok)
		}
	}
}

func TestOptionListReadsCompactFormAndDropsNonTokens(t *testing.T) {
	req := requestWith(gosip.NewHeader("Supported", "100rel, Timer"), gosip.NewHeader("k", "replaces, bad tag, "))
	got := optionList(req, "Supported")
	want := []string{"100rel", "timer", "replaces"}
	if len(got) != len(want) {
		t.Fatalf("options %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("options %q; want %q", got, want)
		}
	}
	if !supportsOption("100REL") || !supportsOption("timer") || supportsOption("foo") {
		t.Error("supportsOption: want 100rel and timer supported, foo not")
	}
}

func TestExpiryGuardIsMinOf32sAndAThird(t *testing.T) {
	l := &Leg{agent: &Agent{}}
	if g := l.expiryGuard(90 * time.Second); g != 30*time.Second {
		t.Errorf("guard for 90 s: %v; want 30s", g)
	}
	if g := l.expiryGuard(1800 * time.Second); g != 32*time.Second {
		t.Errorf("guard for 1800 s: %v; want 32s", g)
	}
}

// A request ahead of its turn waits for the one before it, and then both
// go in CSeq order; one ahead with nothing coming waits orderWait only.
func TestAwaitTurnHoldsARequestUntilTheOneBeforeIt(t *testing.T) {
	l := &Leg{remoteSeq: 1}
	var mu sync.Mutex
	var order []uint32
	accept := func(seq uint32) {
		l.mu.Lock()
		l.awaitTurnLocked(seq)
		if seq > l.remoteSeq {
			l.remoteSeq = seq
			l.ord.advance()
			mu.Lock()
			order = append(order, seq)
			mu.Unlock()
		}
		l.mu.Unlock()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); accept(3) }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	accept(2)
	wg.Wait()
	if len(order) != 2 || order[0] != 2 || order[1] != 3 {
		t.Fatalf("accepted %v; want [2 3]", order)
	}
	if d := time.Since(start); d > orderWait/2 {
		t.Errorf("CSeq 3 waited %v after CSeq 2 came; want it released at once", d)
	}
	start = time.Now()
	accept(9)
	if d := time.Since(start); d < orderWait-10*time.Millisecond || d > orderWait+150*time.Millisecond {
		t.Errorf("a request with a gap waited %v; want about %v", d, orderWait)
	}
	if l.ord.held != 0 {
		t.Errorf("%d requests still counted as held", l.ord.held)
	}
}

func FuzzDialogHeaders(f *testing.F) {
	for _, s := range []string{"90;refresher=uac", "1 2 INVITE", "100rel, timer", "x;;=;refresher", "4294967296"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, name := range []string{"Session-Expires", "Min-SE", "RAck", "Require", "Supported", "k", "Allow"} {
			req := requestWith(gosip.NewHeader(name, v))
			parseSessionExpires(req)
			parseMinSE(req)
			parseRAck(req)
			if tags := optionList(req, name); len(tags) > maxOptionTags {
				t.Fatalf("%d option tags; bound is %d", len(tags), maxOptionTags)
			}
			allowsMethod(req, gosip.UPDATE)
		}
	})
}

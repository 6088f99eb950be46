package sipp_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callctl/callctl/test/peers"
	"github.com/callctl/callctl/test/sipp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// uas481 answers an out-of-dialog BYE with 481, as callctl must; only this
// test needs it, to check uac_unknown_dialog.xml against something.
const uas481 = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="UAS answers BYE 481">
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 481 Call/Transaction Does Not Exist
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <timewait milliseconds="500"/>
</scenario>
`

// Every caller scenario, run against its callee scenario directly (no callctl
// between them), passes on both sides; and the checks inside them fail when
// the other side does something else. Through callctl the same pairs must
// pass too: callctl only changes what a B2BUA changes (SDP addresses, o=,
// Call-ID, tags).
func TestScenariosPassAgainstEachOtherDirectly(t *testing.T) {
	tests := []struct {
		name      string
		uac, uas  string // file names, or XML text for the UAS
		keys      map[string]string
		transport string
		uacExit   int
		uasExit   int
	}{
		{name: "caller hangs up after RTP", uac: "uac_pcmu_rtp.xml", uas: "uas_pcmu_rtp.xml", keys: map[string]string{"duration": "1000"}},
		{name: "callee hangs up after RTP", uac: "uac_pcmu_rtp_wait_bye.xml", uas: "uas_pcmu_rtp_send_bye.xml", keys: map[string]string{"duration": "1000"}},
		{name: "callee hangs up over TCP", uac: "uac_pcmu_rtp_wait_bye.xml", uas: "uas_pcmu_rtp_send_bye.xml", keys: map[string]string{"duration": "500"}, transport: "t1"},
		{name: "busy", uac: "uac_expect_486.xml", uas: "uas_busy.xml"},
		{name: "not found", uac: "uac_expect_404.xml", uas: "uas_notfound.xml"},
		{name: "forbidden", uac: "uac_expect_403.xml", uas: refusing(t, 403, "Forbidden")},
		{name: "not answered 480", uac: "uac_expect_480_or_408.xml", uas: refusing(t, 480, "Temporarily Unavailable")},
		{name: "not answered 408", uac: "uac_expect_480_or_408.xml", uas: refusing(t, 408, "Request Timeout")},
		{name: "cancel while ringing", uac: "uac_cancel.xml", uas: "uas_ring_noanswer.xml"},
		{name: "a key in early media, then cancel", uac: "uac_early_dtmf_cancel.xml", uas: "uas_early_media_noanswer.xml"},
		{name: "ringing call ended by the far side", uac: "uac_expect_487.xml", uas: refusing(t, 487, "Request Terminated")},
		{name: "hold and resume", uac: "uac_hold.xml", uas: "uas_expect_hold.xml"},
		{name: "hold and resume over TCP", uac: "uac_hold.xml", uas: "uas_expect_hold.xml", transport: "t1"},
		{name: "hold and resume, callee streaming throughout", uac: "uac_hold.xml", uas: "uas_held_by_callctl.xml"},
		{name: "malformed SDP", uac: "uac_bad_sdp.xml", uas: refusing(t, 488, "Not Acceptable Here")},
		{name: "unknown dialog", uac: "uac_unknown_dialog.xml", uas: uas481},
		{name: "UPDATE in the early dialog", uac: "uac_early_update.xml", uas: "uas_early_update.xml"},
		{name: "UPDATE from the caller in the early dialog", uac: "uac_send_early_update.xml", uas: "uas_expect_early_update.xml"},
		{name: "delayed offer", uac: "uac_delayed_offer.xml", uas: "uas_delayed_offer.xml", keys: map[string]string{"duration": "500"}},
		{name: "DTMF by INFO, any INFO taken", uac: "uac_send_dtmf_info.xml", uas: "uas_accept_info.xml"},
		{name: "DTMF by INFO, each key checked", uac: "uac_send_dtmf_info.xml", uas: "uas_expect_dtmf_info.xml"},
		{name: "caller talks until the callee hangs up", uac: "uac_talks_until_bye.xml", uas: "uas_pcmu_rtp_send_bye.xml", keys: map[string]string{"duration": "500"}},
		{name: "callee talks until the caller hangs up", uac: "uac_pcmu_rtp.xml", uas: "uas_talks_until_bye.xml", keys: map[string]string{"duration": "500"}},
		{name: "callee answers a re-INVITE, then talks until the caller hangs up", uac: "uac_reinvite_moved_port.xml", uas: "uas_talks_until_bye.xml",
			keys: map[string]string{"duration": "300", "newport": "9"}},

		// The checks can fail.
		{name: "486 is not 404", uac: "uac_expect_404.xml", uas: "uas_busy.xml", uacExit: 1},
		{name: "486 is not a no-answer", uac: "uac_expect_480_or_408.xml", uas: "uas_busy.xml", uacExit: 1},
		{name: "486 is not 487", uac: "uac_expect_487.xml", uas: "uas_busy.xml", uacExit: 1},
		{name: "hold with inactive is not sendonly", uac: variant(t, "uac_hold.xml", "a=sendonly", "a=inactive"), uas: "uas_expect_hold.xml", uasExit: 1},
		{name: "an offer in the INVITE is no delayed offer", uac: "uac_pcmu_rtp.xml", uas: "uas_delayed_offer.xml", keys: map[string]string{"duration": "500"}, uasExit: 1},
		{name: "offer without PCMU", uac: variant(t, "uac_pcmu_rtp.xml", "RTP/AVP 0\r\n", "RTP/AVP 8\r\n"), uas: "uas_pcmu_rtp.xml", keys: map[string]string{"duration": "500"}, uasExit: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			peers.ToneFile(t, dir, 2, 440)
			uas := peers.StartSIPp(t, peers.SIPpOptions{
				Scenario:  scenario(t, tc.uas),
				Transport: tc.transport,
				Keys:      tc.keys,
				Dir:       dir,
			})
			uac := peers.StartSIPp(t, peers.SIPpOptions{
				Scenario:   scenario(t, tc.uac),
				RemoteAddr: uas.LocalAddr(),
				Service:    "1000",
				Transport:  tc.transport,
				Keys:       tc.keys,
				Dir:        dir,
			})
			if tc.uasExit != 0 {
				// A failed check aborts the callee's call; the caller is
				// left waiting and is stopped by the cleanup.
				expectExit(t, "callee", uas, tc.uasExit)
				return
			}
			expectExit(t, "caller", uac, tc.uacExit)
			if tc.uacExit != 0 {
				return // the callee may wait forever for what never comes
			}
			expectExit(t, "callee", uas, tc.uasExit)
		})
	}
}

// Every file here has a header comment saying what it checks.
func TestEveryScenarioSaysWhatItChecks(t *testing.T) {
	for _, name := range sipp.Names() {
		data, err := sipp.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte("<!--\n  "+name+" - ")) || !bytes.Contains(data, []byte("Checks:")) {
			t.Errorf("%s: no header comment \"<!-- %s - ... Checks: ...\"", name, name)
		}
	}
}

// refusing is uas_busy.xml answering code instead of 486.
func refusing(t *testing.T, code int, reason string) string {
	return string(replace(t, "uas_busy.xml", "486 Busy Here", strconv.Itoa(code)+" "+reason))
}

// variant is a scenario file with every old replaced by new, as XML text.
func variant(t *testing.T, name, old, new string) string {
	return string(replace(t, name, old, new))
}

func replace(t *testing.T, name, old, new string) []byte {
	data, err := sipp.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	// The files use LF; SIPp sends CRLF. Match either in old.
	old = string(bytes.ReplaceAll([]byte(old), []byte("\r\n"), []byte("\n")))
	new = string(bytes.ReplaceAll([]byte(new), []byte("\r\n"), []byte("\n")))
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s has no %q to replace", name, old)
	}
	return bytes.ReplaceAll(data, []byte(old), []byte(new))
}

// scenario returns a path for a file name, or writes XML text to a file.
func scenario(t *testing.T, nameOrXML string) string {
	if !bytes.HasPrefix([]byte(nameOrXML), []byte("<?xml")) {
		return sipp.Scenario(t, nameOrXML)
	}
	path := filepath.Join(t.TempDir(), "variant.xml")
	if err := os.WriteFile(path, []byte(nameOrXML), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func expectExit(t *testing.T, role string, s *peers.SIPp, want int) {
	t.Helper()
	got, err := s.Wait(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s exited %d; want %d. Its errors:\n%s", role, got, want, s.Errors())
	}
}

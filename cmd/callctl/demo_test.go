package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/callctl/callctl/internal/session"
	"github.com/callctl/callctl/test/peers"
)

var demoBanner = regexp.MustCompile(`open (http://\S+)/ and sign in with token (cc_\S+)`)

// TestDemoCommandShowsLiveCallsAndStopsOnCtrlC is the README's demo
// command: the binary, started with nothing but its flags in an empty
// directory, prints the console URL and a token; with that token the API
// shows at least two live sessions within 10 s; a hold through the API
// works; a listener on another call hears both parties; Ctrl-C (SIGINT) stops the phones and callctl, exit code 0, leaving
// no file behind.
func TestDemoCommandShowsLiveCallsAndStopsOnCtrlC(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "callctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lo, hi := peers.FreePortRange(t, 64)
	cmd := exec.Command(bin, "demo",
		"--sip", fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t)),
		"--api", fmt.Sprintf("127.0.0.1:%d", peers.FreeUDPPort(t)),
		"--rtp-ports", fmt.Sprintf("%d-%d", lo, hi))
	workDir := t.TempDir()
	cmd.Dir = workDir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALLCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("callctl demo stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})

	var apiURL, token string
	if !eventuallyTrue(10*time.Second, func() bool {
		m := demoBanner.FindStringSubmatch(stdout.String())
		if m == nil {
			return false
		}
		apiURL, token = m[1], m[2]
		return true
	}) {
		t.Fatal(`callctl demo printed no "open URL/ and sign in with token TOKEN" within 10 s`)
	}

	var live []demoSession
	if !eventuallyTrue(10*time.Second, func() bool {
		live = liveDemoSessions(t, apiURL, token)
		return len(live) >= 2
	}) {
		t.Fatalf("fewer than two live sessions within 10 s: %+v", live)
	}

	var inCall demoSession
	if !eventuallyTrue(20*time.Second, func() bool {
		for _, s := range liveDemoSessions(t, apiURL, token) {
			if s.State == session.InCall {
				inCall = s
				return true
			}
		}
		return false
	}) {
		t.Fatal("no demo session IN_CALL within 20 s")
	}
	res := apiRequest(t, http.MethodPost, apiURL+"/api/v1/sessions/"+inCall.ID+"/hold", token)
	if res.StatusCode != http.StatusOK {
		t.Errorf("POST hold of %s: %s; want 200", inCall.ID, res.Status)
	}
	res.Body.Close()
	res = apiRequest(t, http.MethodGet, apiURL+"/api/v1/sessions/"+inCall.ID, token)
	var held demoSession
	if err := json.NewDecoder(res.Body).Decode(&held); err != nil || held.State != session.OnHold {
		t.Errorf("session %s after hold: %+v (%v); want %s", inCall.ID, held, err, session.OnHold)
	}
	res.Body.Close()

	// A supervisor listening in on another live call hears audio from both
	// parties.
	var other demoSession
	if !eventuallyTrue(20*time.Second, func() bool {
		for _, s := range liveDemoSessions(t, apiURL, token) {
			if s.State == session.InCall && s.ID != inCall.ID {
				other = s
				return true
			}
		}
		return false
	}) {
		t.Fatal("no second demo session IN_CALL within 20 s")
	}
	caller, callee := demoListenIn(t, apiURL, token, other.ID, 50)
	if rms(caller) < 500 || rms(callee) < 500 {
		t.Errorf("the listener on %s hears the caller at RMS %.0f and the callee at %.0f; want both above 500", other.ID, rms(caller), rms(callee))
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("callctl demo exited with %v after Ctrl-C, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("callctl demo did not stop within 20 s of Ctrl-C")
	}
	if !strings.Contains(stdout.String(), "callctl demo stopped:") {
		t.Errorf("callctl demo printed no summary on the way out")
	}
	if entries, _ := os.ReadDir(workDir); len(entries) > 0 {
		t.Errorf("callctl demo left %d files in its working directory (the audit trail belongs in a temporary one)", len(entries))
	}
}

// demoSession is the part of the API's session JSON the test reads.
type demoSession struct {
	ID     string        `json:"id"`
	State  session.State `json:"state"`
	Caller struct {
		Number string `json:"number"`
	} `json:"caller"`
	Callee struct {
		Number string `json:"number"`
	} `json:"callee"`
}

func apiRequest(t *testing.T, method, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res
}

func liveDemoSessions(t *testing.T, apiURL, token string) []demoSession {
	t.Helper()
	res := apiRequest(t, http.MethodGet, apiURL+"/api/v1/sessions", token)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/sessions with the demo's token: %s", res.Status)
	}
	var body struct {
		Sessions []demoSession `json:"sessions"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("GET /api/v1/sessions: %v", err)
	}
	var live []demoSession
	for _, s := range body.Sessions {
		if !s.State.Ended() {
			live = append(live, s)
		}
	}
	return live
}

// eventuallyTrue polls cond every 100 ms until it holds or timeout passes.
func eventuallyTrue(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// demoListenIn listens to session id as a supervisor's browser would: a
// pion PeerConnection with two receive-only audio transceivers, its offer
// POSTed to /api/v1/sessions/{id}/listen. It returns the first n packets of
// each track ("caller", "callee"), decoded from µ-law, and closes the
// PeerConnection.
func demoListenIn(t *testing.T, apiURL, token, id string, n int) (caller, callee []int) {
	t.Helper()
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	logs := logging.NewDefaultLoggerFactory()
	logs.DefaultLogLevel = logging.LogLevelError
	se.LoggerFactory = logs
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var mu sync.Mutex
	got := map[string][]int{}
	for range 2 {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for packets := 0; ; packets++ { // until the PeerConnection closes
			p, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			if packets < n {
				mu.Lock()
				for _, c := range p.Payload {
					u := ^c
					v := (int(u&0x0f)<<3+0x84)<<((u>>4)&7) - 0x84
					if u&0x80 != 0 {
						v = -v
					}
					got[track.StreamID()] = append(got[track.StreamID()], v)
				}
				mu.Unlock()
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	body, _ := json.Marshal(map[string]string{"sdp": pc.LocalDescription().SDP})
	req, err := http.NewRequest(http.MethodPost, apiURL+"/api/v1/sessions/"+id+"/listen", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST listen: %v", err)
	}
	defer res.Body.Close()
	var answer struct {
		SDP string `json:"sdp"`
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/sessions/%s/listen: %s; want 200", id, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil || answer.SDP == "" {
		t.Fatalf("POST listen answered no SDP (%v)", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
		t.Fatalf("the answer to the listener's offer is refused: %v", err)
	}
	want := n * 160
	if !eventuallyTrue(5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["caller"]) >= want && len(got["callee"]) >= want
	}) {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the listener got %d caller and %d callee samples within 5 s; want %d of each", len(got["caller"]), len(got["callee"]), want)
	}
	mu.Lock()
	defer mu.Unlock()
	return got["caller"][:want], got["callee"][:want]
}

// rms is the root mean square of pcm.
func rms(pcm []int) float64 {
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(1, len(pcm))))
}

package demo_test

import (
	"bytes"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// listener is a supervisor's browser listening in on a call, played by a
// pion PeerConnection with two receive-only audio transceivers; it keeps
// the PCMU payloads each track ("caller", "callee") receives.
type listener struct {
	pc *webrtc.PeerConnection

	mu  sync.Mutex
	got map[string][][]byte
}

// listenIn starts listening to session id through callctl's API
// (POST /api/v1/sessions/{id}/listen) and returns once the answer is
// applied; the test's cleanup closes the PeerConnection.
func listenIn(t *testing.T, apiURL, token, id string) *listener {
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
	t.Cleanup(func() { _ = pc.Close() })
	l := &listener{pc: pc, got: map[string][][]byte{}}
	for range 2 {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for { // until the PeerConnection closes
			p, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.got[track.StreamID()] = append(l.got[track.StreamID()], p.Payload)
			l.mu.Unlock()
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
		ListenID string `json:"listenId"`
		SDP      string `json:"sdp"`
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/sessions/%s/listen: %s; want 200", id, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil || answer.SDP == "" {
		t.Fatalf("POST listen answered no SDP (%v)", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
		t.Fatalf("the answer to the listener's offer is refused: %v\n%s", err, answer.SDP)
	}
	return l
}

// heard waits until both tracks have received n packets and returns the
// audio of each, decoded from µ-law.
func (l *listener) heard(t *testing.T, n int, within time.Duration) (caller, callee []int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		l.mu.Lock()
		a, b := l.got["caller"], l.got["callee"]
		l.mu.Unlock()
		if len(a) >= n && len(b) >= n {
			return decodeULaw(a[:n]), decodeULaw(b[:n])
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener got %d caller and %d callee packets within %v; want %d of each", len(a), len(b), within, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func decodeULaw(payloads [][]byte) []int {
	var out []int
	for _, p := range payloads {
		for _, c := range p {
			u := ^c
			mag := (int(u&0x0f)<<3+0x84)<<((u>>4)&7) - 0x84
			if u&0x80 != 0 {
				mag = -mag
			}
			out = append(out, mag)
		}
	}
	return out
}

// sound is the RMS of pcm and how often it crosses zero per second while
// not silent (about twice its pitch).
func sound(pcm []int) (rms, crossings float64) {
	var sum float64
	var voiced, zc int
	for i, v := range pcm {
		sum += float64(v) * float64(v)
		if v > 300 || v < -300 {
			voiced++
			if i > 0 && (v > 0) != (pcm[i-1] > 0) {
				zc++
			}
		}
	}
	if voiced == 0 {
		return 0, 0
	}
	return math.Sqrt(sum / float64(len(pcm))), float64(zc) * 8000 / float64(voiced)
}

// expectTwoVoices checks a listener hears both parties: each track carries
// audible sound, the caller's (a 1xxx phone's melody) well above the
// callee's (a 2xxx phone's chatter) in pitch.
func expectTwoVoices(t *testing.T, l *listener) {
	t.Helper()
	caller, callee := l.heard(t, 100, 5*time.Second) // 2 s of each
	callerRMS, callerZC := sound(caller)
	calleeRMS, calleeZC := sound(callee)
	t.Logf("listener: caller RMS %.0f, %.0f crossings/s; callee RMS %.0f, %.0f crossings/s", callerRMS, callerZC, calleeRMS, calleeZC)
	if callerRMS < 500 || calleeRMS < 500 {
		t.Errorf("the listener hears caller at RMS %.0f, callee at RMS %.0f; want both above 500", callerRMS, calleeRMS)
	}
	if callerZC < 2*calleeZC {
		t.Errorf("caller's track crosses zero %.0f/s, callee's %.0f/s: want the caller's melody clearly above the callee's chatter (two different voices)", callerZC, calleeZC)
	}
}

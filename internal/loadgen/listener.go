package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/pion/webrtc/v4"
)

// attachListeners attaches the configured number of WebRTC listen-in
// clients to a call and closes them at its hang-up. Once the API has
// answered 501, no more are tried.
func (g *Generator) attachListeners(ctx context.Context, c *uacCall, session string) {
	a := g.api
	var pcs []*listener
	for range g.cfg.API.Listeners {
		if a.noListn.Load() {
			return
		}
		a.mu.Lock()
		a.lst.Requested++
		a.mu.Unlock()
		l, err := a.listen(ctx, session)
		a.mu.Lock()
		switch {
		case err == errListenUnavailable:
			a.lst.Requested--
			a.lst.Skipped = err.Error()
			a.noListn.Store(true)
		case err != nil:
			a.lst.Failed++
			a.errs["listen: "+err.Error()]++
		default:
			a.lst.Started++
			pcs = append(pcs, l)
		}
		a.mu.Unlock()
	}
	if len(pcs) == 0 {
		return
	}
	// Close them just before the caller hangs up.
	wait := time.Duration(int64(g.cfg.Hold) - (nanotime() - c.answeredAt()))
	select {
	case <-ctx.Done():
	case <-g.stopAll:
	case <-time.After(wait - g.cfg.Drain):
	}
	for _, l := range pcs {
		l.close(a)
	}
}

func (c *uacCall) answeredAt() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered
}

// listener is one pion PeerConnection receiving a call's two tracks.
type listener struct {
	pc      *webrtc.PeerConnection
	session string
	id      string
}

// listen makes a receive-only PeerConnection with two audio transceivers
// (caller and callee), sends its offer to POST /api/v1/sessions/{id}/listen
// and applies the answer. ICE is restricted to loopback host candidates.
func (a *apiClient) listen(ctx context.Context, session string) (*listener, error) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*listener, error) {
		pc.Close()
		return nil, err
	}
	for range 2 {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(err)
		}
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		a.tracks.Add(1)
		go func() {
			defer a.tracks.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := t.Read(buf); err != nil {
					return
				}
				a.packets.Add(1)
			}
		}()
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	status, raw, err := a.do(ctx, "POST", "/api/v1/sessions/"+url.PathEscape(session)+"/listen",
		map[string]string{"sdp": pc.LocalDescription().SDP}, nil)
	if err != nil {
		return fail(err)
	}
	if status == http.StatusNotImplemented {
		return fail(errListenUnavailable)
	}
	if status/100 != 2 {
		return fail(fmt.Errorf("POST listen: %d %s", status, firstLine(raw)))
	}
	sdp, id := parseListenAnswer(raw)
	if sdp == "" {
		return fail(fmt.Errorf("POST listen: no SDP answer in %s", firstLine(raw)))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fail(err)
	}
	return &listener{pc: pc, session: session, id: id}, nil
}

// parseListenAnswer reads the answer SDP and listen id from the API's JSON,
// accepting {"sdp":...} or {"answer":"..."} or {"answer":{"sdp":...}}, and
// "listenId" or "id".
func parseListenAnswer(raw []byte) (sdp, id string) {
	var v map[string]any
	if json.Unmarshal(raw, &v) != nil {
		return "", ""
	}
	str := func(m map[string]any, keys ...string) string {
		for _, k := range keys {
			if s, ok := m[k].(string); ok {
				return s
			}
		}
		return ""
	}
	sdp = str(v, "sdp", "answer")
	if ans, ok := v["answer"].(map[string]any); ok && sdp == "" {
		sdp = str(ans, "sdp")
	}
	return sdp, str(v, "listenId", "id")
}

func (l *listener) close(a *apiClient) {
	if l.id != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, _ = a.do(ctx, "DELETE", "/api/v1/sessions/"+url.PathEscape(l.session)+"/listen/"+url.PathEscape(l.id), nil, nil)
		cancel()
	}
	l.pc.Close()
}

package listen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callctl/callctl/internal/media"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// listener is one browser's PeerConnection hearing one call.
type listener struct {
	id, sessionID, client string
	m                     *Manager
	log                   *zap.Logger
	pc                    *webrtc.PeerConnection
	senders               [2]*webrtc.RTPTransceiver // caller, callee
	feeds                 [2]*feed
	clocks                [2]uint32

	live atomic.Bool // connected: packets flow

	// Guarded by m.mu.
	started   bool // Start returned it
	since     time.Time
	endReason string

	ending       atomic.Bool   // end has begun
	done         chan struct{} // closed by end: goroutines stop
	released     chan struct{} // closed when end has finished
	mu           sync.Mutex    // orders starting goroutines (wg.Go) before end's wg.Wait
	wg           sync.WaitGroup
	connectTimer *time.Timer // set before the listener is shared
}

func (l *listener) info() Info {
	return Info{ID: l.id, SessionID: l.sessionID, Client: l.client, Since: l.since, Connected: l.live.Load()}
}

// negotiate applies the offer, installs the forks and the goroutines, and
// returns the answer with every candidate in it.
func (l *listener) negotiate(ctx context.Context, offer webrtc.SessionDescription, tracks [2]Track) (string, error) {
	l.pc.OnConnectionStateChange(l.onState)
	if err := l.pc.SetRemoteDescription(offer); err != nil {
		return "", fmt.Errorf("listen: offer refused: %v: %w", err, ErrInvalidArgument)
	}
	answer, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("listen: answer: %v: %w", err, ErrInvalidArgument)
	}
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("listen: answer refused: %v: %w", err, ErrInvalidArgument)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("listen: gathering ICE candidates: %w", ctx.Err())
	}
	for i, f := range l.feeds {
		if err := f.attach(tracks[i]); err != nil {
			if errors.Is(err, media.ErrClosed) || errors.Is(err, errFeedClosed) {
				err = fmt.Errorf("%w: %w", ErrCallEnded, err)
			}
			return "", err
		}
	}
	// end may run from now on (StopSession): it must see every goroutine
	// started here, or none.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ending.Load() {
		return "", fmt.Errorf("listen: session %s: %w", l.sessionID, ErrCallEnded)
	}
	for i, f := range l.feeds {
		l.wg.Go(func() { f.write(l.done, l.clocks[i]) })
		// Read the browser's RTCP so pion's interceptors see it and its
		// buffers do not fill; it ends when the PeerConnection closes.
		sender := l.senders[i].Sender()
		l.wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := sender.Read(buf); err != nil {
					return
				}
			}
		})
	}
	return l.pc.LocalDescription().SDP, nil
}

// onState follows the PeerConnection (pion calls it on a goroutine of its
// own): packets flow once it is connected; a failed connection (no sign of
// the browser for ICETimeout) or one the browser closed ends the listener.
func (l *listener) onState(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		if !l.ending.Load() && !l.live.Swap(true) {
			l.log.Debug("listener connected")
		}
	case webrtc.PeerConnectionStateDisconnected:
		l.log.Debug("listener disconnected; waiting for ICE to recover or fail")
	case webrtc.PeerConnectionStateFailed:
		l.m.endLater(l, ReasonICEFailed)
	case webrtc.PeerConnectionStateClosed:
		// Closed by end (then ending is set) or by the browser's DTLS
		// close_notify.
		l.m.endLater(l, ReasonPeerClosed)
	}
}

// end releases the listener: unregistered, forks removed, PeerConnection
// closed, goroutines stopped; then OnEnded if Start had returned it. Only
// the first call does it; others with wait set return once it is done.
func (l *listener) end(reason string, wait bool) {
	if !l.ending.CompareAndSwap(false, true) {
		if wait {
			<-l.released
		}
		return
	}
	started, onEnded := l.m.forget(l, reason)
	l.live.Store(false)
	for _, f := range l.feeds {
		f.close()
	}
	l.connectTimer.Stop()
	close(l.done)
	if err := l.pc.Close(); err != nil {
		l.log.Debug("closing PeerConnection", zap.Error(err))
	}
	l.mu.Lock() // negotiate has started its goroutines, or will not
	l.mu.Unlock()
	l.wg.Wait()
	close(l.released)
	if !started {
		return
	}
	fields := []zap.Field{zap.String("reason", reason), zap.Duration("duration", time.Since(l.since))}
	for _, f := range l.feeds {
		fields = append(fields, zap.Uint64(f.party+"_packets", f.written.Load()), zap.Uint64(f.party+"_dropped", f.dropped.Load()))
	}
	l.log.Info("listener ended", fields...)
	if onEnded != nil {
		onEnded(l.id, l.sessionID, l.client, reason)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/callctl/callctl/internal/session"
)

// Reconnecting after a lost event stream waits minReconnectDelay, doubling
// after each failed attempt up to maxReconnectDelay.
const (
	minReconnectDelay = 250 * time.Millisecond
	maxReconnectDelay = 10 * time.Second
	// pingInterval is how often a quiet stream is checked: a server that
	// vanished without closing the connection is noticed within
	// pingInterval + pingTimeout.
	pingInterval = 30 * time.Second
	pingTimeout  = 15 * time.Second
)

// watcher follows the event stream across connections. It remembers the
// last sequence number seen, so that a new connection resumes after it
// (?since=) and gets exactly what was missed.
type watcher struct {
	c      *apiClient
	o      clientOptions
	so     sessionsOptions
	stdout io.Writer
	stderr io.Writer

	lastSeq   uint64
	resume    bool // lastSeq is known: the next connection resumes after it
	connected bool // the last follow got as far as the stream
}

// watch prints one line per event of GET /api/v1/events (a WebSocket)
// until ctx is done or the user interrupts it, and returns exitOK then. A
// lost connection is reopened, resuming after the last event printed; an
// answer that retrying cannot change (401, 403, 400) ends it with exitRuntime.
func watch(ctx context.Context, c *apiClient, o clientOptions, so sessionsOptions, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := &watcher{c: c, o: o, so: so, stdout: stdout, stderr: stderr}
	delay := minReconnectDelay
	for attempt := 0; ; attempt++ {
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return exitOK
		}
		var se *serverError
		if errors.As(err, &se) && se.status/100 == 4 {
			return fail(o, err, stdout, stderr)
		}
		if attempt == 0 && !w.connected {
			// Never reached: a wrong address, most likely; say so at once.
			return fail(o, err, stdout, stderr)
		}
		if w.connected {
			delay = minReconnectDelay
		}
		fmt.Fprintf(stderr, "callctl: event stream lost: %v; reconnecting in %v\n", err, delay)
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(delay):
		}
		delay = min(2*delay, maxReconnectDelay)
	}
}

// follow opens one connection and prints its events until it ends.
func (w *watcher) follow(ctx context.Context) error {
	w.connected = false
	u := w.c.base + "/api/v1/events"
	if w.resume {
		u += "?since=" + strconv.FormatUint(w.lastSeq, 10)
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient:   w.c.http,
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + w.c.token}},
		Subprotocols: []string{"callctl.v1"},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(resp.Body)
			return errorFromResponse(resp.StatusCode, body)
		}
		return fmt.Errorf("cannot reach the API at %s: %w", w.c.base, err)
	}
	w.connected = true
	conn.SetReadLimit(1 << 20)
	if w.resume {
		fmt.Fprintf(w.stderr, "callctl: following the events of %s after #%d (Ctrl-C stops)\n", w.c.base, w.lastSeq)
	} else {
		fmt.Fprintf(w.stderr, "callctl: following the events of %s (Ctrl-C stops)\n", w.c.base)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		keepAlive(ctx, conn, done)
	}()
	defer func() {
		conn.CloseNow() //nolint:errcheck // closing is all that is left to do
		close(done)
		wg.Wait()
	}()

	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return fmt.Errorf("callctl closed it (%d): %s", ce.Code, ce.Reason)
			}
			return err
		}
		w.handle(data)
	}
}

// keepAlive pings the server every pingInterval until done, and cuts the
// connection when a pong does not come back, so that the reader notices a
// vanished server.
func keepAlive(ctx context.Context, conn *websocket.Conn, done <-chan struct{}) {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				conn.CloseNow() //nolint:errcheck // the reader reports the loss
				return
			}
		}
	}
}

// control is a stream message that is not an event (see internal/api).
type control struct {
	Type    string `json:"type"`
	Seq     uint64 `json:"seq"`
	Message string `json:"message"`
}

// handle prints one stream message and keeps track of the sequence.
func (w *watcher) handle(data []byte) {
	var ctl control
	if err := json.Unmarshal(data, &ctl); err != nil {
		fmt.Fprintf(w.stderr, "callctl: ignoring a stream message that is not JSON: %v\n", err)
		return
	}
	switch ctl.Type {
	case "HELLO":
		switch {
		case !w.resume:
			w.lastSeq, w.resume = ctl.Seq, true
		case ctl.Seq < w.lastSeq:
			fmt.Fprintf(w.stderr, "callctl: callctl restarted (its last event is #%d, before #%d seen here); following the new sequence\n", ctl.Seq, w.lastSeq)
			w.lastSeq = ctl.Seq
		}
		return
	case "RESUME_FAILED":
		fmt.Fprintf(w.stderr, "callctl: some events were missed: %s\n", ctl.Message)
		w.lastSeq = ctl.Seq
		return
	}
	var ev session.Event
	if err := json.Unmarshal(data, &ev); err != nil || ev.Seq == 0 {
		fmt.Fprintf(w.stderr, "callctl: ignoring a stream message of type %q\n", ctl.Type)
		return
	}
	w.lastSeq, w.resume = max(w.lastSeq, ev.Seq), true
	if !w.wanted(ev) {
		return
	}
	if w.o.json {
		w.stdout.Write(append(data, '\n')) //nolint:errcheck // nothing to do about a broken stdout
		return
	}
	fmt.Fprintln(w.stdout, eventLine(ev))
}

// wanted applies --state and --number to an event.
func (w *watcher) wanted(ev session.Event) bool {
	if w.so.state != "" && string(ev.State) != w.so.state {
		return false
	}
	if n := w.so.number; n != "" && ev.Session.Caller.Number != n && ev.Session.Callee.Number != n && ev.Session.Dialled != n {
		return false
	}
	return true
}

// eventLine is one event for people: time, sequence number, session, then
// what happened, e.g.
//
//	14:03:07.512  #42  3f2a9c1d2e3f4a5b  IN_CALL → ON_HOLD  held by a client
func eventLine(ev session.Event) string {
	var what string
	switch ev.Type {
	case session.EventStateChanged:
		prev := string(ev.Previous)
		if prev == "" {
			prev = "new"
		}
		what = prev + " → " + string(ev.State)
		if ev.Previous == "" {
			what += fmt.Sprintf("  %s → %s", party(ev.Session.Caller), party(ev.Session.Callee))
		}
		if ev.Reason != "" {
			what += "  " + ev.Reason
		}
	case session.EventOperation:
		what = "operation"
		if op := ev.Operation; op != nil {
			what += " " + op.Name
			if len(op.Args) > 0 {
				var args []string
				for _, k := range slices.Sorted(maps.Keys(op.Args)) {
					args = append(args, k+"="+op.Args[k])
				}
				what += "(" + strings.Join(args, " ") + ")"
			}
			what += " " + op.Result
			if op.Error != "" {
				what += ": " + op.Error
			}
		}
		what += "  [" + string(ev.State) + "]"
	case session.EventDTMFReceived:
		what = "DTMF"
		if d := ev.DTMF; d != nil {
			what += fmt.Sprintf(" %s from the %s %s", d.Digit, d.Role, d.Party)
		}
		what += "  [" + string(ev.State) + "]"
	default:
		what = string(ev.Type) + "  [" + string(ev.State) + "]"
	}
	return fmt.Sprintf("%s  #%d  %s  %s", ev.Time.Local().Format("15:04:05.000"), ev.Seq, ev.SessionID, what)
}

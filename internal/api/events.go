package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/session"
	"github.com/coder/websocket"
	"go.uber.org/zap"
)

// clientQueue is how many events may wait for one WebSocket client; a
// client that falls further behind is cut off (it can resume).
const clientQueue = 1024

// hub keeps the recent events for resuming and fans new ones out to the
// WebSocket clients. It never waits for a client.
type hub struct {
	reg    *session.Registry
	log    *zap.Logger
	size   int
	panics *panicCounter // the server's: a panic here counts as an API panic

	mu      sync.Mutex
	ring    []session.Event // the last size events, oldest first once full
	next    int             // where the next event goes in ring
	full    bool
	lastSeq uint64
	clients map[*streamClient]struct{}
	closed  bool

	sub  *session.Subscription
	done chan struct{}
}

type streamClient struct {
	client *auth.Client
	ch     chan session.Event
	cut    chan string // why the hub dropped it
	once   sync.Once
}

func (c *streamClient) drop(why string) {
	c.once.Do(func() { c.cut <- why })
}

func newHub(reg *session.Registry, size int, log *zap.Logger, panics *panicCounter) *hub {
	return &hub{reg: reg, log: log, size: size, panics: panics, ring: make([]session.Event, size),
		clients: map[*streamClient]struct{}{}, done: make(chan struct{})}
}

func (h *hub) start() {
	h.sub = h.reg.Subscribe(4096)
	go h.run()
}

func (h *hub) run() {
	defer close(h.done)
	for {
		for ev := range h.sub.C() {
			h.addSafely(ev)
		}
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed || !h.sub.Dropped() {
			return
		}
		// The hub itself fell behind (it should not): say so to every
		// client, which will resume, and subscribe again.
		h.log.Error("event hub fell behind; cutting streams so clients resume")
		h.mu.Lock()
		for c := range h.clients {
			c.drop("server fell behind; resume from your last seq")
		}
		h.mu.Unlock()
		h.sub = h.reg.Subscribe(4096)
	}
}

// addSafely is add with a panic recovered: the hub's goroutine serves
// every stream, and a panic on it would end the process. The streams are
// cut (their clients resume from their last seq), as after an overflow.
func (h *hub) addSafely(ev session.Event) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		h.panics.n.Add(1)
		h.log.Error("event hub panicked; cutting streams so clients resume", zap.Uint64("seq", ev.Seq),
			zap.String("session", ev.SessionID), zap.String("panic", fmt.Sprintf("%.200v", v)), zap.Stack("stack"))
		h.mu.Lock() // add's deferred Unlock has run
		for c := range h.clients {
			delete(h.clients, c)
			c.drop("server error; resume from your last seq")
		}
		h.mu.Unlock()
	}()
	h.add(ev)
}

func (h *hub) add(ev session.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = ev
	h.next = (h.next + 1) % h.size
	if h.next == 0 {
		h.full = true
	}
	h.lastSeq = ev.Seq
	for c := range h.clients {
		if !c.client.InScope(ev.Session.Caller.Number, ev.Session.Callee.Number) {
			continue
		}
		select {
		case c.ch <- ev:
		default:
			delete(h.clients, c)
			c.drop(fmt.Sprintf("client too slow: more than %d events waiting", clientQueue))
		}
	}
}

// buffered returns the retained events in order.
func (h *hub) bufferedLocked() []session.Event {
	if !h.full {
		return h.ring[:h.next]
	}
	out := make([]session.Event, 0, h.size)
	out = append(out, h.ring[h.next:]...)
	return append(out, h.ring[:h.next]...)
}

// join registers a client and returns what it missed since seq (in its
// scope), whether seq was too old to resume from, and the oldest seq kept.
func (h *hub) join(c *streamClient, since uint64, resume bool) (missed []session.Event, tooOld bool, oldest, last uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	buf := h.bufferedLocked()
	if len(buf) > 0 {
		oldest = buf[0].Seq
	}
	last = h.lastSeq
	if resume && since < last {
		if len(buf) == 0 || since+1 < oldest {
			tooOld = true
		} else {
			for _, ev := range buf {
				if ev.Seq > since && c.client.InScope(ev.Session.Caller.Number, ev.Session.Callee.Number) {
					missed = append(missed, ev)
				}
			}
		}
	}
	if !h.closed {
		h.clients[c] = struct{}{}
	}
	return missed, tooOld, oldest, last
}

func (h *hub) leave(c *streamClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	for c := range h.clients {
		c.drop("callctl is shutting down")
	}
	h.clients = map[*streamClient]struct{}{}
	h.mu.Unlock()
	if h.sub != nil {
		h.sub.Close()
		<-h.done
	}
}

// control is a non-event message on the stream.
type control struct {
	Type      string `json:"type"`
	Seq       uint64 `json:"seq"`
	OldestSeq uint64 `json:"oldestSeq,omitempty"`
	Message   string `json:"message,omitempty"`
}

// events serves the WebSocket event stream. ?since=N resumes after seq N.
func (s *Server) events(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	var since uint64
	resume := false
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badRequest(fmt.Sprintf("since %q must be a sequence number (a whole number ≥ 0)", v))
		}
		since, resume = n, true
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"callctl.v1"}})
	if err != nil {
		return nil // Accept has answered
	}
	sc := &streamClient{client: c, ch: make(chan session.Event, clientQueue), cut: make(chan string, 1)}
	missed, tooOld, oldest, last := s.hub.join(sc, since, resume)
	defer s.hub.leave(sc)
	ctx := conn.CloseRead(r.Context())

	send := func(v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, data)
	}
	hello := control{Type: "HELLO", Seq: last, OldestSeq: oldest}
	if err := send(hello); err != nil {
		return nil
	}
	if tooOld {
		msg := fmt.Sprintf("cannot resume after seq %d: the oldest event kept is %d; reload the sessions and go on from seq %d", since, oldest, last)
		if err := send(control{Type: "RESUME_FAILED", Seq: last, OldestSeq: oldest, Message: msg}); err != nil {
			return nil
		}
	}
	sentUpTo := since
	for _, ev := range missed {
		if err := send(ev); err != nil {
			return nil
		}
		sentUpTo = ev.Seq
	}
	for {
		select {
		case ev := <-sc.ch:
			if ev.Seq <= sentUpTo {
				continue // already sent from the buffer
			}
			if err := send(ev); err != nil {
				return nil
			}
		case why := <-sc.cut:
			conn.Close(websocket.StatusPolicyViolation, why)
			return nil
		case <-ctx.Done():
			conn.Close(websocket.StatusNormalClosure, "")
			return nil
		}
	}
}

package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// APIResult counts the per-call API operations.
type APIResult struct {
	HoldOK       uint64            `json:"hold_ok"`
	HoldFailed   uint64            `json:"hold_failed"`
	UnholdOK     uint64            `json:"unhold_ok"`
	UnholdFailed uint64            `json:"unhold_failed"`
	OpMs         Summary           `json:"op_ms"` // request to answer, hold and unhold
	Errors       map[string]uint64 `json:"errors,omitempty"`
	Listeners    *ListenerResult   `json:"listeners,omitempty"`
}

// ListenerResult counts the WebRTC listen-in clients.
type ListenerResult struct {
	Requested uint64 `json:"requested"`
	Started   uint64 `json:"started"`
	Failed    uint64 `json:"failed"`
	// Packets is the RTP the listeners received, both tracks.
	Packets uint64 `json:"packets"`
	// Skipped says why listeners were not attached, e.g. the API answered
	// 501 (listen-in not available in this callctl).
	Skipped string `json:"skipped,omitempty"`
}

// errListenUnavailable: the API answered 501 to a listen request.
var errListenUnavailable = errors.New("listen-in is not available: the API answered 501 Not Implemented")

// apiClient calls callctl's HTTP API.
type apiClient struct {
	cfg  APIConfig
	http *http.Client

	mu      sync.Mutex
	opHist  *Histogram
	errs    map[string]uint64
	ops     sync.WaitGroup
	lst     ListenerResult
	noListn atomic.Bool
	packets atomic.Uint64
	tracks  sync.WaitGroup
}

func newAPIClient(cfg APIConfig) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &apiClient{cfg: cfg, http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		opHist: NewHistogram(), errs: map[string]uint64{}}
}

// do sends a request with a JSON body (nil: none) and decodes a JSON answer
// into out (nil: ignored). It returns the status; an error only when no
// answer came.
func (a *apiClient) do(ctx context.Context, method, path string, body, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.cfg.URL, "/")+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, raw, nil
}

func (a *apiClient) countErr(what string) {
	a.mu.Lock()
	a.errs[what]++
	a.mu.Unlock()
}

// sessionFor finds the live session of a dialled number, waiting briefly
// for callctl to have it.
func (a *apiClient) sessionFor(ctx context.Context, number string) (string, error) {
	for try := 0; ; try++ {
		var list struct {
			Sessions []struct {
				ID      string `json:"id"`
				State   string `json:"state"`
				Dialled string `json:"dialled"`
			} `json:"sessions"`
		}
		status, raw, err := a.do(ctx, "GET", "/api/v1/sessions?number="+url.QueryEscape(number), nil, &list)
		if err != nil {
			return "", err
		}
		if status != http.StatusOK {
			return "", fmt.Errorf("GET /api/v1/sessions: %d %s", status, bytes.TrimSpace(raw))
		}
		for _, s := range list.Sessions {
			if s.Dialled == number && s.State == "IN_CALL" {
				return s.ID, nil
			}
		}
		if try == 20 {
			return "", fmt.Errorf("no IN_CALL session dialled %s", number)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// op runs POST /api/v1/sessions/{id}/{name} and counts it.
func (a *apiClient) op(ctx context.Context, session, name string) bool {
	t0 := nanotime()
	status, raw, err := a.do(ctx, "POST", "/api/v1/sessions/"+url.PathEscape(session)+"/"+name, map[string]any{}, nil)
	a.mu.Lock()
	a.opHist.Record(nanotime() - t0)
	a.mu.Unlock()
	if err != nil {
		a.countErr(name + ": " + err.Error())
		return false
	}
	if status/100 != 2 {
		a.countErr(fmt.Sprintf("%s: %d %s", name, status, firstLine(raw)))
		return false
	}
	return true
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// apiOps schedules a call's API operations. c is locked.
func (g *Generator) apiOps(c *uacCall) {
	a := g.api
	hold := g.cfg.Hold
	ctx, cancel := context.WithTimeout(context.Background(), hold+30*time.Second)
	answered := c.answered
	a.ops.Add(1)
	go func() {
		defer a.ops.Done()
		defer cancel()
		var listeners sync.WaitGroup
		defer listeners.Wait() // before cancel: the listeners use ctx
		id, err := a.sessionFor(ctx, c.number)
		if err != nil {
			a.countErr("finding the session: " + err.Error())
			return
		}
		if g.cfg.API.Listeners > 0 {
			listeners.Add(1)
			go func() {
				defer listeners.Done()
				g.attachListeners(ctx, c, id)
			}()
		}
		if !g.cfg.API.HoldUnhold {
			return
		}
		// at waits until d after the answer.
		at := func(d time.Duration) bool {
			select {
			case <-ctx.Done():
				return false
			case <-g.stopAll:
				return false
			case <-time.After(time.Duration(answered + int64(d) - nanotime())):
				return true
			}
		}
		if !at(hold / 3) {
			return
		}
		ok := a.op(ctx, id, "hold")
		a.mu.Lock()
		if ok {
			g.apiStats.HoldOK++
		} else {
			g.apiStats.HoldFailed++
		}
		a.mu.Unlock()
		if !at(2 * hold / 3) {
			return
		}
		ok = a.op(ctx, id, "unhold")
		a.mu.Lock()
		if ok {
			g.apiStats.UnholdOK++
		} else {
			g.apiStats.UnholdFailed++
		}
		a.mu.Unlock()
	}()
}

// result snapshots the API counters.
func (a *apiClient) result(g *Generator) *APIResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := g.apiStats
	r.OpMs = a.opHist.Summarize(time.Millisecond)
	if len(a.errs) > 0 {
		r.Errors = map[string]uint64{}
		for k, v := range a.errs {
			r.Errors[k] = v
		}
	}
	if g.cfg.API.Listeners > 0 {
		l := a.lst
		l.Packets = a.packets.Load()
		r.Listeners = &l
	}
	return &r
}

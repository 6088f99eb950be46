package callctltest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// API is a callctl daemon's HTTP API as one client (its bearer token)
// sees it.
type API struct {
	URL    string // http://host:port
	Token  string
	Client *http.Client // nil: a client with a 30 s timeout
}

// Do sends one request (a non-empty body as application/json) and returns
// the status and body; a request that gets no answer fails the test.
func (a API) Do(t testing.TB, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := a.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, a.URL, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading the body: %v", method, a.URL, path, err)
	}
	return resp.StatusCode, data
}

// SessionView is a session as GET /api/v1/sessions lists it: who, its
// state, the node that carries it and its legs' media counters.
type SessionView struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Node   string `json:"node"` // set when another node carries it
	Caller struct {
		Number string `json:"number"`
	} `json:"caller"`
	Callee struct {
		Number string `json:"number"`
	} `json:"callee"`
	Legs []struct {
		Role       string `json:"role"`
		PacketsIn  uint64 `json:"packetsIn"`
		PacketsOut uint64 `json:"packetsOut"`
	} `json:"legs"`
}

// Talking reports whether both of v's legs carry audio both ways.
func (v SessionView) Talking() bool {
	n := 0
	for _, l := range v.Legs {
		if l.PacketsIn > 0 && l.PacketsOut > 0 {
			n++
		}
	}
	return n == 2
}

// Sessions is GET /api/v1/sessions; anything but 200 fails the test.
func (a API) Sessions(t testing.TB) []SessionView {
	t.Helper()
	status, data := a.Do(t, "GET", "/api/v1/sessions", "")
	if status != http.StatusOK {
		t.Fatalf("GET %s/api/v1/sessions: %d %s; want 200", a.URL, status, data)
	}
	var body struct {
		Sessions []SessionView `json:"sessions"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("GET %s/api/v1/sessions: %v in %s", a.URL, err, data)
	}
	return body.Sessions
}

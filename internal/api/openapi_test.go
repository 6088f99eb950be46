package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/session"
	"go.uber.org/zap/zaptest"
)

// TestOpenAPIMatchesRoutes keeps openapi.json true: every route the server
// registers is documented with its method, and nothing else is.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var documented []string
	for path, methods := range doc.Paths {
		for m := range methods {
			documented = append(documented, strings.ToUpper(m)+" "+path)
		}
	}
	reg := session.NewRegistry(0)
	s := New(Options{Engine: session.NewEngine(session.Config{MaxSessions: 1}, zaptest.NewLogger(t), nil, reg), Auth: &auth.Authenticator{}, Log: zaptest.NewLogger(t)})
	served := append(s.Routes(), "GET /healthz", "GET /readyz")
	slices.Sort(documented)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("openapi.json documents %s, which is not served", r)
		}
	}
}

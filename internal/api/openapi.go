package api

import (
	_ "embed"
	"net/http"

	"github.com/callctl/callctl/internal/auth"
)

// openAPI documents every route; TestOpenAPIMatchesRoutes keeps it true.
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) getOpenAPI(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
	return nil
}

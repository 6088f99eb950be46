package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/callctl/callctl/internal/audit"
	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/cluster"
)

// Records reads audit and call records across a cluster's nodes (each
// keeps its own; docs/cluster.md, "Records"): those of node only when it
// is not "".
type Records interface {
	Requests(ctx context.Context, f audit.Filter, node string) ([]audit.Request, cluster.Read, error)
	Calls(ctx context.Context, f audit.Filter, node string) ([]audit.Call, cluster.Read, error)
}

// SetRecords makes GET /api/v1/audit and /api/v1/calls read every node's
// records through r; call it before the API serves.
func (s *Server) SetRecords(r Records) { s.records = r }

func (s *Server) getAudit(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	f, he := filter(r)
	if he != nil {
		return he
	}
	if s.records == nil {
		recs, err := s.opts.Audit.Requests(r.Context(), f)
		if err != nil {
			return internalError(err)
		}
		writeJSON(w, http.StatusOK, map[string]any{"requests": nonNil(recs)})
		return nil
	}
	recs, read, err := s.records.Requests(r.Context(), f, r.URL.Query().Get("node"))
	if err != nil {
		return recordsError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": nonNil(recs), "nodes": read.Nodes, "cut": nonNil(read.Cut)})
	return nil
}

func (s *Server) getCalls(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	f, he := filter(r)
	if he != nil {
		return he
	}
	if s.records == nil {
		calls, err := s.opts.Audit.Calls(r.Context(), f)
		if err != nil {
			return internalError(err)
		}
		writeJSON(w, http.StatusOK, map[string]any{"calls": nonNil(calls)})
		return nil
	}
	calls, read, err := s.records.Calls(r.Context(), f, r.URL.Query().Get("node"))
	if err != nil {
		return recordsError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": nonNil(calls), "nodes": read.Nodes, "cut": nonNil(read.Cut)})
	return nil
}

// recordsError maps a cluster read's refusal to HTTP.
func recordsError(err error) *httpError {
	var unknown *cluster.UnknownNodeError
	switch {
	case errors.As(err, &unknown):
		he := notFound(err.Error())
		he.body.Field = "node"
		return he
	case errors.Is(err, cluster.ErrBeforeNeedsNode):
		he := badRequest(err.Error())
		he.body.Field = "before"
		return he
	}
	return internalError(err)
}

// nonNil makes an empty list encode as [], not null.
func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/callctl/callctl/internal/session"
)

// apiError is the JSON error body's inner object.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the bad argument, when there is one.
	Field string `json:"field,omitempty"`
	// Status is the SIP status of a peer's refusal.
	SIPStatus int `json:"sipStatus,omitempty"`
}

type errorBody struct {
	Error apiError `json:"error"`
}

// httpError is an error with its HTTP status and code.
type httpError struct {
	status int
	body   apiError
}

func (e *httpError) Error() string { return e.body.Message }

func badRequest(msg string) *httpError {
	return &httpError{http.StatusBadRequest, apiError{Code: "invalid_argument", Message: msg}}
}

func unauthenticated(msg string) *httpError {
	return &httpError{http.StatusUnauthorized, apiError{Code: "unauthenticated", Message: msg}}
}

func forbidden(msg string) *httpError {
	return &httpError{http.StatusForbidden, apiError{Code: "forbidden", Message: msg}}
}

func internalError(err error) *httpError {
	return &httpError{http.StatusInternalServerError, apiError{Code: "internal", Message: err.Error()}}
}

func notFound(msg string) *httpError {
	return &httpError{http.StatusNotFound, apiError{Code: "not_found", Message: msg}}
}

// fromSession maps the session package's typed errors to HTTP.
func fromSession(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	var oe *session.OpError
	if !errors.As(err, &oe) {
		return internalError(err)
	}
	status := map[session.Code]int{
		session.CodeInvalidArgument: http.StatusBadRequest,
		session.CodeWrongState:      http.StatusConflict,
		session.CodeNotFound:        http.StatusNotFound,
		session.CodePeerRefused:     http.StatusBadGateway,
		session.CodeTimeout:         http.StatusGatewayTimeout,
	}[oe.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return &httpError{status, apiError{Code: string(oe.Code), Message: oe.Error(), Field: oe.Field, SIPStatus: oe.Status}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, he *httpError) {
	if he.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="callctl"`)
	}
	writeJSON(w, he.status, errorBody{Error: he.body})
}

package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/callctl/callctl/internal/auth"
	"github.com/callctl/callctl/internal/config"
)

// ReloadOutcome is what a configuration reload changed (Options.Reload).
type ReloadOutcome struct {
	// Changed are the configuration keys whose values changed.
	Changed []string `json:"changed"`
	// Summary says it in one line, e.g. "clients: +1 -0 ~0; sip.allow".
	Summary string `json:"summary"`
	// ClientsAdded, ClientsRemoved and ClientsChanged name the API
	// clients concerned (never a token or hash).
	ClientsAdded   []string `json:"clientsAdded"`
	ClientsRemoved []string `json:"clientsRemoved"`
	ClientsChanged []string `json:"clientsChanged"`
}

// reloadConfig serves POST /api/v1/config/reload: the running callctl
// re-reads its configuration (as on SIGHUP). 200 with what changed; 400
// invalid_config when the new configuration does not parse or validate,
// 409 restart_required when it changes a key only a restart applies;
// either way nothing changed. The privilege is checked here rather than by
// handle so that a refusal is audited too (there is no session id for
// handle's audit of refusals).
func (s *Server) reloadConfig(w http.ResponseWriter, r *http.Request, c *auth.Client) *httpError {
	const op = "configReload"
	if !c.Can(auth.ConfigReload) {
		he := forbidden(fmt.Sprintf("client %q lacks the privilege %s", c.Name, auth.ConfigReload))
		s.audit(r, c, op, nil, "", he)
		return he
	}
	if he := decodeBody(r, &struct{}{}); he != nil {
		s.audit(r, c, op, nil, "", he)
		return he
	}
	if s.opts.Reload == nil {
		he := &httpError{http.StatusServiceUnavailable, apiError{Code: "unavailable", Message: "this callctl cannot reload its configuration"}}
		s.audit(r, c, op, nil, "", he)
		return he
	}
	out, err := s.opts.Reload()
	if err != nil {
		var re *config.RestartError
		he := &httpError{http.StatusBadRequest, apiError{Code: "invalid_config", Message: err.Error()}}
		if errors.As(err, &re) {
			he = &httpError{http.StatusConflict, apiError{Code: "restart_required", Message: err.Error()}}
		}
		s.audit(r, c, op, nil, "", he)
		return he
	}
	s.audit(r, c, op, map[string]string{"summary": out.Summary, "changed": strings.Join(out.Changed, ",")}, "", nil)
	for _, l := range []*[]string{&out.Changed, &out.ClientsAdded, &out.ClientsRemoved, &out.ClientsChanged} {
		if *l == nil {
			*l = []string{} // [] in JSON, not null
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "reload": out})
	return nil
}

// DropStreams closes, with why as the WebSocket close reason, every event
// stream whose client stale reports true (a client a configuration reload
// removed or changed). A client may reconnect and resume from its last seq.
func (s *Server) DropStreams(stale func(*auth.Client) bool, why string) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if stale(c.client) {
			delete(h.clients, c)
			c.drop(why)
		}
	}
}

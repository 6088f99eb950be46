package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callctl/callctl/internal/api"
	"github.com/callctl/callctl/internal/session"
)

// checkState returns why state is not a session state, or "".
func checkState(state string) string {
	if session.State(state).Valid() {
		return ""
	}
	all := make([]string, len(session.AllStates))
	for i, s := range session.AllStates {
		all[i] = string(s)
	}
	return fmt.Sprintf("--state %q is not a state (allowed: %s)", state, strings.Join(all, ", "))
}

// listSessions prints GET /api/v1/sessions as a table, or its JSON.
func listSessions(ctx context.Context, c *apiClient, o clientOptions, so sessionsOptions, stdout, stderr io.Writer) int {
	q := url.Values{}
	if so.state != "" {
		q.Set("state", so.state)
	}
	if so.number != "" {
		q.Set("number", so.number)
	}
	data, err := c.do(ctx, http.MethodGet, "/api/v1/sessions", q, nil)
	if err != nil {
		return fail(o, err, stdout, stderr)
	}
	if o.json {
		stdout.Write(data) //nolint:errcheck // nothing to do about a broken stdout
		return exitOK
	}
	var list struct {
		Sessions []api.SessionView `json:"sessions"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		fmt.Fprintf(stderr, "callctl: the API's session list is not the expected JSON: %v\n", err)
		return exitRuntime
	}
	if err := printSessionTable(stdout, list.Sessions); err != nil {
		fmt.Fprintf(stderr, "callctl: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

// printSessionTable writes sessions, oldest first, as aligned columns.
func printSessionTable(w io.Writer, sessions []api.SessionView) error {
	if len(sessions) == 0 {
		_, err := fmt.Fprintln(w, "no sessions")
		return err
	}
	slices.SortStableFunc(sessions, func(a, b api.SessionView) int { return a.Start.Compare(b.Start) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tCALLER\tCALLEE\tDIALLED\tTALK TIME\tSTATE TIME")
	for _, s := range sessions {
		talk := "-"
		if !s.Answer.IsZero() {
			talk = clock(s.TalkDuration)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, party(s.Caller), party(s.Callee),
			orDash(s.Dialled), talk, clock(s.StateDuration))
	}
	return tw.Flush()
}

// party shows a party as its number, with its display name if it has one.
func party(p session.Party) string {
	switch {
	case p.Number == "" && p.DisplayName == "":
		return "-"
	case p.DisplayName == "":
		return p.Number
	default:
		return fmt.Sprintf("%q <%s>", p.DisplayName, p.Number)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clock formats seconds as m:ss, or h:mm:ss from an hour on.
func clock(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second)).Round(time.Second)
	if d < 0 {
		d = 0
	}
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
